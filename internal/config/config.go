// Package config defines the YAML configuration file, its defaults, and its
// loading with precise errors (file, line, field). It never touches a socket.
//
// The seed's format (a "backends" list of host, port and optional weight)
// stays valid forever; every other key is optional and additive.
package config

import "time"

// Config is a whole configuration file after defaults were applied.
type Config struct {
	// Backends are the servers to balance over. Required, at least one.
	Backends []Backend `yaml:"backends"`

	// Strategy is one of round-robin, weighted-round-robin, random, sticky.
	// Default "random" (the seed's); the -s flag wins over it.
	Strategy string `yaml:"strategy"`

	Sticky   Sticky   `yaml:"sticky"`
	Timeouts Timeouts `yaml:"timeouts"`
	Limits   Limits   `yaml:"limits"`
	Retries  Retries  `yaml:"retries"`

	// TrustedProxies lists the addresses or CIDRs (e.g. "10.0.0.0/8") of
	// proxies in front of the balancer whose X-Forwarded-* headers are kept.
	// From any other client those headers are replaced. Default: none.
	TrustedProxies []string `yaml:"trusted_proxies"`

	// Via is the pseudonym this balancer puts in the Via header.
	// Default "load_balancer".
	Via string `yaml:"via"`

	Log Log `yaml:"log"`

	// HealthCheck is the active health check every backend gets unless its
	// own health_check overrides fields of it. Default: TCP connect every 2s,
	// timeout 1s, fall 2, rise 2.
	HealthCheck HealthCheck `yaml:"health_check"`
	// Passive is outlier detection from real traffic.
	Passive Passive `yaml:"passive_health"`
	// Shutdown bounds the graceful drain on SIGTERM/SIGINT.
	Shutdown Shutdown `yaml:"shutdown"`
	// Admin is the admin listener (metrics, API, dashboard).
	Admin Admin `yaml:"admin"`
	// Tracing is OpenTelemetry tracing; off unless configured here or by the
	// standard OTEL_* environment variables.
	Tracing Tracing `yaml:"tracing"`

	// Source is the file this config was read from ("" for built-in defaults).
	Source string `yaml:"-"`
}

// Backend is one entry of the backends list.
type Backend struct {
	// Host is a host name or IP address, optionally prefixed by "http://" or
	// "https://". An https:// prefix, or port 443, means TLS to the backend.
	Host string `yaml:"host"`
	// Port is 1..65535. Required.
	Port int `yaml:"port"`
	// Weight is the backend's share for weighted strategies. Default 1; 0
	// means no new traffic; negative is an error.
	Weight *int `yaml:"weight"`
	// TLS settings for https backends. Ignored (with an error) for http.
	TLS BackendTLS `yaml:"tls"`
	// Drain true: the backend takes no new requests or sticky sessions;
	// requests in flight finish. Default false.
	Drain bool `yaml:"drain"`
	// HealthCheck overrides fields of the global health_check for this
	// backend; fields left out keep the global value.
	HealthCheck *HealthCheck `yaml:"health_check"`

	// Line is where the entry starts in the file, for later error messages.
	Line int `yaml:"-"`
}

// BackendTLS configures TLS to one backend. By default certificates are
// verified against the system roots and the backend's host name.
type BackendTLS struct {
	// InsecureSkipVerify turns certificate verification off. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// CAFile is a PEM file of CA certificates to verify the backend with,
	// instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the name used for SNI and verification.
	// Default: the backend's host.
	ServerName string `yaml:"server_name"`
}

// Sticky configures the sticky strategy's cookie.
type Sticky struct {
	// CookieName default "ZZZ_BACKEND_ID"; the --cookie-name flag wins.
	CookieName string `yaml:"cookie_name"`
	// Secret keys the HMAC that turns a backend address into a cookie
	// value. Instances with the same secret agree. Default: derived from the
	// cookie name, so restarts (and every instance) keep sessions.
	Secret string `yaml:"secret"`
	// MaxAge of the cookie; 0 (default) makes it a session cookie.
	MaxAge Duration `yaml:"max_age"`
}

// Timeouts bound every wait. Zero values are replaced by the defaults.
type Timeouts struct {
	Dial           Duration `yaml:"dial"`            // connect to a backend; default 5s
	TLSHandshake   Duration `yaml:"tls_handshake"`   // TLS handshake with a backend; default 5s
	ResponseHeader Duration `yaml:"response_header"` // request sent → response header received; default 60s
	ClientHeader   Duration `yaml:"client_header"`   // read a client's request header (slowloris); default 10s
	ClientIdle     Duration `yaml:"client_idle"`     // idle client keep-alive connection; default 120s
	BackendIdle    Duration `yaml:"backend_idle"`    // idle pooled backend connection; default 90s
}

