package h1server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves HTTP/1.x on the listeners given to Serve. Set its fields
// before Serve; they are not changed afterwards.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// ReadHeaderTimeout bounds the wait for a request head: from the
	// connection's start for the first request, from the head's first byte
	// for later ones. 0: no bound.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection. 0: no bound.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request head: request line, fields and the
	// empty line, exactly. Larger gets 431; default 64 KiB.
	MaxHeaderBytes int
	// ConnContext, if set, returns the context of a new connection, from
	// which the context of each of its requests takes its values.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// HTTP2, if set, serves the connections that open with the HTTP/2
	// client preface (h2c with prior knowledge). Without it they get 505.
	HTTP2 *http.Server
	// Log receives the panics of the handler and accept errors.
	Log *slog.Logger
	// LeanAbove is the number of open connections above which an idle
	// connection waits lean: it gives its read buffer and request parts
	// back (its read attempts take a pooled buffer only for the system
	// call) and, on Linux, is parked without a goroutine (see parker), as
	// are new connections until their first bytes arrive: about 13 KiB
	// less per idle connection (buffer, header map, goroutine stack), for
	// a hand-off, a copy and pool traffic per request. 0 means
	// DefaultLeanAbove; negative, never.
	LeanAbove int
	// HandlerOwnsRequestHeader says that nothing reads a request's header
	// once Handler has run but Handler itself: the server does not, so the
	// handler may change it in place (its ResponseWriter's
	// OwnsRequestHeader reports this). Set it only when no middleware
	// around the handler reads r.Header after calling it. Default false.
	HandlerOwnsRequestHeader bool

	mu        sync.Mutex
	conns     map[*conn]struct{}
	listeners map[net.Listener]struct{}
	h2        *handoffListener // mu; set once by the first Serve
	shutting  atomic.Bool
	open      atomic.Int64           // connections being served
	done      chan struct{}          // mu; made by the first Shutdown, closed when no connection is left
	parker    atomic.Pointer[parker] // made by the first park (getParker)
	noParker  bool                   // mu: the system gave none; not asked again
}

// DefaultMaxHeaderBytes is the head limit when MaxHeaderBytes is 0.
const DefaultMaxHeaderBytes = 64 << 10

// DefaultLeanAbove is LeanAbove's default. Under it a goroutine waiting in
// a read is cheaper and answers sooner; above it the memory saved matters,
// and since woken connections wait in a queue for a bounded set of
// workers (see parker) so does the CPU: at 512 busy connections on one
// CPU, 24 % more requests per CPU-second with a shorter p99, and at 128
// still 10 % more but twice the p99 (docs/BENCHMARKS.md).
const DefaultLeanAbove = 256

// lean reports whether idle connections should give back their buffers.
func (s *Server) lean() bool {
	limit := int64(s.LeanAbove)
	if limit == 0 {
		limit = DefaultLeanAbove
	}
	return leanWaits && limit > 0 && s.open.Load() > limit
}

// getParker returns the parker of idle connections, started at the first
// call; nil if there can be none, or the server is shutting down.
func (s *Server) getParker() *parker {
	if p := s.parker.Load(); p != nil {
		return p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.parker.Load(); p != nil || s.noParker || s.shutting.Load() {
		return p
	}
	bound := s.IdleTimeout
	if bound <= 0 || s.ReadHeaderTimeout > 0 && s.ReadHeaderTimeout < bound {
		bound = s.ReadHeaderTimeout
	}
	p := newParker(bound)
	if p == nil {
		s.noParker = true
		return nil
	}
	s.parker.Store(p)
	return p
}

// closeParker closes the parked connections and stops the parker.
func (s *Server) closeParker() {
	s.mu.Lock()
	p := s.parker.Load()
	s.mu.Unlock()
	if p != nil {
		p.close()
	}
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return DefaultMaxHeaderBytes
}

// Serve accepts connections on ln and serves each on its own goroutine
// until Shutdown or Close. It returns http.ErrServerClosed after those,
// like net/http.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(ln) {
		return http.ErrServerClosed
	}
	defer s.untrack(ln)
	s.startHTTP2()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors and the like: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logf("accept error, retrying", "error", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, nc)
		if !s.add(c) {
			nc.Close()
			return http.ErrServerClosed
		}
		if s.lean() {
			c.serveParked()
		} else {
			go c.serve()
		}
	}
}

