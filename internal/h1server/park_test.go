//go:build linux

package h1server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
)

// The tests of parking (park_linux.go): a lean server's idle connections,
// and its new ones until their first bytes, wait with no goroutine.

// inLoop is on the stack of every goroutine serving a connection.
const inLoop = "(*conn).loop"

func skipUnlessParking(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("connections are parked on Linux only")
	}
}

// pathHandler answers with the request's path.
func pathHandler(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }

// serveParking is serveLean that also returns how many goroutines serve a
// connection (are in loop) once only the ballast is open: one, the
// ballast's. serveLean's ballast was served while the server was not lean,
// and waits in a read until its next request (the tests send none); it is
// never parked. serveParking waits until it does: a ballast still
// finishing its response when the first connection of the test is
// accepted would see the server lean and be parked.
func serveParking(t *testing.T, s *Server) (addr string, ballast int) {
	t.Helper()
	addr = serveLean(t, s)
	waitFor(t, "the ballast to wait for its next request in a read", func() bool { return readingInLoop() == 1 })
	if n := s.parkedConns(); n != 0 {
		t.Fatalf("%d connections parked with only the ballast open", n)
	}
	return addr, 1
}

// readingInLoop counts the goroutines that wait for a connection's next
// request in a read (not parked, not in waitIdle or waitReadable): through
// a sockio.Socket, or through net.Conn where there is none.
func readingInLoop() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, inLoop) && (strings.Contains(g, "internal/poll.(*FD).Read(") || strings.Contains(g, "sockio.(*Socket).Read(")) &&
			!strings.Contains(g, "(*conn).waitIdle") && !strings.Contains(g, "(*conn).waitReadable") {
			n++
		}
	}
	return n
}

// waitParked waits until n connections are parked and loop goroutines
// are ballast many: the parked ones hold none.
func waitParked(t *testing.T, s *Server, n, ballast int) {
	t.Helper()
	var parked, loops int
	deadline := time.Now().Add(ioTimeout)
	for {
		parked, loops = s.parkedConns(), goroutinesIn(inLoop)
		if parked == n && loops == ballast {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("waiting for %d connections parked and %d goroutines serving connections: %d and %d after %v; %d open\n%s",
				n, ballast, parked, loops, ioTimeout, s.open.Load(), buf)
		}
		time.Sleep(time.Millisecond) // polled: parking is not an event a test sees
	}
}

// TestParkIdle: the kept-alive idle connections of a lean server are
// parked and hold no goroutine; woken, each serves its next request, sent
// whole, in two writes (the second one after the first woke it), or two
// pipelined in one write, and parks again.
func TestParkIdle(t *testing.T) {
	skipUnlessParking(t)
	s := &Server{IdleTimeout: ioTimeout, ReadHeaderTimeout: ioTimeout, Handler: http.HandlerFunc(pathHandler)}
	addr, ballast := serveParking(t, s)
	const n = 20
	cs := make([]*rawClient, n)
	for i := range cs {
		cs[i] = newRaw(t, addr)
		cs[i].send("GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
		if res := cs[i].read("GET"); res.status != 200 || res.body != "/first" {
			t.Fatalf("conn %d: first request got %s", i, res)
		}
	}
	waitParked(t, s, n, ballast)

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
		for _, w := range want {
			if res := c.read("GET"); res.status != 200 || res.body != w {
				t.Fatalf("conn %d: got %s, want %s", i, res, w)
			}
		}
		waitParked(t, s, n, ballast)
	}
	for i, c := range cs {
		c.send("GET /third HTTP/1.1\r\nHost: a\r\n\r\n")
		if res := c.read("GET"); res.status != 200 || res.body != "/third" {
			t.Fatalf("conn %d: third request got %s", i, res)
		}
	}
	waitParked(t, s, n, ballast)
}

// TestParkWithRequestWaiting: a connection is parked straight after its
// response, with no read attempt first (waitIdle); a next request already
// in its socket by then (sent while the handler was still running) wakes
// it at once and is served, and so does one that comes after.
func TestParkWithRequestWaiting(t *testing.T) {
	skipUnlessParking(t)
	sent := make(chan struct{})
	s := &Server{IdleTimeout: ioTimeout, ReadHeaderTimeout: ioTimeout, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			w.Header().Set("Content-Length", "5") // complete once flushed
			io.WriteString(w, "/hold")
			http.NewResponseController(w).Flush()
			<-sent // the next request is in the socket before this connection waits
			return
		}
		pathHandler(w, r)
	})}
	addr, ballast := serveParking(t, s)
	c := newRaw(t, addr)
	getPath(t, c, "/first")
	waitParked(t, s, 1, ballast)
	c.send("GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
	if res := c.read("GET"); res.body != "/hold" {
		t.Fatalf("got %s", res)
	}
	c.send("GET /waiting HTTP/1.1\r\nHost: a\r\n\r\n") // loopback: in the server's socket on return
	close(sent)
	if res := c.read("GET"); res.status != 200 || res.body != "/waiting" {
		t.Fatalf("request waiting when the connection parked: got %s", res)
	}
	waitParked(t, s, 1, ballast)
	getPath(t, c, "/after")
}