// Limits bound what a client or a backend may make the balancer hold.
type Limits struct {
	// MaxHeaderBytes of a request header block; larger → 431. Default 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxURIBytes of a request target; longer → 414. Default 8192.
	MaxURIBytes int `yaml:"max_uri_bytes"`
	// MaxIdleConnsPerBackend pooled keep-alive connections. Default 256.
	MaxIdleConnsPerBackend int `yaml:"max_idle_conns_per_backend"`
	// MaxConnsPerBackend in total (0, the default, means no limit).
	MaxConnsPerBackend int `yaml:"max_conns_per_backend"`
}

// Retries says how a failed attempt is retried on another backend.
type Retries struct {
	// Attempts is the most backends one request is tried on, the first
	// included; each backend at most once. Default 3; 1 disables retries;
	// at most 8.
	Attempts int `yaml:"attempts"`
}

// Log configures the process log.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
	// File is the log file; the --log-file flag wins. Default
	// logs/lb-<timestamp>.log.
	File string `yaml:"file"`
	// MaxSizeMB rotates the log file when it grows past this size. Default 100.
	MaxSizeMB int `yaml:"max_size_mb"`
	// MaxBackups is how many rotated files are kept. Default 5.
	MaxBackups int `yaml:"max_backups"`
	// Access enables the per-request access log line. Default true.
	Access *bool `yaml:"access"`
}

// HealthCheck configures active probes. After defaults, Type is "tcp" or
// "http".
type HealthCheck struct {
	// Enabled false turns active checks off. Default true.
	Enabled *bool `yaml:"enabled"`
	// Type is "tcp" (connect only, the default) or "http". Setting Path
	// implies "http".
	Type string `yaml:"type"`
	// Path of the HTTP probe, e.g. "/health".
	Path string `yaml:"path"`
	// Interval between probes of one backend. Default 2s.
	Interval Duration `yaml:"interval"`
	// Timeout of one probe. Default 1s.
	Timeout Duration `yaml:"timeout"`
	// Jitter spreads probes: each interval is lengthened by a random
	// fraction up to this much of it. Default 0.1 (10%).
	Jitter *float64 `yaml:"jitter"`
	// ExpectStatus is the accepted status range of an HTTP probe, e.g.
	// "200-399" (the default) or "200".
	ExpectStatus string `yaml:"expect_status"`
	// ExpectBody, if set, must occur in the first 64 KiB of the body.
	ExpectBody string `yaml:"expect_body"`
	// Host header of HTTP probes. Default: the backend's host.
	Host string `yaml:"host"`
	// Fall is how many consecutive failed probes mark a backend down. Default 2.
	Fall int `yaml:"fall"`
	// Rise is how many consecutive good probes mark it up again. Default 2.
	Rise int `yaml:"rise"`
}

// Passive configures outlier detection from real traffic.
type Passive struct {
	// Enabled false turns passive checks off. Default true.
	Enabled *bool `yaml:"enabled"`
	// ConsecutiveFailures (connect errors, resets, timeouts) that eject a
	// backend. Default 3.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// Consecutive5xx responses that eject a backend; 0 (default) ignores 5xx.
	Consecutive5xx int `yaml:"consecutive_5xx"`
	// BaseEjection is the first ejection's cooldown; each repeated ejection
	// doubles it up to MaxEjection. Defaults 5s and 2m.
	BaseEjection Duration `yaml:"base_ejection"`
	MaxEjection  Duration `yaml:"max_ejection"`
}

// Shutdown configures the graceful stop.
type Shutdown struct {
	// GracePeriod lets in-flight requests and tunnels finish after
	// SIGTERM/SIGINT. Default 30s.
	GracePeriod Duration `yaml:"grace_period"`
}

// Admin configures the admin listener.
type Admin struct {
	// Addr is HOST:PORT of the admin listener, or "off". Default
	// 127.0.0.1:9901; the --admin-addr flag wins.
	Addr string `yaml:"addr"`
	// TokenFile holds the bearer token required by state-changing admin
	// calls. Default none.
	TokenFile string `yaml:"token_file"`
}

// Tracing configures OpenTelemetry. The OTEL_* environment variables win
// over these keys, as the OpenTelemetry specification says.
type Tracing struct {
	// Endpoint of the OTLP receiver, e.g. "http://127.0.0.1:4318". Empty
	// (default) with no OTEL_EXPORTER_OTLP_ENDPOINT set: tracing off.
	Endpoint string `yaml:"endpoint"`
	// Protocol is "grpc" or "http/protobuf" (default).
	Protocol string `yaml:"protocol"`
	// ServiceName default "load_balancer".
	ServiceName string `yaml:"service_name"`
	// SampleRatio of new traces, 0..1. Default 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("1.5s", "200ms", "2m").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
