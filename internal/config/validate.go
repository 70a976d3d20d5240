package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// positions tells the validator where things were written.
type positions interface {
	line(path string) int          // line of path or of its nearest written parent
	explicitZero(path string) bool // path was written as 0 (not left out)
	failed(path string) bool       // path could not be decoded; say nothing more about it
}

// backendLines gives positions for a Config built in code: backends have
// their Line, everything else is unknown.
type backendLines []Backend

func (b backendLines) line(path string) int {
	rest, ok := strings.CutPrefix(path, "backends[")
	if !ok {
		return 0
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return 0
	}
	i, err := strconv.Atoi(rest[:end])
	if err != nil || i < 0 || i >= len(b) {
		return 0
	}
	return b[i].Line
}
func (backendLines) explicitZero(string) bool { return false }
func (backendLines) failed(string) bool       { return false }

type validator struct {
	file string
	pos  positions
	errs errorList
}

// errorf records a problem at path, unless path or a parent of it already
// failed to decode (one problem per value is enough).
func (v *validator) errorf(path, format string, args ...any) {
	for p := path; p != ""; p = parentPath(p) {
		if v.pos.failed(p) {
			return
		}
	}
	v.errs = append(v.errs, &Error{File: v.file, Line: v.pos.line(path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

// validate checks c, the config with defaults applied; raw is the same
// config as written (before defaults), to tell what was given.
func (v *validator) validate(raw, c *Config) {
	if c.Listen.Host != "" {
		if msg := bindHostProblem(c.Listen.Host); msg != "" {
			v.errorf("listen.host", "%s", msg)
		}
	}
	v.intRange("listen.port", c.Listen.Port, 1, 65535)

	if len(c.Backends) == 0 {
		v.errorf("backends", "at least one backend is required (a list of entries with host and port, e.g. \"- host: 127.0.0.1\" and \"port: 9001\")")
	}
	seen := map[string]int{}
	for i := range c.Backends {
		v.backend(c, i, seen)
	}

	if !slices.Contains(strategies, c.Strategy) {
		v.errorf("strategy", "%q is not a strategy (expected one of %s)", c.Strategy, strings.Join(strategies, ", "))
	}
	if !isToken(c.Sticky.CookieName) {
		v.errorf("sticky.cookie_name", "%q is not a valid cookie name (letters, digits and !#$%%&'*+-.^_`|~ only)", c.Sticky.CookieName)
	}

	v.atLeast1("limits.max_header_bytes", c.Limits.MaxHeaderBytes)
	v.atLeast1("limits.max_uri_bytes", c.Limits.MaxURIBytes)
	v.atLeast1("limits.max_idle_conns_per_backend", c.Limits.MaxIdleConnsPerBackend)
	if n := c.Limits.MaxConnsPerBackend; n < 0 {
		v.errorf("limits.max_conns_per_backend", "%d is negative (expected 0, no limit, or more)", n)
	}
	if n := c.Limits.LeanAboveConns; n < -1 {
		v.errorf("limits.lean_above_conns", "%d is out of range (expected -1, never, or 1 or more)", n)
	}

	v.intRange("retries.attempts", c.Retries.Attempts, 1, MaxRetryAttempts)

	for i, s := range c.TrustedProxies {
		if !isIPOrCIDR(s) {
			v.errorf(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR (e.g. \"10.0.0.0/8\", \"192.168.1.10\", \"::1\")", s)
		}
	}
	if !isToken(c.Via) {
		v.errorf("via", "%q is not a valid Via pseudonym (one word: letters, digits and !#$%%&'*+-.^_`|~ only)", c.Via)
	}

	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	v.atLeast1("log.max_size_mb", c.Log.MaxSizeMB)
	if n := c.Log.MaxBackups; n < 0 {
		v.errorf("log.max_backups", "%d is negative (expected 0 or more)", n)
	}

	v.healthCheck("health_check", raw.HealthCheck, c.HealthCheck, false)

	p := c.Passive
	v.atLeast1("passive_health.consecutive_failures", p.ConsecutiveFailures)
	if p.Consecutive5xx < 0 {
		v.errorf("passive_health.consecutive_5xx", "%d is negative (expected 0, ignore 5xx, or more)", p.Consecutive5xx)
	}
	if p.BaseEjection > p.MaxEjection {
		if raw.Passive.BaseEjection != 0 || raw.Passive.MaxEjection == 0 {
			v.errorf("passive_health.base_ejection", "%s is longer than max_ejection %s%s", p.BaseEjection, p.MaxEjection, defaultNote(raw.Passive.MaxEjection == 0, false))
		} else {
			v.errorf("passive_health.max_ejection", "%s is shorter than base_ejection %s%s", p.MaxEjection, p.BaseEjection, defaultNote(true, false))
		}
	}

	if a := c.Admin.Addr; a != AdminOff {
		if msg := listenAddrProblem(a); msg != "" {
			v.errorf("admin.addr", "%s", msg)
		}
	}
	if f := c.Admin.TokenFile; f != "" {
		if msg := fileProblem(f); msg != "" {
			v.errorf("admin.token_file", "%s", msg)
		}
	}

	t := c.Tracing
	if t.Endpoint != "" {
		if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf("tracing.endpoint", "%q is not an http:// or https:// URL (e.g. \"http://127.0.0.1:4318\")", t.Endpoint)
		}
	}
	v.oneOf("tracing.protocol", t.Protocol, "grpc", "http/protobuf")
	if r := t.Ratio(); !(r >= 0 && r <= 1) {
		v.errorf("tracing.sample_ratio", "%v is out of range (expected 0..1)", r)
	}
}

func (v *validator) backend(c *Config, i int, seen map[string]int) {
	b := c.Backends[i]
	p := fmt.Sprintf("backends[%d]", i)
	hostOK := false
	switch {
	case b.Host == "":
		v.errorf(p+".host", "required key missing (e.g. host: \"127.0.0.1\")")
	default:
		if msg := backendHostProblem(b.Host); msg != "" {
			v.errorf(p+".host", "%s", msg)
		} else {
			hostOK = true
		}
	}
	portOK := false
	switch {
	case b.Port == 0 && !v.pos.explicitZero(p+".port"):
		v.errorf(p+".port", "required key missing (e.g. port: 9001)")
	case b.Port < 1 || b.Port > 65535:
		v.errorf(p+".port", "%d is out of range (expected 1..65535)", b.Port)
	default:
		portOK = true
	}
	if b.Weight != nil && (*b.Weight < 0 || *b.Weight > MaxWeight) {
		v.errorf(p+".weight", "%d is out of range (expected 0..%d; 0 means no new traffic)", *b.Weight, MaxWeight)
	}
	if hostOK && portOK {
		key := b.Scheme() + "://" + net.JoinHostPort(canonicalHost(b.Hostname()), strconv.Itoa(b.Port))
		if first, dup := seen[key]; dup {
			v.errorf(p, "duplicate backend %s (the same as backends[%d] on line %d)", key, first, c.Backends[first].Line)
		} else {
			seen[key] = i
		}
	}

	if b.TLS != (BackendTLS{}) && (hostOK || portOK) && b.Scheme() != "https" {
		v.errorf(p+".tls", "TLS settings need an https backend (write the host as \"https://%s\", or use port 443)", b.Hostname())
	} else {
		if f := b.TLS.CAFile; f != "" {
			if msg := caFileProblem(f); msg != "" {
				v.errorf(p+".tls.ca_file", "%s", msg)
			}
		}
		if s := b.TLS.ServerName; s != "" {
			if _, err := netip.ParseAddr(s); err != nil {
				if msg := hostnameProblem(s); msg != "" {
					v.errorf(p+".tls.server_name", "%s", msg)
				}
			}
		}
	}

	if b.HealthCheck != nil {
		v.healthCheck(p+".health_check", *b.HealthCheck, c.HealthCheckFor(b), true)
	}
}

// healthCheck checks one health_check mapping: h as written, eff the check
// in effect (with the global values and defaults). For an override, only
// problems that involve a key the override writes are reported; the others
// are the global section's.
func (v *validator) healthCheck(path string, h, eff HealthCheck, override bool) {
	if h.Type != "" && h.Type != HealthTCP && h.Type != HealthHTTP {
		v.errorf(path+".type", "%q is not a health check type (expected tcp or http)", h.Type)
	}
	if h.Path != "" {
		if !strings.HasPrefix(h.Path, "/") {
			v.errorf(path+".path", "%q must start with \"/\" (e.g. \"/health\")", h.Path)
		} else if h.Type == HealthTCP {
			v.errorf(path+".path", "a path is only used by http checks, but type is tcp (remove type, or write type: http)")
		}
	}
	if h.ExpectStatus != "" {
		if _, _, msg := parseStatusRange(h.ExpectStatus); msg != "" {
			v.errorf(path+".expect_status", "%s", msg)
		}
	}
	if eff.Type == HealthTCP {
		if h.ExpectBody != "" {
			v.errorf(path+".expect_body", "only used by http checks, but this check is tcp (set path, e.g. path: \"/health\")")
		}
		if h.Host != "" {
			v.errorf(path+".host", "only used by http checks, but this check is tcp (set path, e.g. path: \"/health\")")
		}
	}
	if h.Host != "" && strings.ContainsAny(h.Host, " \t/?#@") {
		v.errorf(path+".host", "%q is not a Host header value (a host name, optionally with :port)", h.Host)
	}
	v.atLeast1(path+".fall", h.Fall)
	v.atLeast1(path+".rise", h.Rise)
	if j := h.Jitter; j != nil && !(*j >= 0 && *j <= 1) {
		v.errorf(path+".jitter", "%v is out of range (expected 0..1)", *j)
	}
	if eff.Timeout >= eff.Interval {
		switch {
		case h.Timeout != 0:
			v.errorf(path+".timeout", "%s must be shorter than interval %s%s", eff.Timeout, eff.Interval, defaultNote(h.Interval == 0, override))
		case h.Interval != 0:
			v.errorf(path+".interval", "%s must be longer than timeout %s%s", eff.Interval, eff.Timeout, defaultNote(true, override))
		case !override:
			v.errorf(path+".timeout", "%s must be shorter than interval %s", eff.Timeout, eff.Interval)
		}
	}
}

// defaultNote explains where a value the user did not write comes from:
// the default, or for a backend's override also the global health_check.
func defaultNote(notWritten, override bool) string {
	switch {
	case !notWritten:
		return ""
	case override:
		return " (from health_check or the default)"
	}
	return " (the default)"
}

// intRange checks a setting whose zero means "default": it is checked only
// when written, or when it is not zero.
func (v *validator) intRange(path string, n, lo, hi int) {
	if v.pos.explicitZero(path) {
		n = 0
	} else if n == 0 {
		return
	}
	if n < lo || n > hi {
		v.errorf(path, "%d is out of range (expected %d..%d)", n, lo, hi)
	}
}

// atLeast1 checks a count whose zero means "default" when left out.
func (v *validator) atLeast1(path string, n int) {
	if v.pos.explicitZero(path) {
		n = 0
	} else if n == 0 {
		return
	}
	if n < 1 {
		v.errorf(path, "%d is out of range (expected 1 or more)", n)
	}
}

func (v *validator) oneOf(path, s string, allowed ...string) {
	if !slices.Contains(allowed, s) {
		v.errorf(path, "%q is not allowed (expected one of %s)", s, strings.Join(allowed, ", "))
	}
}

// backendHostProblem says what is wrong with a backends[].host value, or "".
func backendHostProblem(host string) string {
	if host != strings.TrimSpace(host) {
		return fmt.Sprintf("%q has spaces around it", host)
	}
	rest, scheme := splitScheme(host)
	if scheme != "" && scheme != "http" && scheme != "https" {
		return fmt.Sprintf("%q has the scheme %q (expected http://, https:// or none)", host, scheme)
	}
	prefix := host[:len(host)-len(rest)]
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return fmt.Sprintf("%q has no host name", host)
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return fmt.Sprintf("%q contains a path (%q); write only the host name (requests keep their own path)", host, rest[i:])
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return fmt.Sprintf("%q has no closing \"]\"", host)
		}
		if after := rest[end+1:]; after != "" {
			if p, ok := strings.CutPrefix(after, ":"); ok {
				return fmt.Sprintf("%q contains a port; write host: %q and port: %s", host, prefix+rest[:end+1], p)
			}
			return fmt.Sprintf("%q is not a host name or IP address", host)
		}
		if a, err := netip.ParseAddr(rest[1:end]); err != nil || !a.Is6() {
			return fmt.Sprintf("%q: %q is not an IPv6 address", host, rest[1:end])
		}
		return ""
	}
	if strings.Count(rest, ":") == 1 {
		h, p, _ := strings.Cut(rest, ":")
		return fmt.Sprintf("%q contains a port; write host: %q and port: %s", host, prefix+h, p)
	}
	if _, err := netip.ParseAddr(rest); err == nil {
		return ""
	}
	if strings.Contains(rest, ":") {
		return fmt.Sprintf("%q is not an IPv6 address", host)
	}
	if msg := hostnameProblem(rest); msg != "" {
		return fmt.Sprintf("%q: %s", host, msg)
	}
	return ""
}

// bindHostProblem says what is wrong with a listen address's host, or "".
func bindHostProblem(host string) string {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(h); err == nil {
		return ""
	}
	if strings.Contains(h, ":") {
		return fmt.Sprintf("%q contains a port; write the port in listen.port", host)
	}
	if msg := hostnameProblem(h); msg != "" {
		return fmt.Sprintf("%q: %s", host, msg)
	}
	return ""
}

// listenAddrProblem says what is wrong with a HOST:PORT listen address.
func listenAddrProblem(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not \"off\" or HOST:PORT (e.g. %q)", addr, DefaultAdminAddr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("%q: port %q is out of range (expected 0..65535)", addr, port)
	}
	if host != "" {
		if msg := bindHostProblem(host); msg != "" {
			return msg
		}
	}
	return ""
}

// hostnameProblem says why h is not a DNS host name, or "".
func hostnameProblem(h string) string {
	if len(h) > 253 {
		return "host name is longer than 253 characters"
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" {
			return "host name has an empty label (\"..\" or a leading \".\")"
		}
		if len(label) > 63 {
			return "host name has a label longer than 63 characters"
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Sprintf("host name contains %q (expected letters, digits, \"-\", \"_\" and \".\")", r)
			}
		}
	}
	return ""
}