// TestParkNew: a lean server's new connection is parked as accepted, with
// no goroutine ever started for it (not even one that parks it soon
// after), until its first bytes; then it is served (as a first request)
// and, idle again, parked again.
func TestParkNew(t *testing.T) {
	skipUnlessParking(t)
	s := &Server{IdleTimeout: ioTimeout, ReadHeaderTimeout: ioTimeout, Handler: http.HandlerFunc(pathHandler)}
	addr, ballast := serveParking(t, s)
	const n = 20
	runtime.GC() // starts the collector's workers, which would be counted
	before := goroutinesCreated()
	cs := make([]net.Conn, n)
	for i := range cs {
		// Not dial: its timeout may start a goroutine.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(ioTimeout))
		cs[i] = c
	}
	waitFor(t, "the new connections to be open", func() bool { return s.open.Load() == n+1 })
	waitParked(t, s, n, ballast)
	// The parker's goroutine may be started now; no more than a few others.
	if d := goroutinesCreated() - before; d > n/4 {
		t.Errorf("%d goroutines started for %d new connections parked", d, n)
	}
	for i, nc := range cs {
		c := &rawClient{t: t, c: nc, br: bufio.NewReader(nc)}
		getPath(t, c, fmt.Sprint("/new", i))
		waitParked(t, s, n, ballast)
		c.expectOpen()
	}
}

// getPath sends GET path on c and checks that pathHandler answered it.
func getPath(t *testing.T, c *rawClient, path string) {
	t.Helper()
	c.send("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
	if res := c.read("GET"); res.status != 200 || res.body != path {
		t.Fatalf("GET %s: got %s", path, res)
	}
}

// goroutinesCreated is how many goroutines the program has started.
func goroutinesCreated() uint64 {
	m := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(m)
	return m[0].Value.Uint64()
}

// TestParkHeaderTimeout: a new connection parked without sending anything
// is closed once ReadHeaderTimeout has passed, not after IdleTimeout.
func TestParkHeaderTimeout(t *testing.T) {
	skipUnlessParking(t)
	const timeout = 100 * time.Millisecond
	s := &Server{ReadHeaderTimeout: timeout, IdleTimeout: 10 * time.Second, Handler: http.HandlerFunc(pathHandler)}
	addr, ballast := serveParking(t, s)
	start := time.Now()
	c := newRaw(t, addr)
	waitParked(t, s, 1, ballast)
	c.expectClosed()
	if d := time.Since(start); d < timeout*9/10 || d > 10*timeout {
		t.Errorf("closed after %v, want about %v", d, timeout)
	}
	waitFor(t, "the server to forget the connection", func() bool { return s.open.Load() == 1 && s.parkedConns() == 0 })
}

// TestParkIdleTimeout: a kept-alive connection parked is closed once
// IdleTimeout has passed since its last response (and not before). (No
// ballast: it would time out too; two connections keep the server lean.)
func TestParkIdleTimeout(t *testing.T) {
	skipUnlessParking(t)
	const idle = 300 * time.Millisecond
	s := &Server{LeanAbove: 1, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle, Handler: http.HandlerFunc(pathHandler)}
	addr := serve(t, s)
	a, b := newRaw(t, addr), newRaw(t, addr)
	waitFor(t, "both connections to be open", func() bool { return s.open.Load() == 2 })
	var start time.Time
	for _, c := range []*rawClient{b, a} {
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		c.read("GET")
		start = time.Now()
	}
	waitParked(t, s, 2, 0)
	a.expectClosed()
	if d := time.Since(start); d < idle*9/10 || d > idle+time.Second {
		t.Errorf("closed after %v, want about %v", d, idle)
	}
	b.expectClosed()
}

// TestParkH2C: a new connection parked before its first bytes is still
// served as a first one when they come: the HTTP/2 preface is recognised
// and the connection handed to the HTTP/2 server.
func TestParkH2C(t *testing.T) {
	skipUnlessParking(t)
	handed := make(chan net.Conn, 1)
	h2 := h2cServer(http.HandlerFunc(protoHandler))
	h2.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		handed <- nc
		return ctx
	}
	s := &Server{Handler: http.HandlerFunc(protoHandler), HTTP2: h2}
	addr, ballast := serveParking(t, s)
	nc := dial(t, addr)
	waitParked(t, s, 1, ballast)
	tr := &http2.Transport{AllowHTTP: true}
	cc, err := tr.NewClientConn(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	req, _ := http.NewRequest("POST", "http://"+addr+"/h2", bytes.NewReader([]byte("x")))
	res, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.ProtoMajor != 2 || string(b) != "HTTP/2.0 POST /h2 x" {
		t.Fatalf("got %s %q, %v; want an HTTP/2 response from the HTTP/2 server", res.Proto, b, err)
	}

	// Handed over, the connection left the parker's epoll instance: its
	// registration is for the connection's life, and would otherwise
	// report what comes for the HTTP/2 server.
	if inParker(s, <-handed) {
		t.Fatal("the connection handed to the HTTP/2 server is still registered with the parker")
	}
	if n := activeConns(s); n != 0 {
		t.Fatalf("the parker counts %d connections admitted, want 0", n)
	}
}

// inParker reports whether the socket of nc is registered with the epoll
// instance of the parker of s. (EPOLL_CTL_MOD fails with ENOENT if it is
// not; if it is, it clobbers the registration: call it once, at the end.)
func inParker(s *Server, nc net.Conn) bool {
	if pc, ok := nc.(*prefixConn); ok {
		nc = pc.Conn
	}
	raw, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		panic(err)
	}
	raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
		err = syscall.EpollCtl(s.parker.Load().epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
	})
	return err == nil
}