// track records a listener for Shutdown; false once shutting down.
func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
}

func (s *Server) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.open.Add(1)
	return true
}

// remove forgets a connection that ended or was hijacked.
func (s *Server) remove(c *conn) {
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.open.Add(-1)
		if len(s.conns) == 0 && s.done != nil {
			close(s.done) // once: the last connection goes once
		}
	}
	s.mu.Unlock()
}

// startHTTP2 starts the HTTP/2 server on the hand-off listener, once, and
// not after a shutdown began (which would leave it running).
func (s *Server) startHTTP2() {
	if s.HTTP2 == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h2 != nil || s.shutting.Load() {
		return
	}
	h2 := newHandoffListener()
	s.h2 = h2
	go func() { _ = s.HTTP2.Serve(h2) }()
}

// handOver gives an HTTP/2 connection to the HTTP/2 server; false if there
// is none (or it is shutting down).
func (s *Server) handOver(nc net.Conn) bool {
	s.mu.Lock()
	h2 := s.h2
	s.mu.Unlock()
	return h2 != nil && h2.give(nc)
}

// Shutdown stops accepting connections, closes idle ones, and waits until
// the active ones have finished their response, at most until ctx is done
// (then it returns ctx's error and leaves the rest to Close). Hijacked
// connections are not waited for.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	if s.done == nil {
		// One channel for every Shutdown call, closed once.
		s.done = make(chan struct{})
		if len(s.conns) == 0 {
			close(s.done)
		}
	}
	done := s.done
	h2 := s.h2
	s.mu.Unlock()
	var h2err chan error
	if h2 != nil {
		h2err = make(chan error, 1)
		go func() { h2err <- s.HTTP2.Shutdown(ctx) }()
	}
	err := s.waitConns(ctx, done)
	s.closeParker()
	if h2err != nil {
		if e := <-h2err; err == nil {
			err = e
		}
	}
	return err
}

// waitConns closes idle connections until none is left, polling (as
// net/http does) since a connection may turn idle at any time; an active
// one closes itself after its response.
func (s *Server) waitConns(ctx context.Context, done chan struct{}) error {
	if done == nil {
		return nil
	}
	tick := time.Millisecond
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			s.closeIdle()
			tick = min(2*tick, 100*time.Millisecond)
			timer.Reset(tick)
		}
	}
}

func (s *Server) closeIdle() {
	var parked []*conn
	s.mu.Lock()
	for c := range s.conns {
		if c.state.Load() == stateIdle {
			if c.woken.Load() || c.parked.Load() && c.readable() {
				continue // its next request came: the parker resumes it
			}
			if c.unpark() {
				parked = append(parked, c) // closed below: that takes mu
			} else {
				c.rwc.Close()
			}
		}
	}
	s.mu.Unlock()
	for _, c := range parked {
		c.finish()
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.shutting.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.rwc.Close()
	}
	h2 := s.h2
	s.mu.Unlock()
	s.closeParker()
	if h2 != nil {
		return s.HTTP2.Close()
	}
	return nil
}

func (s *Server) logf(msg string, args ...any) {
	if s.Log != nil {
		s.Log.Warn(msg, args...)
	}
}

// handoffListener is the listener of the HTTP/2 server: its connections
// are those the HTTP/1 server recognised as HTTP/2.
type handoffListener struct {
	ch     chan net.Conn
	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

func newHandoffListener() *handoffListener {
	return &handoffListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) give(nc net.Conn) bool {
	select {
	case l.ch <- nc:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.ch:
		return nc, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	return nil
}

func (l *handoffListener) Addr() net.Addr { return handoffAddr{} }

type handoffAddr struct{}

func (handoffAddr) Network() string { return "tcp" }
func (handoffAddr) String() string  { return "h2c-handoff" }

// parkedConns counts the connections parked now (for tests).
func (s *Server) parkedConns() int {
	if p := s.parker.Load(); p != nil {
		return p.parkedConns()
	}
	return 0
}
