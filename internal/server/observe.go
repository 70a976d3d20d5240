package server

import (
	"time"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/health"
	"github.com/lbproject/load_balancer/internal/proxy"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// Options are the optional hooks of a Server: what the admin listener, the
// metrics and the dashboard learn from it. The zero value has none.
type Options struct {
	// Metrics, if not nil, counts every request (proxy.Handler.Metrics).
	Metrics proxy.Metrics
	// OnHealthEvent, if not nil, is called with every health transition,
	// in order, from the health checker's event goroutine.
	OnHealthEvent func(health.Event)
	// OnReload, if not nil, is called after every Reload with its result
	// (not for the configuration New starts with).
	OnReload func(Reload)
}

// Reload is one attempt to load and apply a configuration.
type Reload struct {
	Time     time.Time     // when it started
	Duration time.Duration // how long loading and applying took
	Trigger  string        // "startup", "SIGHUP", "file change", "admin API", ...
	OK       bool          // the new configuration is in service
	Error    string        // why not, naming file:line where the loader can
	// Of the configuration in service afterwards (the old one on failure):
	Source   string // its file, "" for the built-in default
	Backends int
	Strategy string
}

// RecentReloads is how many reloads Reloads keeps.
const RecentReloads = 50

// Reload loads a configuration with load and applies it, like SIGHUP: a
// file that does not load or compile changes nothing but a log line, the
// history and the OnReload hook. Reloads are serialised.
func (s *Server) Reload(trigger string, load func() (*config.Config, error)) Reload {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	r := Reload{Time: time.Now(), Trigger: trigger}
	cfg, err := load()
	if err == nil {
		err = s.Apply(cfg)
	}
	r.Duration = time.Since(r.Time)
	running := s.Config()
	r.Source, r.Backends, r.Strategy = running.Source, len(running.Backends), running.Strategy
	if err != nil {
		r.Error = err.Error()
		s.log.Error("config reload failed; running config kept", "trigger", trigger, "error", r.Error)
	} else {
		r.OK = true
		s.log.Info("config reloaded", "trigger", trigger, "backends", r.Backends, "strategy", r.Strategy)
	}
	s.reloads.Add(r)
	if s.opts.OnReload != nil {
		s.opts.OnReload(r)
	}
	return r
}

// Reloads returns the last RecentReloads reloads, oldest first; the first
// entry is the startup configuration until RecentReloads reloads pushed it
// out.
func (s *Server) Reloads() []Reload { return s.reloads.List() }

// Members returns the backends of the configuration in service with their
// weights, in the order of the file. It takes no lock.
func (s *Server) Members() []upstream.Member {
	if c := s.live.Load(); c != nil {
		return c.proxy.Pool.Members
	}
	return nil
}

// Conns returns the connection count of b's pool, or nil if b is not a
// backend of the configuration in service. It takes no lock.
func (s *Server) Conns(b *upstream.Backend) *upstream.ConnCount {
	if c := s.live.Load(); c != nil {
		if r := c.members[b.Address()]; r != nil && r.backend == b {
			return r.opts.Conns
		}
	}
	return nil
}

// BackendHealth returns the health checker's status of b.
func (s *Server) BackendHealth(b *upstream.Backend) (health.Status, bool) {
	return s.checker.Status(b)
}

// Ready reports whether the server takes requests: a configuration is in
// service, Serve has started and Shutdown has not.
func (s *Server) Ready() bool {
	return s.live.Load() != nil && s.serving.Load() && !s.stopping.Load()
}

// startupReload is the history entry of the configuration New starts with.
func startupReload(cfg *config.Config, start time.Time) Reload {
	return Reload{Time: start, Duration: time.Since(start), Trigger: "startup", OK: true,
		Source: cfg.Source, Backends: len(cfg.Backends), Strategy: cfg.Strategy}
}
