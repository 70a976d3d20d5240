//go:build linux

package h1server

import (
	"io"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// loopbackPair returns the two ends of a TCP connection over loopback:
// sockets watched by Go's poller, as a backend connection is.
func loopbackPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err = ln.Accept()
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestPollerTurnWaitsForPoller: while another goroutine keeps yielding (the
// run queue never empties), a goroutine waiting on a socket whose bytes
// have come runs only once Go's poller runs; pollerTurn.wait lets it. With
// a yield in its place (or a wait that does not wait), the loop below ends
// with the reader still waiting: the poller runs then only from the
// runtime's monitor, after 10 ms. (Should the monitor poll within the
// loop's few microseconds, a broken wait would pass: a false pass, never
// a false failure.)
func TestPollerTurnWaitsForPoller(t *testing.T) {
	// One P: the order in which goroutines run is the scheduler's alone.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	turn := newPollerTurn()
	if turn == nil {
		t.Fatal("no socket pair")
	}
	defer func() { turn.closeReader(); turn.closeWriter() }()
	a, b := loopbackPair(t)

	var read atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf [1]byte
		if _, err := a.Read(buf[:]); err == nil {
			read.Store(true)
		}
	}()
	runtime.Gosched() // one P: the reader runs now, and waits on the poller
	if _, err := b.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	spun := make(chan struct{})
	go func() { // keeps the run queue from emptying
		defer close(spun)
		for !stop.Load() {
			runtime.Gosched()
		}
	}()
	waits := 0
	for ; waits < 3 && !read.Load(); waits++ {
		turn.wait()
	}
	stop.Store(true)
	<-spun
	if !read.Load() {
		b.Close()
		<-done
		t.Fatalf("after %d waits for the poller's turn, the goroutine whose socket became readable has not run", waits)
	}
	<-done
}

// TestPollerTurnClosed: once the read end is closed (the parker's stop),
// a wait returns at once, reporting that it did not wait: run then yields
// and finds its epoll instance closed. (A wait in progress is ended by the
// close as any read of a file in Go's poller is: os.File.Close.)
func TestPollerTurnClosed(t *testing.T) {
	turn := newPollerTurn()
	if turn == nil {
		t.Fatal("no socket pair")
	}
	defer turn.closeWriter()
	if !turn.wait() {
		t.Fatal("a wait on an open pollerTurn reported that it did not wait")
	}
	turn.closeReader()
	if turn.wait() {
		t.Error("a wait after the close reported that the poller ran")
	}
}

// TestParkLetsPollerRun: a lean server's parker, taking one connection at
// a time from a backlog of requests, lets Go's poller run between them, so
// that a handler waiting on a socket (as for a backend's answer) resumes
// as soon as its bytes come, not once the backlog is served. The first
// of sixteen requests sent together gives the waiting handler its byte;
// without the poller's turn between batches, the parker and its workers
// keep the run queue busy until all sixteen are answered (unless the
// runtime's monitor polls meanwhile, 10 ms after the last poll: a false
// pass, never a false failure).
func TestParkLetsPollerRun(t *testing.T) {
	skipUnlessParking(t)
	// One P: the order in which goroutines run is the scheduler's alone.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	every, batch := pollerTurnEvery, parkBatch
	t.Cleanup(func() { pollerTurnEvery, parkBatch = every, batch })
	pollerTurnEvery, parkBatch = 0, 1

	backend, waiting := loopbackPair(t)
	blocked := make(chan struct{})
	var served, servedWhenResumed atomic.Int32
	s := &Server{IdleTimeout: ioTimeout, ReadHeaderTimeout: ioTimeout, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/wait":
			close(blocked)
			var buf [1]byte
			if _, err := waiting.Read(buf[:]); err != nil {
				t.Error(err)
			}
			servedWhenResumed.Store(served.Load())
		case "/quick":
			if served.Add(1) == 1 {
				if _, err := backend.Write([]byte{1}); err != nil {
					t.Error(err)
				}
			}
		}
		io.WriteString(w, r.URL.Path)
	})}
	addr, ballast := serveParking(t, s)
	const n = 16
	cs := make([]*rawClient, n+1)
	for i := range cs {
		cs[i] = newRaw(t, addr)
		getPath(t, cs[i], "/first")
	}
	waitParked(t, s, n+1, ballast)

	cs[0].send("GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
	select {
	case <-blocked: // (one P: its handler waits on the poller by now)
	case <-time.After(ioTimeout):
		t.Fatal("the /wait request did not reach its handler")
	}
	for _, c := range cs[1:] {
		c.send("GET /quick HTTP/1.1\r\nHost: a\r\n\r\n")
	}
	for i, c := range cs {
		path := "/quick"
		if i == 0 {
			path = "/wait"
		}
		if res := c.read("GET"); res.status != 200 || res.body != path {
			t.Fatalf("conn %d: got %s, want %s", i, res, path)
		}
	}
	if got := servedWhenResumed.Load(); got > n/2 {
		t.Errorf("the waiting handler resumed once %d of the %d other requests were answered, want at most %d: the poller did not run between the parker's batches", got, n, n/2)
	}
}
