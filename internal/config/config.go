// Package config defines the YAML configuration file, its defaults, and its
// loading with precise errors (file, line, field). It never touches a socket.
//
// The seed's format (a "backends" list of host, port and optional weight)
// stays valid forever; every other key is optional and additive.
//
// Load and Parse decode a file strictly (unknown keys, wrong types and
// duplicate keys are errors), apply the defaults (the Default* constants)
// and validate the result, reporting every problem as an *Error
// "FILE:LINE: FIELD: MSG", one per line. Default is the built-in config
// used without -c. docs/configuration.md is the user's reference and
// docs/config.schema.json the schema for editors; a test keeps both keys
// and defaults equal to these types.
package config

import "time"

// Config is a whole configuration file after defaults were applied.
type Config struct {
	// Listen is the proxy listener; the -H and -p flags win over it.
	Listen Listen `yaml:"listen" json:"listen"`

	// Backends are the servers to balance over. Required, at least one.
	Backends []Backend `yaml:"backends" json:"backends"`

	// Strategy is one of round-robin, weighted-round-robin, random, sticky.
	// Default "random" (the seed's); the -s flag wins over it.
	Strategy string `yaml:"strategy" json:"strategy"`

	Sticky   Sticky   `yaml:"sticky" json:"sticky"`
	Timeouts Timeouts `yaml:"timeouts" json:"timeouts"`
	Limits   Limits   `yaml:"limits" json:"limits"`
	Retries  Retries  `yaml:"retries" json:"retries"`

	// TrustedProxies lists the addresses or CIDRs (e.g. "10.0.0.0/8") of
	// proxies in front of the balancer whose X-Forwarded-* headers are kept.
	// From any other client those headers are replaced. Default: none.
	TrustedProxies []string `yaml:"trusted_proxies" json:"trusted_proxies"`

	// Via is the pseudonym this balancer puts in the Via header.
	// Default "load_balancer".
	Via string `yaml:"via" json:"via"`

	Log Log `yaml:"log" json:"log"`

	// HealthCheck is the active health check every backend gets unless its
	// own health_check overrides fields of it. Default: TCP connect every 2s,
	// timeout 1s, fall 2, rise 2.
	HealthCheck HealthCheck `yaml:"health_check" json:"health_check"`
	// Passive is outlier detection from real traffic.
	Passive Passive `yaml:"passive_health" json:"passive_health"`
	// Shutdown bounds the graceful drain on SIGTERM/SIGINT.
	Shutdown Shutdown `yaml:"shutdown" json:"shutdown"`
	// Admin is the admin listener (metrics, API, dashboard).
	Admin Admin `yaml:"admin" json:"admin"`
	// Tracing is OpenTelemetry tracing; off unless configured here or by the
	// standard OTEL_* environment variables.
	Tracing Tracing `yaml:"tracing" json:"tracing"`

	// Source is the file this config was read from ("" for built-in defaults).
	Source string `yaml:"-" json:"source,omitempty"`
}

// Listen is the address the balancer accepts client connections on.
type Listen struct {
	// Host is the bind address, an IP or a host name without a port.
	// Default "0.0.0.0"; the -H flag wins.
	Host string `yaml:"host" json:"host"`
	// Port is 1..65535. Default 9000; the -p flag wins.
	Port int `yaml:"port" json:"port"`
}

// Backend is one entry of the backends list.
type Backend struct {
	// Host is a host name or IP address, optionally prefixed by "http://" or
	// "https://". An https:// prefix, or port 443, means TLS to the backend.
	Host string `yaml:"host" json:"host"`
	// Port is 1..65535. Required.
	Port int `yaml:"port" json:"port"`
	// Weight is the backend's share for weighted strategies. Default 1; 0
	// means no new traffic; negative or above MaxWeight is an error. Nil
	// means "not given"; use EffectiveWeight.
	Weight *int `yaml:"weight,omitempty" json:"weight,omitempty"`
	// TLS settings for https backends. Ignored (with an error) for http.
	TLS BackendTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// Drain true: the backend takes no new requests or sticky sessions;
	// requests in flight finish. Default false.
	Drain bool `yaml:"drain,omitempty" json:"drain,omitempty"`
	// HealthCheck overrides fields of the global health_check for this
	// backend; fields left out keep the global value. It is kept as written
	// (no defaults applied); use Config.HealthCheckFor for the merged check.
	HealthCheck *HealthCheck `yaml:"health_check,omitempty" json:"health_check,omitempty"`

	// Line is where the entry starts in the file, for later error messages
	// (0 for backends not read from a file).
	Line int `yaml:"-" json:"line,omitempty"`
}