// TestParkHijack: a parked connection that a handler hijacks (an upgrade)
// leaves the parker's epoll instance when it is handed over.
func TestParkHijack(t *testing.T) {
	skipUnlessParking(t)
	registered := make(chan bool, 1)
	var s *Server
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hijack" {
			io.WriteString(w, r.URL.Path)
			return
		}
		nc, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			registered <- false
			return
		}
		defer nc.Close()
		registered <- inParker(s, nc)
	}
	s = &Server{Handler: http.HandlerFunc(h)}
	addr, ballast := serveParking(t, s)
	c := keptAliveParked(t, s, addr, 1, ballast)
	c.send("GET /hijack HTTP/1.1\r\nHost: a\r\n\r\n")
	if <-registered {
		t.Fatal("the hijacked connection is still registered with the parker")
	}
	if n := activeConns(s); n != 0 {
		t.Fatalf("the parker counts %d connections admitted, want 0", n)
	}
}

// TestParkStaleReport: a report about bytes the connection has read
// already (collected while it was busy, and handled once it had parked
// again) resumes it with nothing to read: it parks again, rather than wait
// in a read, holding a goroutine. (The test makes the report: the timing
// that makes one is the kernel's and the scheduler's.)
func TestParkStaleReport(t *testing.T) {
	skipUnlessParking(t)
	s := &Server{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(pathHandler)}
	addr, ballast := serveParking(t, s)
	c := keptAliveParked(t, s, addr, 1, ballast)
	p := s.parker.Load()
	var id uint64
	p.mu.Lock()
	for id = range p.conns {
	}
	p.mu.Unlock()
	p.wake(id, syscall.EPOLLIN)
	waitParked(t, s, 1, ballast)
	if n := activeConns(s); n != 0 {
		t.Fatalf("the parker counts %d connections admitted, want 0", n)
	}
	c.send("GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
	c.readBodies("/after")
}

// TestParkAfterContextWatch: a handler that watched its request's context
// made the server read the connection in the background (one byte: the
// client leaving, or its next request starting); that read, ended when the
// handler returns, may not reach the socket, and must not count as one
// that found nothing: the report of the next request, which came
// meanwhile, still makes the connection read before it parks.
func TestParkAfterContextWatch(t *testing.T) {
	skipUnlessParking(t)
	// One P: the background read runs once the handler has returned and
	// ended it, as it often does on a busy server.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	entered, release := make(chan struct{}), make(chan struct{})
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/watch" {
			entered <- struct{}{}
			<-release
			_ = r.Context().Done()
		}
		io.WriteString(w, r.URL.Path)
	}
	s := &Server{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(h)}
	addr, ballast := serveParking(t, s)
	c := keptAliveParked(t, s, addr, 1, ballast)
	c.send("GET /watch HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	c.send("GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	waitReported(t, s, "the next request", func(c *conn) bool { return c.edge.Load() })
	close(release)
	c.readBodies("/watch", "/next")
}

// waitReported waits until the parker has recorded on a connection of s
// the report that has (a conn's edge or hup).
func waitReported(t *testing.T, s *Server, what string, has func(*conn) bool) {
	t.Helper()
	waitFor(t, what+" to be reported", func() bool {
		p := s.parker.Load()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			if has(c) {
				return true
			}
		}
		return false
	})
}

