package config

import "time"

// Defaults of every setting. After Parse, Load, Default or ApplyDefaults,
// every zero-valued setting of a Config holds the value given here.
const (
	DefaultListenHost = "0.0.0.0" // listen.host, -H
	DefaultListenPort = 9000      // listen.port, -p

	DefaultStrategy   = "random"         // strategy, -s
	DefaultCookieName = "ZZZ_BACKEND_ID" // sticky.cookie_name, --cookie-name
	DefaultVia        = "load_balancer"  // via

	DefaultWeight = 1         // backends[].weight
	MaxWeight     = 1_000_000 // largest weight accepted, so weighted tables stay small

	DefaultDial           = 5 * time.Second   // timeouts.dial
	DefaultTLSHandshake   = 5 * time.Second   // timeouts.tls_handshake
	DefaultResponseHeader = 60 * time.Second  // timeouts.response_header
	DefaultClientHeader   = 10 * time.Second  // timeouts.client_header
	DefaultClientIdle     = 120 * time.Second // timeouts.client_idle
	DefaultClientBodyIdle = 60 * time.Second  // timeouts.client_body_idle
	DefaultBackendIdle    = 90 * time.Second  // timeouts.backend_idle

	DefaultMaxHeaderBytes         = 65536 // limits.max_header_bytes
	DefaultMaxURIBytes            = 8192  // limits.max_uri_bytes
	DefaultMaxIdleConnsPerBackend = 1024  // limits.max_idle_conns_per_backend
	DefaultLeanAboveConns         = 256   // limits.lean_above_conns (h1server.DefaultLeanAbove)

	DefaultRetryAttempts = 3 // retries.attempts
	MaxRetryAttempts     = 8 // largest retries.attempts (balancer.MaxAttempts)

	DefaultLogLevel      = "info" // log.level
	DefaultLogFormat     = "text" // log.format
	DefaultLogMaxSizeMB  = 100    // log.max_size_mb
	DefaultLogMaxBackups = 5      // log.max_backups
	DefaultLogAccess     = true   // log.access

	DefaultHealthEnabled  = true            // health_check.enabled
	DefaultHealthType     = "tcp"           // health_check.type without a path
	DefaultHealthPath     = "/"             // health_check.path of a type http check
	DefaultHealthInterval = 2 * time.Second // health_check.interval
	DefaultHealthTimeout  = 1 * time.Second // health_check.timeout
	DefaultHealthJitter   = 0.1             // health_check.jitter
	DefaultExpectStatus   = "200-399"       // health_check.expect_status
	DefaultFall           = 2               // health_check.fall
	DefaultRise           = 2               // health_check.rise

	DefaultPassiveEnabled      = true             // passive_health.enabled
	DefaultConsecutiveFailures = 3                // passive_health.consecutive_failures
	DefaultBaseEjection        = 5 * time.Second  // passive_health.base_ejection
	DefaultMaxEjection         = 2 * time.Minute  // passive_health.max_ejection
	DefaultGracePeriod         = 30 * time.Second // shutdown.grace_period

	DefaultAdminAddr = "127.0.0.1:9901" // admin.addr, --admin-addr
	AdminOff         = "off"            // admin.addr value that disables the admin listener

	DefaultServiceName     = "load_balancer" // tracing.service_name
	DefaultTracingProtocol = "http/protobuf" // tracing.protocol
	DefaultSampleRatio     = 1.0             // tracing.sample_ratio
)

// Strategy names accepted by the strategy key (the same as the -s flag's).
const (
	StrategyRoundRobin         = "round-robin"
	StrategyWeightedRoundRobin = "weighted-round-robin"
	StrategyRandom             = "random"
	StrategySticky             = "sticky"
)

var strategies = []string{StrategyRoundRobin, StrategyWeightedRoundRobin, StrategyRandom, StrategySticky}

// Health check types.
const (
	HealthTCP  = "tcp"
	HealthHTTP = "http"
)

// DefaultLogFile returns the log file used when neither log.file nor
// --log-file is given: logs/lb-<timestamp>.log, with the local start time
// as YYYYMMDD-HHMMSS.
func DefaultLogFile(start time.Time) string {
	return "logs/lb-" + start.Format("20060102-150405") + ".log"
}