// BackendTLS configures TLS to one backend. By default certificates are
// verified against the system roots and the backend's host name.
type BackendTLS struct {
	// InsecureSkipVerify turns certificate verification off. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
	// CAFile is a PEM file of CA certificates to verify the backend with,
	// instead of the system roots.
	CAFile string `yaml:"ca_file" json:"ca_file"`
	// ServerName overrides the name used for SNI and verification.
	// Default: the backend's host.
	ServerName string `yaml:"server_name" json:"server_name"`
}

// Sticky configures the sticky strategy's cookie.
type Sticky struct {
	// CookieName default "ZZZ_BACKEND_ID"; the --cookie-name flag wins.
	CookieName string `yaml:"cookie_name" json:"cookie_name"`
	// Secret keys the HMAC that turns a backend address into a cookie
	// value. Instances with the same secret agree. Default: derived from the
	// cookie name, so restarts (and every instance) keep sessions.
	Secret string `yaml:"secret" json:"secret"`
	// MaxAge of the cookie; 0 (default) makes it a session cookie.
	MaxAge Duration `yaml:"max_age" json:"max_age"`
}

// Timeouts bound every wait. Zero values are replaced by the defaults.
type Timeouts struct {
	Dial           Duration `yaml:"dial" json:"dial"`                         // connect to a backend; default 5s
	TLSHandshake   Duration `yaml:"tls_handshake" json:"tls_handshake"`       // TLS handshake with a backend; default 5s
	ResponseHeader Duration `yaml:"response_header" json:"response_header"`   // request sent → response header received; default 60s
	ClientHeader   Duration `yaml:"client_header" json:"client_header"`       // read a client's request header (slowloris); default 10s
	ClientIdle     Duration `yaml:"client_idle" json:"client_idle"`           // idle client keep-alive connection; default 120s
	ClientBodyIdle Duration `yaml:"client_body_idle" json:"client_body_idle"` // pause between reads of a client's request body; default 60s
	BackendIdle    Duration `yaml:"backend_idle" json:"backend_idle"`         // idle pooled backend connection; default 90s
}

// Limits bound what a client or a backend may make the balancer hold.
type Limits struct {
	// MaxHeaderBytes of a request header block; larger → 431. Default 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes" json:"max_header_bytes"`
	// MaxURIBytes of a request target; longer → 414. Default 8192.
	MaxURIBytes int `yaml:"max_uri_bytes" json:"max_uri_bytes"`
	// MaxIdleConnsPerBackend pooled keep-alive connections. Default 1024: enough that every request in flight at a few thousand client connections finds a pooled connection instead of redialling.
	MaxIdleConnsPerBackend int `yaml:"max_idle_conns_per_backend" json:"max_idle_conns_per_backend"`
	// MaxConnsPerBackend in total (0, the default, means no limit).
	MaxConnsPerBackend int `yaml:"max_conns_per_backend" json:"max_conns_per_backend"`
	// LeanAboveConns is the number of open client connections above which
	// an idle one waits lean: without its read buffer and request parts,
	// and on Linux parked without a goroutine (docs/proxying.md). Default
	// 256: above it the lean wait costs less CPU and memory (its woken
	// connections are served by a bounded set of workers); below it, it
	// lengthens the tail (docs/BENCHMARKS.md); -1 means never.
	LeanAboveConns int `yaml:"lean_above_conns" json:"lean_above_conns"`
}

// Retries says how a failed attempt is retried on another backend.
type Retries struct {
	// Attempts is the most backends one request is tried on, the first
	// included; each backend at most once. Default 3; 1 disables retries;
	// at most 8.
	Attempts int `yaml:"attempts" json:"attempts"`
}