// TestParkReportedOnce: a connection is reported readable once per arrival
// of bytes (its registration is edge-triggered), so it must not park again
// while what was reported is still unread: bytes left behind by a read
// that filled its buffer, and the client's close that came after its last
// request. Either would otherwise wait for the idle timeout. Each case is
// sent while the connection serves /block, and its report recorded before
// the connection reads it.
func TestParkReportedOnce(t *testing.T) {
	skipUnlessParking(t)
	entered, release := make(chan struct{}), make(chan struct{})
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, r.URL.Path)
	}
	s := &Server{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(h)}
	addr, ballast := serveParking(t, s)
	block := func(c *rawClient) {
		c.send("GET /block HTTP/1.1\r\nHost: a\r\n\r\n")
		<-entered
	}

	// The first request fills a read buffer exactly; the second, sent in
	// the same write, is left in the socket.
	c := keptAliveParked(t, s, addr, 1, ballast)
	block(c)
	head := "GET /full HTTP/1.1\r\nHost: a\r\nX: "
	first := head + strings.Repeat("x", readBufSize-len(head)-len("\r\n\r\n")) + "\r\n\r\n"
	c.send(first + "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	waitReported(t, s, "the requests", func(c *conn) bool { return c.edge.Load() })
	release <- struct{}{}
	c.readBodies("/block", "/full", "/next")
	waitParked(t, s, 1, ballast)

	// The last request, and the client's close.
	c = keptAliveParked(t, s, addr, 2, ballast)
	block(c)
	c.send("GET /last HTTP/1.1\r\nHost: a\r\n\r\n")
	c.c.(*net.TCPConn).CloseWrite()
	waitReported(t, s, "the close", func(c *conn) bool { return c.hup.Load() })
	release <- struct{}{}
	c.readBodies("/block", "/last")
	c.expectClosed()
}

// keptAliveParked opens a connection that serves one request (pathHandler's
// or the like) and waits until it is parked, with parked connections in
// all.
func keptAliveParked(t *testing.T, s *Server, addr string, parked, ballast int) *rawClient {
	t.Helper()
	c := newRaw(t, addr)
	c.send("GET /kept HTTP/1.1\r\nHost: a\r\n\r\n")
	c.readBodies("/kept")
	waitParked(t, s, parked, ballast)
	return c
}

// TestParkClientClose: a parked connection the client closes, new or kept
// alive, is forgotten by the server.
func TestParkClientClose(t *testing.T) {
	skipUnlessParking(t)
	s := &Server{Handler: http.HandlerFunc(pathHandler)}
	addr, ballast := serveParking(t, s)
	for _, kept := range []bool{false, true} {
		c := newRaw(t, addr)
		if kept {
			c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			c.read("GET")
		}
		waitParked(t, s, 1, ballast)
		c.c.Close()
		waitFor(t, fmt.Sprintf("the server to forget the connection closed (kept alive: %v)", kept), func() bool {
			return s.open.Load() == 1 && s.parkedConns() == 0 && goroutinesIn(inLoop) == ballast
		})
	}
}

// parkedClients opens, on a lean server, new connections that send
// nothing and kept-alive ones, and waits until all are parked.
func parkedClients(t *testing.T, s *Server, addr string, ballast int) []*rawClient {
	t.Helper()
	var cs []*rawClient
	for i := range 6 {
		c := newRaw(t, addr)
		if i%2 == 1 {
			c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			c.read("GET")
		}
		cs = append(cs, c)
	}
	waitParked(t, s, len(cs), ballast)
	return cs
}

// serveParkedClients starts a parking server (pathHandler) with
// parkedClients, and checks at the end of the test that no goroutine is
// left.
func serveParkedClients(t *testing.T) (*Server, []*rawClient, int) {
	skipUnlessParking(t)
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	s := &Server{Handler: http.HandlerFunc(pathHandler)}
	addr, ballast := serveParking(t, s)
	return s, parkedClients(t, s, addr, ballast), ballast
}

// TestParkShutdown: Shutdown closes parked connections at once, returns
// nil, and leaves no goroutine (the parker's ended).
func TestParkShutdown(t *testing.T) {
	s, cs, _ := serveParkedClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v with parked connections only", d)
	}
	for _, c := range cs {
		c.expectClosed()
	}
	if n := s.parkedConns(); n != 0 {
		t.Errorf("%d connections still parked after Shutdown", n)
	}
}

