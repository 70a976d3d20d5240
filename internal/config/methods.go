package config

import (
	"net"
	"strconv"
	"strings"
)

// Scheme returns "https" when the backend is reached over TLS, else "http".
// An "https://" prefix on Host means TLS; an "http://" prefix means plain
// HTTP even on port 443; without a prefix, port 443 means TLS.
func (b Backend) Scheme() string {
	h := strings.ToLower(strings.TrimSpace(b.Host))
	switch {
	case strings.HasPrefix(h, "https://"):
		return "https"
	case strings.HasPrefix(h, "http://"):
		return "http"
	case b.Port == 443:
		return "https"
	}
	return "http"
}

// Hostname returns the host name or IP literal of Host, without a scheme
// prefix, a trailing "/" or the brackets of an IPv6 literal.
func (b Backend) Hostname() string {
	h, _ := splitScheme(strings.TrimSpace(b.Host))
	h = strings.TrimSuffix(h, "/")
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return h
}

// HostPort returns "host:port", with brackets around an IPv6 literal.
func (b Backend) HostPort() string { return net.JoinHostPort(b.Hostname(), strconv.Itoa(b.Port)) }

// String returns the backend's address as a URL prefix, e.g.
// "https://10.0.0.1:8443"; two backends with the same String are the same.
func (b Backend) String() string { return b.Scheme() + "://" + b.HostPort() }

// EffectiveWeight returns Weight, or DefaultWeight (1) when it was not
// given.
func (b Backend) EffectiveWeight() int {
	if b.Weight == nil {
		return DefaultWeight
	}
	return *b.Weight
}

// splitScheme removes an "http://" or "https://" prefix (any case) from h
// and returns the rest and the prefix's scheme ("" when there is none).
func splitScheme(h string) (rest, scheme string) {
	if i := strings.Index(h, "://"); i >= 0 {
		return h[i+3:], strings.ToLower(h[:i])
	}
	return h, ""
}

// HealthCheckFor returns the active health check of b: the global
// health_check with the fields b's override sets (non-nil pointers,
// non-zero values) replacing the global ones, defaults applied. An
// override that sets a path makes the check "http"; one that sets type
// "tcp" without a path drops the global path.
func (c *Config) HealthCheckFor(b Backend) HealthCheck {
	h := c.HealthCheck
	if o := b.HealthCheck; o != nil {
		if o.Enabled != nil {
			h.Enabled = o.Enabled
		}
		if o.Type != "" {
			h.Type = o.Type
			if o.Type == HealthTCP && o.Path == "" {
				h.Path = ""
			}
		}
		if o.Path != "" {
			h.Path = o.Path
			if o.Type == "" {
				h.Type = HealthHTTP
			}
		}
		if o.Interval != 0 {
			h.Interval = o.Interval
		}
		if o.Timeout != 0 {
			h.Timeout = o.Timeout
		}
		if o.Jitter != nil {
			h.Jitter = o.Jitter
		}
		if o.ExpectStatus != "" {
			h.ExpectStatus = o.ExpectStatus
		}
		if o.ExpectBody != "" {
			h.ExpectBody = o.ExpectBody
		}
		if o.Host != "" {
			h.Host = o.Host
		}
		if o.Fall != 0 {
			h.Fall = o.Fall
		}
		if o.Rise != 0 {
			h.Rise = o.Rise
		}
	}
	h.applyDefaults()
	return h
}

// IsEnabled reports whether active checks run (default true).
func (h HealthCheck) IsEnabled() bool { return h.Enabled == nil || *h.Enabled }

// JitterFraction returns Jitter, or DefaultHealthJitter when not given.
func (h HealthCheck) JitterFraction() float64 {
	if h.Jitter == nil {
		return DefaultHealthJitter
	}
	return *h.Jitter
}

// StatusRange returns the accepted status codes of ExpectStatus ("200" or
// "200-399"; empty means DefaultExpectStatus). ok is false when
// ExpectStatus is malformed, which a validated config never is.
func (h HealthCheck) StatusRange() (lo, hi int, ok bool) {
	s := h.ExpectStatus
	if s == "" {
		s = DefaultExpectStatus
	}
	lo, hi, msg := parseStatusRange(s)
	return lo, hi, msg == ""
}

// IsEnabled reports whether passive outlier detection runs (default true).
func (p Passive) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// AccessEnabled reports whether an access log line is written per request
// (default true).
func (l Log) AccessEnabled() bool { return l.Access == nil || *l.Access }

// Ratio returns SampleRatio, or DefaultSampleRatio (1) when not given.
func (t Tracing) Ratio() float64 {
	if t.SampleRatio == nil {
		return DefaultSampleRatio
	}
	return *t.SampleRatio
}

// Off reports whether the admin listener is disabled (addr "off").
func (a Admin) Off() bool { return a.Addr == AdminOff }

// Addr returns "host:port" of the proxy listener, with brackets around an
// IPv6 literal.
func (l Listen) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// Clone returns a deep copy of c: changing the copy (its slices and
// pointers included) never changes c.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	n := *c
	n.Backends = make([]Backend, len(c.Backends))
	for i, b := range c.Backends {
		b.Weight = clonePtr(b.Weight)
		if b.HealthCheck != nil {
			h := b.HealthCheck.clone()
			b.HealthCheck = &h
		}
		n.Backends[i] = b
	}
	if c.Backends == nil {
		n.Backends = nil
	}
	if c.TrustedProxies != nil {
		n.TrustedProxies = append([]string(nil), c.TrustedProxies...)
	}
	n.Log.Access = clonePtr(c.Log.Access)
	n.HealthCheck = c.HealthCheck.clone()
	n.Passive.Enabled = clonePtr(c.Passive.Enabled)
	n.Tracing.SampleRatio = clonePtr(c.Tracing.SampleRatio)
	return &n
}

// RedactedSecret replaces secrets in Redacted copies.
const RedactedSecret = "<redacted>"

// Redacted returns a deep copy of c that is safe to show (the admin API
// prints it): sticky.secret, when set, reads "<redacted>".
func (c *Config) Redacted() *Config {
	n := c.Clone()
	if n != nil && n.Sticky.Secret != "" {
		n.Sticky.Secret = RedactedSecret
	}
	return n
}

func (h HealthCheck) clone() HealthCheck {
	h.Enabled = clonePtr(h.Enabled)
	h.Jitter = clonePtr(h.Jitter)
	return h
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
