// Package server runs the balancer: it owns the proxy listener and the
// HTTP server in front of the proxy handler (h1server for HTTP/1.x, with
// net/http's server behind it for HTTP/2 cleartext), turns configurations
// into snapshots and swaps them in atomically, and shuts down gracefully.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/h1server"
	"github.com/lbproject/load_balancer/internal/health"
	"github.com/lbproject/load_balancer/internal/proxy"

	"github.com/lbproject/load_balancer/internal/ring"
)

// Server is one running balancer.
type Server struct {
	log     *slog.Logger
	handler *proxy.Handler
	checker *health.Checker

	mu      sync.Mutex // serialises Apply; never taken on the request path
	reg     *registry
	current *compiled

	opts     Options
	live     atomic.Pointer[compiled] // current, for readers that take no lock
	reloadMu sync.Mutex               // serialises Reload
	reloads  *ring.Ring[Reload]       // the last RecentReloads
	serving  atomic.Bool              // Serve has started
	stopping atomic.Bool              // Shutdown has started

	front    *h1server.Server
	listener net.Listener
}

// New compiles cfg and returns a server ready to Serve. An invalid cfg is an
// error and nothing is started.
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	return NewWithOptions(cfg, log, Options{})
}

// NewWithOptions is New with hooks for metrics and the admin listener.
func NewWithOptions(cfg *config.Config, log *slog.Logger, opts Options) (*Server, error) {
	start := time.Now()
	s := &Server{log: log, handler: proxy.New(log), reg: newRegistry(), opts: opts}
	s.checker = health.NewChecker(log, opts.OnHealthEvent)
	s.handler.Observer = s.checker
	s.handler.Metrics = opts.Metrics
	if err := s.Apply(cfg); err != nil {
		s.checker.Close()
		return nil, err
	}
	s.reloads = ring.New[Reload](RecentReloads)
	s.reloads.Add(startupReload(cfg, start))
	// HTTP/2 cleartext with prior knowledge on the same port: h1server
	// hands those connections to net/http's server.
	h2 := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: cfg.Timeouts.ClientHeader.D(),
		IdleTimeout:       cfg.Timeouts.ClientIdle.D(),
		MaxHeaderBytes:    goMaxHeaderBytes(cfg.Limits.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Protocols:         new(http.Protocols),
		ConnContext:       proxy.ConnContext,
	}
	h2.Protocols.SetHTTP1(true)
	h2.Protocols.SetUnencryptedHTTP2(true)
	s.front = &h1server.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: cfg.Timeouts.ClientHeader.D(),
		IdleTimeout:       cfg.Timeouts.ClientIdle.D(),
		MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		LeanAbove:         cfg.Limits.LeanAboveConns,
		// The client's address is parsed once per connection, not per request.
		ConnContext: proxy.ConnContext,
		HTTP2:       h2,
		Log:         log,
		// The proxy handler is served as it is, with no middleware that
		// reads the request's header after it.
		HandlerOwnsRequestHeader: true,
	}
	return s, nil
}

// goMaxHeaderBytes converts limits.max_header_bytes (the whole request head:
// request line and header fields) to http.Server.MaxHeaderBytes (for
// HTTP/2, where it bounds the decoded header list), to which
// Go's server adds 4096 bytes of slack (so limits under 4 KiB act as 4 KiB).
func goMaxHeaderBytes(limit int) int {
	const slack = 4096
	return max(limit-slack, 1)
}

// Handler returns the proxy handler (for tests and the admin API).
func (s *Server) Handler() *proxy.Handler { return s.handler }

// Apply compiles cfg and, if that succeeds, makes it the running
// configuration. On error the running configuration stays in service.
func (s *Server) Apply(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := compile(cfg, s.reg)
	if err != nil {
		return err
	}
	for b, d := range c.drain {
		b.SetDraining(d)
	}
	s.checker.SetPassive(cfg.Passive)
	s.checker.Update(c.targets)
	if s.current != nil {
		// Backends this reload added get a first probe before they take
		// traffic (bounded: one that does not answer in time joins healthy).
		s.checker.InitialRound(context.Background(), initialProbeBound)
		s.warnRestartOnly(s.current.cfg, cfg)
	}
	s.handler.Store(c.proxy)
	// After the swap, so that no new request picks a removed backend once
	// its idle connections are closed.
	removed := s.reg.commit(c.members)
	s.current = c
	s.live.Store(c)
	for _, b := range removed {
		s.log.Info("backend removed", "backend", b.String(), "in_flight", b.InFlight())
	}
	return nil
}

// warnRestartOnly logs the settings a reload changed that only take effect
// at the next start: they belong to the listener and the process, not to
// the snapshot.
func (s *Server) warnRestartOnly(old, next *config.Config) {
	var keys []string
	if old.Listen != next.Listen {
		keys = append(keys, "listen")
	}
	if old.Timeouts.ClientHeader != next.Timeouts.ClientHeader || old.Timeouts.ClientIdle != next.Timeouts.ClientIdle {
		keys = append(keys, "timeouts.client_header/client_idle")
	}
	if old.Limits.MaxHeaderBytes != next.Limits.MaxHeaderBytes {
		keys = append(keys, "limits.max_header_bytes")
	}
	if old.Limits.LeanAboveConns != next.Limits.LeanAboveConns {
		keys = append(keys, "limits.lean_above_conns")
	}
	if old.Log.File != next.Log.File || old.Log.Format != next.Log.Format || old.Log.Level != next.Log.Level {
		keys = append(keys, "log")
	}
	if old.Admin != next.Admin {
		keys = append(keys, "admin")
	}
	if len(keys) > 0 {
		s.log.Warn("config reload: these settings apply at the next start only", "keys", keys)
	}
}

// Config returns the running configuration.
func (s *Server) Config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current.cfg
}

// Listen binds the proxy address. It is separate from Serve so that a bind
// error is reported before anything else starts.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	s.listener = ln
	return nil
}

// initialProbeBound bounds the first probe round of backends a reload adds.
const initialProbeBound = time.Second

// CheckHealth runs one round of health probes of every backend and waits
// for it at most bound. Backends that fail it start out of rotation; those
// that do not answer within bound start healthy, so the first requests are
// never refused because probes have not run yet.
func (s *Server) CheckHealth(ctx context.Context, bound time.Duration) {
	s.checker.InitialRound(ctx, bound)
}

// Health returns the health checker (for the admin API).
func (s *Server) Health() *health.Checker { return s.checker }

// Addr returns the bound proxy address.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Serve serves on the listener from Listen until Shutdown. It returns nil
// after a shutdown.
func (s *Server) Serve() error {
	s.serving.Store(true)
	err := s.front.Serve(s.listener)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for requests in flight and
// open tunnels to finish, at most until ctx is done; then it closes what is
// left. It returns ctx's error if it had to cut connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	err := s.front.Shutdown(ctx)
	if err != nil {
		s.front.Close()
	}
	// Tunnels are counted from before their hijack, so once Shutdown has
	// returned no new one can start and every open one is known here.
	s.handler.WaitTunnels(ctx)
	if err == nil {
		err = ctx.Err()
	}
	s.checker.Close()
	s.mu.Lock()
	for _, r := range s.reg.backends {
		r.backend.CloseIdleConnections()
	}
	s.mu.Unlock()
	return err
}

// gracePeriod returns the running configuration's shutdown grace period.
func (s *Server) GracePeriod() time.Duration { return s.Config().Shutdown.GracePeriod.D() }