// TestParkClose: Close closes parked connections and leaves no goroutine.
func TestParkClose(t *testing.T) {
	s, cs, ballast := serveParkedClients(t)
	// Wake one so that the parker has an idle worker too.
	cs[1].send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	cs[1].read("GET")
	waitParked(t, s, len(cs), ballast)
	if n := goroutinesIn("(*parker).work"); n == 0 {
		t.Fatalf("no idle worker after a wake")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, c := range cs {
		c.expectClosed()
	}
	waitNoConns(t, s)
	if n := s.parkedConns(); n != 0 {
		t.Errorf("%d connections still parked after Close", n)
	}
}

// goid is the id of the calling goroutine.
func goid() string {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, _, _ = bytes.Cut(bytes.TrimPrefix(b, []byte("goroutine ")), []byte(" "))
	return string(b)
}

// TestParkWorkersReused: the goroutines that resume parked connections are
// reused: 200 requests spread over 20 parked connections, one at a time,
// are served by a handful of goroutines (the handler runs on the one that
// resumed the connection), which then wait, few, for the next wake.
func TestParkWorkersReused(t *testing.T) {
	skipUnlessParking(t)
	var mu sync.Mutex
	served := make(map[string]int) // requests by goroutine
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served[goid()]++
		mu.Unlock()
		pathHandler(w, r)
	})}
	addr, ballast := serveParking(t, s)
	const n, requests = 20, 200
	cs := make([]*rawClient, n)
	for i := range cs {
		cs[i] = newRaw(t, addr)
	}
	waitParked(t, s, n, ballast)
	for i := range requests {
		getPath(t, cs[i%n], fmt.Sprint("/", i))
	}
	waitParked(t, s, n, ballast)
	mu.Lock()
	goroutines := len(served)
	mu.Unlock()
	// Every idle worker served some of the requests (nothing else wakes
	// a connection here).
	idle := goroutinesIn("(*parker).work")
	t.Logf("%d requests served by %d goroutines; %d idle workers", requests, goroutines, idle)
	if goroutines > 10 {
		t.Errorf("%d requests on parked connections served by %d goroutines, want a handful", requests, goroutines)
	}
	if idle == 0 || idle > min(goroutines, maxIdleWorkers) {
		t.Errorf("%d idle workers after %d goroutines served, want 1 to %d", idle, goroutines, min(goroutines, maxIdleWorkers))
	}
}

// activeConns is how many resumed connections the parker counts as
// admitted (parker.active).
func activeConns(s *Server) int {
	p := s.parker.Load()
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active
}

// admissionLimit is the parker's admission limit now.
func admissionLimit(s *Server) int {
	p := s.parker.Load()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limit
}

// TestParkAdmission: with room for two resumed connections (the limit to
// start from set to 2),
// three requests that hold their handler still let a fourth, quick one on
// another parked connection through (the CPUs are idle, or nothing comes
// back for admitWait: the limit doubles, so slow requests cannot hold the
// others off); once all are
// answered, none is counted as admitted any more and the limit is back
// to 2; a client gone in the middle of its request is counted out too.
func TestParkAdmission(t *testing.T) {
	skipUnlessParking(t)
	defer func(n int, procs int) { maxActivePerCPU = n; runtime.GOMAXPROCS(procs) }(maxActivePerCPU, runtime.GOMAXPROCS(2))
	maxActivePerCPU = 1 // × 2 CPUs
	release := make(chan struct{})
	entered := make(chan string, 8)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- r.URL.Path
		switch r.URL.Path {
		case "/slow":
			<-release
		case "/hold":
			<-r.Context().Done() // until the client goes
		}
		pathHandler(w, r)
	})}
	addr, ballast := serveParking(t, s)
	slow := []*rawClient{newRaw(t, addr), newRaw(t, addr), newRaw(t, addr)}
	quick := newRaw(t, addr)
	waitParked(t, s, len(slow)+1, ballast)
	for _, c := range slow {
		c.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	}
	for range slow {
		waitEntered(t, entered, "/slow") // the third one too, once the limit grew
	}
	quick.send("GET /quick HTTP/1.1\r\nHost: a\r\n\r\n")
	if res := quick.read("GET"); res.status != 200 || res.body != "/quick" {
		t.Fatalf("quick request behind three slow ones got %s", res)
	}
	waitEntered(t, entered, "/quick")
	close(release)
	for _, c := range slow {
		if res := c.read("GET"); res.body != "/slow" {
			t.Fatalf("slow request got %s", res)
		}
	}
	waitParked(t, s, len(slow)+1, ballast)
	if n := activeConns(s); n != 0 {
		t.Errorf("%d connections still counted as admitted, all parked", n)
	}
	if l := admissionLimit(s); l != 2 {
		t.Errorf("admission limit %d once all are back, want 2 again", l)
	}
	// A client gone in the middle of its request is counted out too.
	gone := newRaw(t, addr)
	waitParked(t, s, len(slow)+2, ballast)
	gone.send("GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
	waitEntered(t, entered, "/hold")
	gone.c.Close()
	waitFor(t, "the gone client's connection to be counted out", func() bool { return activeConns(s) == 0 })
}

// waitEntered waits for the handler to report that it entered path.
func waitEntered(t *testing.T, entered <-chan string, path string) {
	t.Helper()
	select {
	case p := <-entered:
		if p != path {
			t.Fatalf("handler entered %s, want %s", p, path)
		}
	case <-time.After(ioTimeout):
		t.Fatalf("handler not entered for %s within %v", path, ioTimeout)
	}
}

