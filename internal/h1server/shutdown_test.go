package h1server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// blocking is a handler whose requests to /slow wait until release is
// closed; started receives one value per such request.
type blocking struct {
	started chan struct{}
	release chan struct{}
}

func newBlocking() *blocking {
	return &blocking{started: make(chan struct{}, 4), release: make(chan struct{})}
}

func (b *blocking) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/slow" {
		b.started <- struct{}{}
		<-b.release
	}
	io.WriteString(w, "done")
}

// startSlowRequest serves a blocking handler and starts one request the
// handler holds until b.release is closed.
func startSlowRequest(t *testing.T) (s *Server, addr string, b *blocking, active *rawClient) {
	b = newBlocking()
	s = &Server{Handler: b}
	addr = serve(t, s)
	active = newRaw(t, addr)
	active.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-b.started
	return s, addr, b, active
}

// shutdownAsync runs s.Shutdown(ctx) on its own goroutine, which must have
// ended by the end of the test.
func shutdownAsync(t *testing.T, s *Server, ctx context.Context) *asyncErr {
	a := &asyncErr{c: make(chan error, 1)}
	go func() { a.c <- s.Shutdown(ctx) }()
	t.Cleanup(func() {
		if !a.got {
			a.wait(t)
		}
	})
	return a
}

// asyncErr is the result of a call on another goroutine.
type asyncErr struct {
	c   chan error
	got bool
}

// returned reports whether the call has returned, without waiting.
func (a *asyncErr) returned() bool { return len(a.c) > 0 }

func (a *asyncErr) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-a.c:
		a.got = true
		return err
	case <-time.After(ioTimeout):
		t.Fatalf("Shutdown did not return in %v", ioTimeout)
		return nil
	}
}

// TestShutdownIdle: Shutdown closes kept-alive idle connections and new
// ones at once, stops accepting, and returns nil with nothing active.
func TestShutdownIdle(t *testing.T) {
	s := &Server{Handler: newBlocking()}
	addr := serve(t, s)
	kept := newRaw(t, addr)
	kept.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	kept.read("GET")
	fresh := newRaw(t, addr)
	start := time.Now()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v with idle connections only", d)
	}
	kept.expectClosed()
	fresh.expectClosed()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("the listener still accepts after Shutdown")
	}
}

// TestShutdownInFlight: Shutdown waits for an active request; its
// response carries Connection: close and the connection ends after it; an
// idle connection beside it is closed at once; Shutdown returns nil after
// the response.
func TestShutdownInFlight(t *testing.T) {
	s, addr, b, active := startSlowRequest(t)
	idle := newRaw(t, addr)
	idle.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	idle.read("GET")

	errc := shutdownAsync(t, s, context.Background())
	idle.expectClosed() // Shutdown has started: it closes idle connections first
	if errc.returned() {
		t.Fatalf("Shutdown returned %v with a request in flight", errc.wait(t))
	}
	close(b.release)
	res := active.read("GET")
	if res.status != 200 || res.body != "done" || !res.close {
		t.Fatalf("in-flight response %s %v, want 200 with Connection: close", res, res.header)
	}
	active.expectClosed()
	if err := errc.wait(t); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestShutdownContext: Shutdown returns its context's error when the
// context ends before the active requests, which still complete.
func TestShutdownContext(t *testing.T) {
	s, _, b, active := startSlowRequest(t)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != context.Canceled {
		t.Fatalf("Shutdown with a canceled context: %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown with a deadline: %v, want context.DeadlineExceeded", err)
	}
	close(b.release)
	if res := active.read("GET"); res.status != 200 || !res.close {
		t.Fatalf("in-flight response %s %v", res, res.header)
	}
	active.expectClosed()
}

// TestShutdownTwice: a second Shutdown (here one whose context has already
// ended) does not keep the first, still waiting, from returning once the
// active request is done.
func TestShutdownTwice(t *testing.T) {
	s, _, b, active := startSlowRequest(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	first := shutdownAsync(t, s, ctx)
	waitFor(t, "Shutdown to start", s.shutting.Load)
	expired, cancelExpired := context.WithCancel(context.Background())
	cancelExpired()
	if err := s.Shutdown(expired); err != context.Canceled {
		t.Fatalf("second Shutdown: %v", err)
	}
	close(b.release)
	active.read("GET")
	if err := first.wait(t); err != nil {
		t.Fatalf("first Shutdown: %v, want nil once the request is done", err)
	}
}

// TestShutdownHijacked: hijacked connections are not waited for.
func TestShutdownHijacked(t *testing.T) {
	hijacked := make(chan net.Conn, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		hijacked <- nc
	})}
	addr := serve(t, s)
	c := newRaw(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	nc := <-hijacked
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// The hijacked connection still works.
	nc.Write([]byte("still here"))
	buf := make([]byte, len("still here"))
	if _, err := io.ReadFull(c.br, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// TestServeAfterShutdown: Serve on a shut down server returns
// http.ErrServerClosed at once (and closes nothing it was not given).
func TestServeAfterShutdown(t *testing.T) {
	s := &Server{Handler: http.NotFoundHandler()}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

// TestShutdownRacesServe: Shutdown right after Serve was started (on its
// own goroutine, as callers do) stops everything Serve started, the HTTP/2
// server included, and does not race with it. Serve and Shutdown are run
// many times: a Shutdown that falls between Serve's start and its start of
// the HTTP/2 server is rare (and more frequent with -race, which also
// reports the data race on Server.h2).
func TestShutdownRacesServe(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for range 5000 {
		s := &Server{Handler: http.NotFoundHandler(), HTTP2: &http.Server{Handler: http.NotFoundHandler()}}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- s.Serve(ln) }()
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
		ln.Close()
	}
}