// canonicalHost lower-cases a host name and writes IP addresses in one
// form, so that duplicates are found.
func canonicalHost(h string) string {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String()
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// parseStatusRange parses "NNN" or "NNN-NNN" within 100..599.
func parseStatusRange(s string) (lo, hi int, msg string) {
	bad := fmt.Sprintf("%q is not a status or range (expected \"NNN\" or \"NNN-NNN\" within 100..599, e.g. \"200\" or \"200-399\")", s)
	a, b, isRange := strings.Cut(s, "-")
	lo, ok1 := status(a)
	hi, ok2 := lo, true
	if isRange {
		hi, ok2 = status(b)
	}
	if !ok1 || !ok2 || lo > hi {
		return 0, 0, bad
	}
	return lo, hi, ""
}

func status(s string) (int, bool) {
	if len(s) != 3 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 100 && n <= 599
}

func isIPOrCIDR(s string) bool {
	if strings.Contains(s, "/") {
		_, err := netip.ParsePrefix(s)
		return err == nil
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// isToken reports whether s is an HTTP token (RFC 9110, section 5.6.2), as
// cookie names and Via pseudonyms must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func fileProblem(name string) string {
	st, err := os.Stat(name)
	if err != nil {
		return fmt.Sprintf("cannot read %q: %s", name, errMsg(err))
	}
	if st.IsDir() {
		return fmt.Sprintf("%q is a directory, not a file", name)
	}
	return ""
}

func caFileProblem(name string) string {
	if msg := fileProblem(name); msg != "" {
		return msg
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Sprintf("cannot read %q: %s", name, errMsg(err))
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return fmt.Sprintf("%q contains no PEM certificates", name)
	}
	return ""
}