// TestParkAdmissionGrowsWhenIdle: requests that wait for something else
// than the CPU (a slow backend: here, handlers held) beyond the admission
// limit do not wait for admitWait (set to an hour here): the CPUs are idle,
// so the limit grows at once; all ten are served together, and the limit
// is back to where it started once they are answered.
func TestParkAdmissionGrowsWhenIdle(t *testing.T) {
	skipUnlessParking(t)
	defer func(n int, wait time.Duration, procs int) {
		maxActivePerCPU, admitWait = n, wait
		runtime.GOMAXPROCS(procs)
	}(maxActivePerCPU, admitWait, runtime.GOMAXPROCS(2))
	maxActivePerCPU, admitWait = 1, time.Hour // a limit of 2 to start from, no growth by waiting
	s, entered, release := holdingServer(16)
	addr, ballast := serveParking(t, s)
	cs := heldRequests(t, s, addr, ballast, 10)
	for range cs {
		waitEntered(t, entered, "/held")
	}
	close(release)
	for _, c := range cs {
		if res := c.read("GET"); res.body != "/held" {
			t.Fatalf("got %s", res)
		}
	}
	waitParked(t, s, len(cs), ballast)
	if n, l := activeConns(s), admissionLimit(s); n != 0 || l != 2 {
		t.Errorf("%d connections counted as admitted and a limit of %d once all are back, want 0 and 2", n, l)
	}
}

// TestParkIdleMeter: the meter sees the CPUs the process left idle (it
// sleeps between two readings), from a live source (the runtime's own CPU
// classes would not change without a GC). That it sees busy CPUs is left
// to the benchmark at 2000 connections (docs/BENCHMARKS.md): a test cannot
// be sure to get every CPU of a shared machine.
func TestParkIdleMeter(t *testing.T) {
	var m idleMeter
	if idle, fresh := m.idle(); idle || fresh {
		t.Error("the first reading, which only starts the meter, says idle or new")
	}
	time.Sleep(4 * idleEvery)
	if idle, fresh := m.idle(); !idle || !fresh {
		t.Errorf("the process slept between two readings; the meter says idle %v, new reading %v", idle, fresh)
	}
}

// TestParkWokenLate: a kept-alive parked connection whose next request
// came well before its idle timeout, but which admission held back past
// that timeout (every admitted request held, no growth of the limit), is
// neither swept nor closed by its old read deadline: once there is room it
// is served.
func TestParkWokenLate(t *testing.T) {
	skipUnlessParking(t)
	perCPU, wait, share, procs := maxActivePerCPU, admitWait, idleShare, runtime.GOMAXPROCS(2)
	t.Cleanup(func() { // after the server's cleanup: its parker reads these
		maxActivePerCPU, admitWait, idleShare = perCPU, wait, share
		runtime.GOMAXPROCS(procs)
	})
	maxActivePerCPU, admitWait, idleShare = 1, time.Hour, 2 // a limit of 2 that does not grow
	const idle = 200 * time.Millisecond
	release := make(chan struct{})
	entered := make(chan string, 8)
	s := &Server{IdleTimeout: idle, ReadHeaderTimeout: ioTimeout, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/warm":
		case "/hold":
			entered <- r.URL.Path
			<-release
		default:
			entered <- r.URL.Path
		}
		pathHandler(w, r)
	})}
	addr, ballast := serveParking(t, s)
	holders := []*rawClient{newRaw(t, addr), newRaw(t, addr)}
	late := newRaw(t, addr)
	getPath(t, late, "/warm") // kept alive: its wait is bounded by IdleTimeout
	waitParked(t, s, 3, ballast)
	for _, h := range holders {
		h.send("GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
		waitEntered(t, entered, "/hold")
	}
	late.send("GET /late HTTP/1.1\r\nHost: a\r\n\r\n")
	// Once a sweep ran past its idle deadline (its read deadline is no
	// later), it is still parked, held back.
	p := s.parker.Load()
	p.mu.Lock()
	var until time.Time
	for _, c := range p.conns {
		if c.parked.Load() {
			until = c.parkUntil
		}
	}
	p.mu.Unlock()
	waitFor(t, "a sweep past the late connection's idle deadline", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.swept.After(until)
	})
	if n := s.parkedConns(); n != 1 {
		t.Fatalf("%d connections parked, want the late one", n)
	}
	releaseHeld(t, release, entered, holders, late, "/late")
}

// releaseHeld lets the held requests go, then checks that the one that
// waited behind them (path, on c) is served, and the held ones too.
func releaseHeld(t *testing.T, release chan struct{}, entered <-chan string, holders []*rawClient, c *rawClient, path string) {
	t.Helper()
	close(release)
	waitEntered(t, entered, path)
	if res := c.read("GET"); res.status != 200 || res.body != path {
		t.Fatalf("%s, held back, got %s", path, res)
	}
	for _, h := range holders {
		h.read("GET")
	}
}