// Log configures the process log.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level" json:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format" json:"format"`
	// File is the log file; the --log-file flag wins. Default
	// logs/lb-<timestamp>.log.
	File string `yaml:"file" json:"file"`
	// MaxSizeMB rotates the log file when it grows past this size. Default 100.
	MaxSizeMB int `yaml:"max_size_mb" json:"max_size_mb"`
	// MaxBackups is how many rotated files are kept. Default 5.
	MaxBackups int `yaml:"max_backups" json:"max_backups"`
	// Access enables the per-request access log line. Default true.
	Access *bool `yaml:"access" json:"access"`
}

// HealthCheck configures active probes. After defaults, Type is "tcp" or
// "http". The same type is a backend's override, where zero and nil fields
// mean "keep the global value".
type HealthCheck struct {
	// Enabled false turns active checks off. Default true.
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Type is "tcp" (connect only, the default) or "http". Setting Path
	// implies "http".
	Type string `yaml:"type,omitempty" json:"type,omitempty"`
	// Path of the HTTP probe, e.g. "/health"; it must start with "/".
	// Default "/" when Type is "http".
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Interval between probes of one backend. Default 2s.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Timeout of one probe. Default 1s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Jitter spreads probes: each interval is lengthened by a random
	// fraction up to this much of it. Default 0.1 (10%).
	Jitter *float64 `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	// ExpectStatus is the accepted status range of an HTTP probe, e.g.
	// "200-399" (the default) or "200".
	ExpectStatus string `yaml:"expect_status,omitempty" json:"expect_status,omitempty"`
	// ExpectBody, if set, must occur in the first 64 KiB of the body.
	ExpectBody string `yaml:"expect_body,omitempty" json:"expect_body,omitempty"`
	// Host header of HTTP probes. Default (empty): the backend's
	// host:port, as in the probe URL.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// Fall is how many consecutive failed probes mark a backend down. Default 2.
	Fall int `yaml:"fall,omitempty" json:"fall,omitempty"`
	// Rise is how many consecutive good probes mark it up again. Default 2.
	Rise int `yaml:"rise,omitempty" json:"rise,omitempty"`
}

// Passive configures outlier detection from real traffic.
type Passive struct {
	// Enabled false turns passive checks off. Default true.
	Enabled *bool `yaml:"enabled" json:"enabled"`
	// ConsecutiveFailures (connect errors, resets, timeouts) that eject a
	// backend. Default 3.
	ConsecutiveFailures int `yaml:"consecutive_failures" json:"consecutive_failures"`
	// Consecutive5xx responses that eject a backend; 0 (default) ignores 5xx.
	Consecutive5xx int `yaml:"consecutive_5xx" json:"consecutive_5xx"`
	// BaseEjection is the first ejection's cooldown; each repeated ejection
	// doubles it up to MaxEjection. Defaults 5s and 2m.
	BaseEjection Duration `yaml:"base_ejection" json:"base_ejection"`
	MaxEjection  Duration `yaml:"max_ejection" json:"max_ejection"`
}

// Shutdown configures the graceful stop.
type Shutdown struct {
	// GracePeriod lets in-flight requests and tunnels finish after
	// SIGTERM/SIGINT. Default 30s.
	GracePeriod Duration `yaml:"grace_period" json:"grace_period"`
}

// Admin configures the admin listener.
type Admin struct {
	// Addr is HOST:PORT of the admin listener, or "off". Default
	// 127.0.0.1:9901; the --admin-addr flag wins.
	Addr string `yaml:"addr" json:"addr"`
	// TokenFile holds the bearer token required by state-changing admin
	// calls. Default none.
	TokenFile string `yaml:"token_file" json:"token_file"`
}

// Tracing configures OpenTelemetry. The OTEL_* environment variables win
// over these keys, as the OpenTelemetry specification says.
type Tracing struct {
	// Endpoint of the OTLP receiver, e.g. "http://127.0.0.1:4318". Empty
	// (default) with no OTEL_EXPORTER_OTLP_ENDPOINT set: tracing off.
	Endpoint string `yaml:"endpoint" json:"endpoint"`
	// Protocol is "grpc" or "http/protobuf" (default).
	Protocol string `yaml:"protocol" json:"protocol"`
	// ServiceName default "load_balancer".
	ServiceName string `yaml:"service_name" json:"service_name"`
	// SampleRatio of new traces, 0..1. Default 1.
	SampleRatio *float64 `yaml:"sample_ratio" json:"sample_ratio"`
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("1.5s", "200ms", "2m").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
