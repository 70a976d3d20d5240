// Package admin is the balancer's admin listener: Prometheus metrics at
// /metrics, a JSON API under /api/v1/, liveness and readiness probes at
// /healthz and /readyz, and a live dashboard at /.
//
// It listens on its own address (loopback by default), never on the proxy
// port. Reads (GET) are open; every call that changes state (POST) needs
// the bearer token when one is configured, and cross-origin POSTs from
// browsers are refused, so a web page cannot drain a backend through a
// loopback admin listener without a token.
package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/lbproject/load_balancer/internal/server"
	"github.com/lbproject/load_balancer/internal/telemetry"
)

// Options configure the admin listener.
type Options struct {
	// Server is the balancer the API shows and changes. Required.
	Server *server.Server
	// Metrics are exported at /metrics and feed the API's traffic figures.
	// Required.
	Metrics *telemetry.Metrics
	// Reload reloads the configuration like SIGHUP does, for POST
	// /api/v1/reload; nil answers 501.
	Reload func() server.Reload
	// Token, if not empty, is the bearer token every POST must carry.
	Token string
	// Version is shown by the status call and the dashboard.
	Version string
	// Log receives one line per state change made through the API.
	Log *slog.Logger
}

// Admin is the admin listener. Create it with New, bind it with Listen,
// run it with Serve and stop it with Shutdown.
type Admin struct {
	opts    Options
	started time.Time
	handler http.Handler
	http    *http.Server
	ln      net.Listener
}

// New returns an admin listener for opts; it does not listen yet.
func New(opts Options) *Admin {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	a := &Admin{opts: opts, started: time.Now()}
	a.handler = a.routes()
	a.http = &http.Server{
		Handler: a.handler,
		// The admin listener has its own bounds, shorter than the proxy's:
		// its clients are operators, scrapers and the dashboard.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(opts.Log.Handler(), slog.LevelWarn),
	}
	return a
}

// Handler returns the admin handler (for tests).
func (a *Admin) Handler() http.Handler { return a.handler }

// Listen binds addr (HOST:PORT; port 0 picks a free one).
func (a *Admin) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	a.ln = ln
	return nil
}

// Addr returns the bound address.
func (a *Admin) Addr() net.Addr { return a.ln.Addr() }

// Serve serves on the listener from Listen until Shutdown; it returns nil
// after a shutdown.
func (a *Admin) Serve() error {
	err := a.http.Serve(a.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the listener and waits for calls in progress, at most
// until ctx is done; then it closes the connections left.
func (a *Admin) Shutdown(ctx context.Context) error {
	err := a.http.Shutdown(ctx)
	if err != nil {
		a.http.Close()
	}
	return err
}

// routes builds the admin mux.
func (a *Admin) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.opts.Metrics.Handler())
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)

	mux.HandleFunc("GET /api/v1/status", a.status)
	mux.HandleFunc("GET /api/v1/backends", a.backends)
	mux.HandleFunc("GET /api/v1/backends/{id}", a.backend)
	mux.Handle("POST /api/v1/backends/{id}/drain", a.guard(a.drain(true)))
	mux.Handle("POST /api/v1/backends/{id}/enable", a.guard(a.drain(false)))
	mux.HandleFunc("GET /api/v1/config", a.config)
	mux.Handle("POST /api/v1/reload", a.guard(http.HandlerFunc(a.reload)))
	mux.HandleFunc("GET /api/v1/events", a.events)

	mux.HandleFunc("GET /{$}", a.dashboard)
	mux.Handle("GET /static/", staticFiles())
	return mux
}

// guard lets a state-changing call through only with the bearer token
// (when one is configured) and never from another origin in a browser.
func (a *Admin) guard(h http.Handler) http.Handler {
	authed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.opts.Token != "" && !validToken(r.Header.Get("Authorization"), a.opts.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="load_balancer admin"`)
			writeError(w, http.StatusUnauthorized, "this call needs the admin token: Authorization: Bearer <token>")
			return
		}
		h.ServeHTTP(w, r)
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	return cop.Handler(authed)
}

// validToken compares an Authorization header with "Bearer <token>" in
// constant time.
func validToken(header, token string) bool {
	const prefix = "Bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(header[len(prefix):])), []byte(token)) == 1
}

// ReadToken reads the bearer token from file: its content without
// surrounding white space, which must not be empty.
func ReadToken(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("admin token file %s: empty", file)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("admin token file %s: the token must be one word", file)
	}
	return tok, nil
}

// Loopback reports whether addr (HOST:PORT) binds to loopback only: a
// loopback IP or "localhost". An empty host, 0.0.0.0 and :: bind every
// interface.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