// TestParkShutdownServesWaitingRequest: Shutdown does not close a parked
// connection whose request has come (admission held it back: every
// admitted request held, no growth of the limit): it is served, with
// "Connection: close", and Shutdown returns once it is.
func TestParkShutdownServesWaitingRequest(t *testing.T) {
	skipUnlessParking(t)
	perCPU, wait, share, procs := maxActivePerCPU, admitWait, idleShare, runtime.GOMAXPROCS(2)
	t.Cleanup(func() {
		maxActivePerCPU, admitWait, idleShare = perCPU, wait, share
		runtime.GOMAXPROCS(procs)
	})
	maxActivePerCPU, admitWait, idleShare = 1, time.Hour, 2 // a limit of 2 that does not grow
	release := make(chan struct{})
	entered := make(chan string, 8)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- r.URL.Path
		if r.URL.Path == "/hold" {
			<-release
		}
		pathHandler(w, r)
	})}
	addr, ballast := serveParking(t, s)
	holders := []*rawClient{newRaw(t, addr), newRaw(t, addr)}
	waiting := newRaw(t, addr)
	waitParked(t, s, 3, ballast)
	for _, h := range holders {
		h.send("GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
		waitEntered(t, entered, "/hold")
	}
	waiting.send("GET /waiting HTTP/1.1\r\nHost: a\r\n\r\n")
	waitFor(t, "the request to wait in the socket", waiting.readableOnServer(s))
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	waitFor(t, "Shutdown to close the ballast", func() bool { return s.open.Load() <= 3 })
	releaseHeld(t, release, entered, holders, waiting, "/waiting")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// readableOnServer returns whether the server's end of the parked
// connection has bytes waiting, for waitFor.
func (r *rawClient) readableOnServer(s *Server) func() bool {
	local := r.c.LocalAddr().String()
	return func() bool {
		p := s.parker.Load()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			if c.parked.Load() && c.rwc.RemoteAddr().String() == local {
				return c.readable()
			}
		}
		return false
	}
}

// TestRequestResetBetweenRequests: the fast path's Request, reused from
// one request of a connection to the next, carries nothing of the last
// one: not the path values a handler set (kept in unexported fields),
// nor its Pattern or Form; on a connection that stays (non-lean) and on
// one parked between the two requests (lean).
func TestRequestResetBetweenRequests(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			r.SetPathValue("user", "alice")
			r.Pattern = "GET /set"
			r.Form = map[string][]string{"a": {"b"}}
		}
		fmt.Fprintf(w, "%q %q %v", r.PathValue("user"), r.Pattern, r.Form == nil)
	})
	check := func(t *testing.T, c *rawClient, park func()) {
		c.send("GET /set HTTP/1.1\r\nHost: a\r\n\r\n")
		if res := c.read("GET"); res.body != `"alice" "GET /set" false` {
			t.Fatalf("/set: %s", res)
		}
		park()
		c.send("GET /check HTTP/1.1\r\nHost: a\r\n\r\n")
		if res := c.read("GET"); res.body != `"" "" true` {
			t.Fatalf("the next request saw the last one's values: %s", res)
		}
	}
	t.Run("kept", func(t *testing.T) {
		s := &Server{IdleTimeout: ioTimeout, ReadHeaderTimeout: ioTimeout, Handler: handler}
		check(t, newRaw(t, serve(t, s)), func() {})
	})
	t.Run("parked", func(t *testing.T) {
		skipUnlessParking(t)
		s := &Server{IdleTimeout: ioTimeout, ReadHeaderTimeout: ioTimeout, Handler: handler}
		addr, ballast := serveParking(t, s)
		check(t, newRaw(t, addr), func() { waitParked(t, s, 1, ballast) })
	})
}

// holdingServer is a server whose handler reports each request's path on
// entered (room for n) and holds it until release is closed.
func holdingServer(n int) (s *Server, entered chan string, release chan struct{}) {
	entered, release = make(chan string, n), make(chan struct{})
	s = &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- r.URL.Path
		<-release
		pathHandler(w, r)
	})}
	return s, entered, release
}

// heldRequests opens n connections to addr, waits until they are parked,
// then sends a GET of /held on each: the tests' handlers hold it.
func heldRequests(t *testing.T, s *Server, addr string, ballast, n int) []*rawClient {
	t.Helper()
	cs := make([]*rawClient, n)
	for i := range cs {
		cs[i] = newRaw(t, addr)
	}
	waitParked(t, s, n, ballast)
	for _, c := range cs {
		c.send("GET /held HTTP/1.1\r\nHost: a\r\n\r\n")
	}
	return cs
}

// queueState is what the parker's worker queue holds now: connections
// waiting for a worker, connections workers took from it so far, the
// worker limit and the worker goroutines.
func queueState(s *Server) (waiting, taken, limit, running int) {
	p := s.parker.Load()
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue) - p.qhead, p.taken, p.workerLimit, p.running
}

// limitWorkers makes the parker of the test start from two workers (one
// per CPU, two CPUs), with room for 128 admitted connections, and CPUs
// that never count as idle (so that only a queue no worker takes from
// makes the worker limit grow), every check: checks of the queue that
// often (an hour: never again after the first). It is undone after the
// test's server has been closed (its parker reads these).
func limitWorkers(t *testing.T, check time.Duration) {
	perCPU, workers, every, share, procs := maxActivePerCPU, maxWorkersPerCPU, queueCheckEvery, idleShare, runtime.GOMAXPROCS(2)
	t.Cleanup(func() {
		maxActivePerCPU, maxWorkersPerCPU, queueCheckEvery, idleShare = perCPU, workers, every, share
		runtime.GOMAXPROCS(procs)
	})
	maxActivePerCPU, maxWorkersPerCPU, queueCheckEvery, idleShare = 64, 1, check, 2
}