// Default returns the built-in configuration used without -c: backends
// 127.0.0.1:9001 and 127.0.0.1:9002 with weight 1, every other setting at
// its default.
func Default() *Config {
	c := &Config{Backends: []Backend{
		{Host: "127.0.0.1", Port: 9001, Weight: ptr(1)},
		{Host: "127.0.0.1", Port: 9002, Weight: ptr(1)},
	}}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults replaces every zero-valued setting of c by its default. Nil
// pointer settings of the global sections (health_check.enabled, .jitter,
// passive_health.enabled, log.access, tracing.sample_ratio) get a pointer to
// the default. Backends are left as written: a nil Weight stays nil (see
// EffectiveWeight) and a health_check override stays an override (see
// HealthCheckFor).
func (c *Config) ApplyDefaults() {
	setDefault(&c.Listen.Host, DefaultListenHost)
	setDefault(&c.Listen.Port, DefaultListenPort)
	setDefault(&c.Strategy, DefaultStrategy)
	setDefault(&c.Sticky.CookieName, DefaultCookieName)
	setDefault(&c.Via, DefaultVia)

	t := &c.Timeouts
	setDefault(&t.Dial, Duration(DefaultDial))
	setDefault(&t.TLSHandshake, Duration(DefaultTLSHandshake))
	setDefault(&t.ResponseHeader, Duration(DefaultResponseHeader))
	setDefault(&t.ClientHeader, Duration(DefaultClientHeader))
	setDefault(&t.ClientIdle, Duration(DefaultClientIdle))
	setDefault(&t.ClientBodyIdle, Duration(DefaultClientBodyIdle))
	setDefault(&t.BackendIdle, Duration(DefaultBackendIdle))

	l := &c.Limits
	setDefault(&l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&l.MaxURIBytes, DefaultMaxURIBytes)
	setDefault(&l.MaxIdleConnsPerBackend, DefaultMaxIdleConnsPerBackend)
	setDefault(&l.LeanAboveConns, DefaultLeanAboveConns)

	setDefault(&c.Retries.Attempts, DefaultRetryAttempts)

	g := &c.Log
	setDefault(&g.Level, DefaultLogLevel)
	setDefault(&g.Format, DefaultLogFormat)
	setDefault(&g.MaxSizeMB, DefaultLogMaxSizeMB)
	setDefault(&g.MaxBackups, DefaultLogMaxBackups)
	setDefaultPtr(&g.Access, DefaultLogAccess)

	c.HealthCheck.applyDefaults()

	p := &c.Passive
	setDefaultPtr(&p.Enabled, DefaultPassiveEnabled)
	setDefault(&p.ConsecutiveFailures, DefaultConsecutiveFailures)
	setDefault(&p.BaseEjection, Duration(DefaultBaseEjection))
	setDefault(&p.MaxEjection, Duration(DefaultMaxEjection))

	setDefault(&c.Shutdown.GracePeriod, Duration(DefaultGracePeriod))
	setDefault(&c.Admin.Addr, DefaultAdminAddr)

	tr := &c.Tracing
	setDefault(&tr.ServiceName, DefaultServiceName)
	setDefault(&tr.Protocol, DefaultTracingProtocol)
	setDefaultPtr(&tr.SampleRatio, DefaultSampleRatio)
}

// applyDefaults fills the zero fields of a complete (merged or global)
// health check. A path makes the type "http"; an http check without a path
// probes "/".
func (h *HealthCheck) applyDefaults() {
	setDefaultPtr(&h.Enabled, DefaultHealthEnabled)
	if h.Type == "" {
		h.Type = DefaultHealthType
		if h.Path != "" {
			h.Type = HealthHTTP
		}
	}
	if h.Type == HealthHTTP {
		setDefault(&h.Path, DefaultHealthPath)
	}
	setDefault(&h.Interval, Duration(DefaultHealthInterval))
	setDefault(&h.Timeout, Duration(DefaultHealthTimeout))
	setDefaultPtr(&h.Jitter, DefaultHealthJitter)
	setDefault(&h.ExpectStatus, DefaultExpectStatus)
	setDefault(&h.Fall, DefaultFall)
	setDefault(&h.Rise, DefaultRise)
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

func setDefaultPtr[T any](p **T, def T) {
	if *p == nil {
		*p = ptr(def)
	}
}

func ptr[T any](v T) *T { return &v }
