// Command lb_backend is the demo backend of the load balancer: a small HTTP
// server whose every page names the backend that served it, plus a few
// endpoints (streaming, delays, status codes, echo, sized bodies) that make
// the balancer easy to try by hand and to test.
//
//	lb_backend --port 9001 --name "Backend 1"
//	lb_backend --port 9002 --name "Backend 2"   # the seed's second backend, other styling
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

// Server timeouts. Handlers that stream (echo, chunked, sse, bytes) bound
// each read and write separately with ioTimeout instead of a whole-response
// WriteTimeout, so that a long but live stream is not cut.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 1 << 20
)

type options struct {
	host            string
	port            int
	name            string
	style           int
	accessLog       bool
	shutdownTimeout time.Duration
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process exit, so that tests could drive it.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "lb_backend: %v\nRun 'lb_backend --help' for usage.\n", err)
		return 2
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	addr := net.JoinHostPort(opts.host, strconv.Itoa(opts.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Error("cannot listen", "addr", addr, "err", err)
		return 1
	}
	port := ln.Addr().(*net.TCPAddr).Port
	name := opts.name
	if name == "" {
		name = defaultName(opts.port, port)
	}
	style := opts.style
	if style == 0 {
		style = defaultStyle(opts.port, name)
	}
	b := newBackend(name, port, style)

	var access *slog.Logger
	if opts.accessLog {
		access = logger
	}
	srv := &http.Server{
		Handler:           b.handler(access),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("listening", "name", name, "addr", ln.Addr().String(), "style", style)

	select {
	case err := <-serveErr:
		logger.Error("server failed", "err", err)
		return 1
	case <-ctx.Done():
	}
	// Further signals are absorbed: a supervisor's SIGTERM after Ctrl-C must
	// not cut the shutdown short; the shutdown timeout bounds it instead.

	logger.Info("shutting down", "name", name, "timeout", opts.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), opts.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("graceful shutdown timed out; closing connections", "err", err)
		_ = srv.Close()
	}
	logger.Info("stopped", "name", name)
	return 0
}

func parseFlags(args []string, stdout, stderr io.Writer) (options, error) {
	var o options
	fs := pflag.NewFlagSet("lb_backend", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	help := fs.BoolP("help", "h", false, "Display this help and exit.")
	fs.StringVarP(&o.host, "host", "H", "127.0.0.1", "Host address to bind to.")
	fs.IntVarP(&o.port, "port", "p", 9001, "Port to listen on (0 picks a free port, logged at start).")
	fs.StringVarP(&o.name, "name", "n", "", `Name shown on every page and in the X-Backend header (default "Backend 1" on port 9001, "Backend 2" on 9002, else "Backend <port>").`)
	fs.IntVarP(&o.style, "style", "s", 0, "Page styling: 1 (light, blue card) or 2 (dark, orange sidebar); 0 picks 1 for port 9001 or name \"Backend 1\", else 2.")
	fs.BoolVar(&o.accessLog, "access-log", true, "Log one line per request to stderr (--access-log=false for benchmarks).")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "How long SIGINT/SIGTERM waits for in-flight requests before closing them.")
	fs.Usage = func() { usage(stdout, fs) }

	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *help {
		fs.Usage()
		return o, pflag.ErrHelp
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.port < 0 || o.port > 65535 {
		return o, fmt.Errorf("--port %d out of range 0-65535", o.port)
	}
	if o.style < 0 || o.style > 2 {
		return o, fmt.Errorf("--style %d: want 1 or 2 (0 for automatic)", o.style)
	}
	if o.shutdownTimeout < 0 {
		return o, fmt.Errorf("--shutdown-timeout must not be negative")
	}
	return o, nil
}

func usage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, `Usage: lb_backend [flags]

Demo backend for the load balancer: every response names the backend that
served it (page body and X-Backend header).

Flags:
%s
Endpoints:
  /                      page naming this backend, with the request and its headers
                         (HTML when Accept includes text/html, else plain text;
                         ?format=html|text overrides)
  /health                200 "ok"
  /chunked?n=5&interval=200ms
                         n lines, one flushed chunk each (Transfer-Encoding: chunked)
  /sse?n=5&interval=200ms
                         n server-sent events, flushed one by one
  /delay?d=2s            answers after d (bare numbers are milliseconds)
  /status/{code}         answers with status code (200-599)
  /echo[?raw]            streams back the request line, headers, blank line, then the
                         body; with ?raw only the body (metadata in X-Echo-* headers)
  /bytes/{n}             n bytes (suffix k, m, g for KiB, MiB, GiB) of a repeating
                         63-byte pattern [a-z0-9A-Z\n], with Content-Length

Stops gracefully on SIGINT or SIGTERM.
`, fs.FlagUsages())
}

// defaultName is the seed's naming: Backend 1 on 9001, Backend 2 on 9002.
func defaultName(flagPort, port int) string {
	switch flagPort {
	case 9001:
		return "Backend 1"
	case 9002:
		return "Backend 2"
	}
	return "Backend " + strconv.Itoa(port)
}

// defaultStyle gives Backend 1 the first styling and every other backend the
// second, as in the seed ("Backend 2 ... with a different styling").
func defaultStyle(flagPort int, name string) int {
	if flagPort == 9001 || name == "Backend 1" {
		return 1
	}
	return 2
}