// TestParkWorkersQueue: with two workers (and no growth), requests sent
// together on twenty parked connections are all answered; the eighteen
// woken while both workers were busy waited in the parker's queue and were
// taken from it by a worker done with its connection, with no new
// goroutine; then nothing is left in the queue.
func TestParkWorkersQueue(t *testing.T) {
	skipUnlessParking(t)
	limitWorkers(t, time.Hour)
	release := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // until all requests are sent: the first two keep the workers busy
		pathHandler(w, r)
	})}
	addr, ballast := serveParking(t, s)
	cs := make([]*rawClient, 20)
	for i := range cs {
		cs[i] = newRaw(t, addr)
	}
	waitParked(t, s, len(cs), ballast)
	for i, c := range cs {
		c.send(fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i))
	}
	waitFor(t, "eighteen connections to wait in the queue", func() bool { w, _, _, _ := queueState(s); return w == len(cs)-2 })
	close(release)
	for i, c := range cs {
		if res := c.read("GET"); res.status != 200 || res.body != fmt.Sprint("/", i) {
			t.Fatalf("request %d got %s", i, res)
		}
	}
	waitParked(t, s, len(cs), ballast)
	waiting, taken, limit, running := queueState(s)
	if waiting != 0 || taken != len(cs)-2 || running > 2 {
		t.Errorf("%d connections still in the queue, %d taken from it by workers, %d workers (limit %d); want 0, %d, at most 2",
			waiting, taken, running, limit, len(cs)-2)
	}
}

// TestParkWorkersGrowWhenHeld: when every worker is held by its request
// (a slow backend: here, handlers that wait until all ten are in), no
// worker takes from the queue, and the worker limit doubles until all ten
// run together, although the CPUs do not count as idle and admission has
// room: slow requests cannot hold the others back.
func TestParkWorkersGrowWhenHeld(t *testing.T) {
	skipUnlessParking(t)
	limitWorkers(t, idleEvery)
	const n = 10
	var inside sync.WaitGroup
	inside.Add(n)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inside.Done()
		inside.Wait() // all ten in their handlers at once
		pathHandler(w, r)
	})}
	addr, ballast := serveParking(t, s)
	cs := heldRequests(t, s, addr, ballast, n)
	for _, c := range cs {
		if res := c.read("GET"); res.body != "/held" {
			t.Fatalf("got %s", res)
		}
	}
	waitParked(t, s, n, ballast)
	if waiting, _, limit, _ := queueState(s); waiting != 0 || limit < n {
		t.Errorf("%d connections in the queue and a worker limit of %d once all are back, want 0 and at least %d", waiting, limit, n)
	}
}

// TestParkCloseQueued: Close closes the connections waiting in the queue
// for a worker (woken, not yet served) as it closes parked ones.
func TestParkCloseQueued(t *testing.T) {
	skipUnlessParking(t)
	limitWorkers(t, time.Hour) // the limit never grows: the queue stays
	s, entered, release := holdingServer(8)
	addr, ballast := serveParking(t, s)
	heldRequests(t, s, addr, ballast, 5)
	waitEntered(t, entered, "/held")
	waitEntered(t, entered, "/held") // both workers held
	waitFor(t, "three connections to wait in the queue", func() bool { w, _, _, _ := queueState(s); return w == 3 })
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	close(release)
	// (Close closes every socket itself; what shows that the queued ones
	// were finished is that they are no longer tracked.)
	waitNoConns(t, s)
}

// TestParkShutdownQueued: a graceful Shutdown serves the requests of
// connections waiting in the queue for a worker (their requests came, as
// the idle sweep and Shutdown spare a parked connection whose request
// came), rather than closing them as idle.
func TestParkShutdownQueued(t *testing.T) {
	skipUnlessParking(t)
	limitWorkers(t, time.Hour) // the limit never grows: the queue stays
	s, entered, release := holdingServer(8)
	addr, ballast := serveParking(t, s)
	cs := heldRequests(t, s, addr, ballast, 5)
	waitEntered(t, entered, "/held")
	waitEntered(t, entered, "/held") // both workers held
	waitFor(t, "three connections to wait in the queue", func() bool { w, _, _, _ := queueState(s); return w == 3 })
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// Shutdown has closed what it takes for idle once the ballast, idle
	// in a read, is gone: only the five remain.
	waitFor(t, "Shutdown to close the idle ballast", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == len(cs)
	})
	close(release)
	for i, c := range cs {
		if res := c.read("GET"); res.status != 200 || res.body != "/held" {
			t.Fatalf("client %d got %s during Shutdown, want its answer", i, res)
		}
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
