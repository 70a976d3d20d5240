//go:build linux

package h1server

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// The tests of Server.HoldIdle: kept-alive connections that are not lean
// wait for their next request in the parker, with their goroutine kept.

// inHold is on the stack of every goroutine of a held connection.
const inHold = "(*conn).hold("

// heldClients opens n connections to a HoldIdle server, serves a first
// request on each, and waits until all n are parked with their goroutines
// waiting in hold.
func heldClients(t *testing.T, s *Server, addr string, n int) []*rawClient {
	t.Helper()
	cs := make([]*rawClient, n)
	for i := range cs {
		cs[i] = newRaw(t, addr)
		getPath(t, cs[i], "/first")
	}
	waitFor(t, "the connections to be held", func() bool { return s.parkedConns() == n && goroutinesIn(inHold) == n })
	return cs
}

// TestHoldIdle: a HoldIdle server's kept-alive connections wait for their
// next request parked, each with its goroutine waiting in hold (not in a
// read); woken, each serves its next request, sent whole, in two writes
// (the second after the first woke it) or two pipelined in one write, and
// is held again.
func TestHoldIdle(t *testing.T) {
	skipUnlessParking(t)
	s := &Server{IdleTimeout: ioTimeout, ReadHeaderTimeout: ioTimeout, HoldIdle: true, Handler: http.HandlerFunc(pathHandler)}
	addr := serve(t, s)
	const n = 9
	cs := heldClients(t, s, addr, n)
	if r := readingInLoop(); r != 0 {
		t.Fatalf("%d held connections wait in a read", r)
	}
	for i, c := range cs {
		var want []string
		switch i % 3 {
		case 0:
			c.send("GET /whole HTTP/1.1\r\nHost: a\r\n\r\n")
			want = []string{"/whole"}
		case 1:
			c.send("GET /spl")
			// Woken by the first part, the connection waits for the rest
			// in a read.
			waitFor(t, "the first part to wake the connection", func() bool { return s.parkedConns() == n-1 })
			c.send("it HTTP/1.1\r\nHost: a\r\n\r\n")
			want = []string{"/split"}
		case 2:
			c.send("GET /p1 HTTP/1.1\r\nHost: a\r\n\r\nGET /p2 HTTP/1.1\r\nHost: a\r\n\r\n")
			want = []string{"/p1", "/p2"}
		}
		for _, path := range want {
			if res := c.read("GET"); res.status != 200 || res.body != path {
				t.Fatalf("conn %d: got %s, want %s", i, res, path)
			}
		}
		waitFor(t, "the connection to be held again", func() bool { return s.parkedConns() == n && goroutinesIn(inHold) == n })
	}
}

// TestHoldStaleReport: a held connection woken by a report about bytes it
// had read already finds nothing and is held again, rather than wait in a
// read. (The test makes the report: the timing that makes one is the
// kernel's and the scheduler's.)
func TestHoldStaleReport(t *testing.T) {
	skipUnlessParking(t)
	s := &Server{IdleTimeout: ioTimeout, ReadHeaderTimeout: ioTimeout, HoldIdle: true, Handler: http.HandlerFunc(pathHandler)}
	addr := serve(t, s)
	c := heldClients(t, s, addr, 1)[0]
	p := s.parker.Load()
	var id uint64
	p.mu.Lock()
	for id = range p.conns {
	}
	p.mu.Unlock()
	woken := goroutinesCreated()
	p.wake(id, syscall.EPOLLIN)
	waitFor(t, "the connection to be held again", func() bool {
		return s.parkedConns() == 1 && goroutinesIn(inHold) == 1 && readingInLoop() == 0
	})
	if n := goroutinesCreated() - woken; n != 0 {
		t.Errorf("the wake started %d goroutines; a held connection's own resumes", n)
	}
	c.send("GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
	c.readBodies("/after")
}

// TestHoldIdleTimeout: a held connection idle past the idle timeout is
// closed (by the parker's sweep), and its goroutine ends.
func TestHoldIdleTimeout(t *testing.T) {
	skipUnlessParking(t)
	s := &Server{IdleTimeout: 150 * time.Millisecond, ReadHeaderTimeout: ioTimeout, HoldIdle: true, Handler: http.HandlerFunc(pathHandler)}
	addr := serve(t, s)
	c := heldClients(t, s, addr, 1)[0]
	c.expectClosed()
	waitFor(t, "the held goroutine to end", func() bool { return goroutinesIn(inHold) == 0 && s.open.Load() == 0 })
}

// TestHoldClientClose: a held connection whose client closes is woken,
// reads the end, and ends.
func TestHoldClientClose(t *testing.T) {
	skipUnlessParking(t)
	s := &Server{IdleTimeout: ioTimeout, ReadHeaderTimeout: ioTimeout, HoldIdle: true, Handler: http.HandlerFunc(pathHandler)}
	addr := serve(t, s)
	heldClients(t, s, addr, 1)[0].c.Close()
	waitFor(t, "the held connection to end", func() bool { return goroutinesIn(inHold) == 0 && s.open.Load() == 0 })
}

// TestHoldShutdown: a graceful Shutdown closes held idle connections at
// once (their goroutines end), and serves a request that came on one
// before it (woken, it is not idle).
func TestHoldShutdown(t *testing.T) {
	skipUnlessParking(t)
	entered, release := make(chan string, 1), make(chan struct{})
	s := &Server{IdleTimeout: ioTimeout, ReadHeaderTimeout: ioTimeout, HoldIdle: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/held" {
			entered <- r.URL.Path
			<-release
		}
		pathHandler(w, r)
	})}
	addr := serve(t, s)
	cs := heldClients(t, s, addr, 3)
	cs[0].send("GET /held HTTP/1.1\r\nHost: a\r\n\r\n")
	waitEntered(t, entered, "/held")
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	for _, c := range cs[1:] {
		c.expectClosed()
	}
	close(release)
	if res := cs[0].read("GET"); res.status != 200 || res.body != "/held" {
		t.Fatalf("the request in progress got %s", res)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown did not return")
	}
	if n := goroutinesIn(inHold); n != 0 {
		t.Fatalf("%d goroutines still held after Shutdown", n)
	}
}

// TestHoldClose: Close ends held connections and their goroutines.
func TestHoldClose(t *testing.T) {
	skipUnlessParking(t)
	s := &Server{IdleTimeout: ioTimeout, ReadHeaderTimeout: ioTimeout, HoldIdle: true, Handler: http.HandlerFunc(pathHandler)}
	addr := serve(t, s)
	cs := heldClients(t, s, addr, 3)
	s.Close()
	for _, c := range cs {
		c.expectClosed()
	}
	waitFor(t, "the held goroutines to end", func() bool { return goroutinesIn(inHold) == 0 && s.open.Load() == 0 })
}
