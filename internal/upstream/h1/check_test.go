package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/testbackend"
)

// Tests of when a pooled connection is checked before reuse (needsCheck,
// alive), of what covers it when it is not (the retry), and of the read
// deadline an exchange leaves for the next (watchLater).

// countingRaw counts the liveness checks (alive uses Control) made on a
// connection.
type countingRaw struct {
	syscall.RawConn
	n *atomic.Int64
}

func (r countingRaw) Control(f func(uintptr)) error {
	r.n.Add(1)
	return r.RawConn.Control(f)
}

// countingConn counts the read deadlines set on a connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) SetReadDeadline(t time.Time) error {
	c.n.Add(1)
	return c.Conn.SetReadDeadline(t)
}

// pooled returns the Transport's only idle connection, edited by edit under
// the pool's lock.
func pooled(t *testing.T, tr *Transport, edit func(c *conn)) *conn {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.idle) != 1 {
		t.Fatalf("%d idle connections, want 1", len(tr.idle))
	}
	c := tr.idle[0]
	if edit != nil {
		edit(c)
	}
	return c
}

// countChecks makes the pooled connection count its liveness checks.
func countChecks(t *testing.T, tr *Transport) *atomic.Int64 {
	t.Helper()
	n := new(atomic.Int64)
	pooled(t, tr, func(c *conn) {
		if c.raw == nil {
			t.Fatal("no socket to check")
		}
		c.raw = countingRaw{c.raw, n}
	})
	return n
}

// idleFor makes the pooled connection look idle for d.
func idleFor(t *testing.T, tr *Transport, d time.Duration) {
	t.Helper()
	pooled(t, tr, func(c *conn) { c.idleAt = time.Now().Add(-d) })
}

// variedServer answers by path: bodiless responses by rule, 1xx, 100
// Continue to "Expect: 100-continue", and "ok" otherwise.
func variedServer(t *testing.T) *testbackend.RawServer {
	return testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if r.Header.Get("Expect") == "100-continue" {
				io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			}
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				return
			}
			switch {
			case r.Method == "HEAD":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
			case r.URL.Path == "/204":
				io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			case r.URL.Path == "/304":
				io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n")
			case r.URL.Path == "/103":
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			default:
				io.WriteString(c, okReply)
			}
		}
	})
}

// TestCheckOnlyWhenNeeded: a pooled connection is checked before reuse
// exactly when needsCheck says: after a response without a body by rule or
// one with 1xx, before a request that is not replayable, and after a
// second of idleness; not before a replayable request on a connection
// reused soon after an ordinary response (the hot path).
func TestCheckOnlyWhenNeeded(t *testing.T) {
	s := variedServer(t)
	get := &Request{Method: "GET", Target: "/"}
	small := func(method string, h http.Header) *Request {
		return &Request{Method: method, Target: "/", Header: h, Body: strings.NewReader("x"), ContentLength: 1}
	}
	big := strings.Repeat("x", 64<<10) // streamed, not complete in the buffer
	for _, tc := range []struct {
		name   string
		before []*Request
		idle   time.Duration
		next   *Request
		checks int64
	}{
		{"GET after GET", []*Request{get}, 0, get, 0},
		{"GET after HEAD", []*Request{{Method: "HEAD", Target: "/"}}, 0, get, 1},
		{"GET after 204", []*Request{{Method: "GET", Target: "/204"}}, 0, get, 1},
		{"GET after 304", []*Request{{Method: "GET", Target: "/304"}}, 0, get, 1},
		{"GET after 103", []*Request{{Method: "GET", Target: "/103"}}, 0, get, 1},
		{"GET after HEAD then GET", []*Request{{Method: "HEAD", Target: "/"}, get}, 0, get, 0},
		{"GET idle just under a second", []*Request{get}, idleCheckAfter - 100*time.Millisecond, get, 0},
		{"GET idle a second", []*Request{get}, idleCheckAfter, get, 1},
		{"POST small", []*Request{get}, 0, small("POST", nil), 1},
		{"POST small with Idempotency-Key", []*Request{get}, 0, small("POST", http.Header{"Idempotency-Key": {"k"}}), 0},
		{"PUT small", []*Request{get}, 0, small("PUT", nil), 0},
		{"PUT streamed", []*Request{get}, 0, &Request{Method: "PUT", Target: "/", Body: strings.NewReader(big), ContentLength: int64(len(big))}, 1},
		{"PUT chunked", []*Request{get}, 0, &Request{Method: "PUT", Target: "/", Body: strings.NewReader("x"), ContentLength: -1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTransport(t, s.Addr)
			before := s.Accepted()
			for _, r := range tc.before {
				r := *r
				if _, _, err := do(t, tr, &r); err != nil {
					t.Fatal(err)
				}
			}
			checks := countChecks(t, tr)
			idleFor(t, tr, tc.idle)
			next := *tc.next
			if res, _, err := do(t, tr, &next); err != nil || res.StatusCode != 200 {
				t.Fatalf("%v %v", res, err)
			}
			if n := checks.Load(); n != tc.checks {
				t.Errorf("%d checks before the reuse, want %d", n, tc.checks)
			}
			if n := s.Accepted() - before; n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		})
	}
}

// TestCheckOnHandOver: a connection handed by an ending exchange to a
// request that waits for one (the backend at MaxConns) is checked on the
// same terms as a pooled one, its idle time counted from the hand-over.
func TestCheckOnHandOver(t *testing.T) {
	for _, tc := range []struct {
		method string
		checks int64
	}{{"GET", 1}, {"HEAD", 2}} {
		t.Run(tc.method, func(t *testing.T) {
			wait, release := gate()
			defer release()
			got := make(chan struct{}, 1)
			s := testbackend.Raw(t, serveResponses(func(r *http.Request, _ []byte) string {
				if r.URL.Path == "/held" {
					got <- struct{}{}
					wait()
				}
				if r.Method == "HEAD" {
					return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
				}
				return okReply
			}))
			tr := newTestTransport(t, s.Addr, func(o *Options) { o.MaxConns = 1 })
			get(t, tr, "/")
			checks := countChecks(t, tr)
			idleFor(t, tr, idleCheckAfter)
			held := make(chan error, 1)
			go func() {
				_, _, err := do(t, tr, &Request{Method: tc.method, Target: "/held"})
				held <- err
			}()
			<-got
			waiting := make(chan string, 1)
			go func() { _, body := get(t, tr, "/"); waiting <- body }()
			eventually(t, "a request waiting for the connection", func() bool {
				tr.mu.Lock()
				defer tr.mu.Unlock()
				return len(tr.waiters) == 1
			})
			release()
			if err := <-held; err != nil {
				t.Fatal(err)
			}
			if body := <-waiting; body != "ok" {
				t.Fatalf("body %q", body)
			}
			// /held is checked, after a second of idleness; the waiting
			// GET, handed the connection as /held ends, is checked only if
			// /held was a HEAD.
			if n := checks.Load(); n != tc.checks {
				t.Errorf("%d checks, want %d", n, tc.checks)
			}
			if n := s.Accepted(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		})
	}
}

// TestStaleConnectionHandled: the backend closes every connection after
// its first response, without saying so. The next request finds the
// pooled connection closed: a replayable one is written, sees the end of
// the connection and is sent again on a new one (no check); one that is
// not replayable, or any after a second of idleness, checks the connection
// first and is written only once, on a new one.
func TestStaleConnectionHandled(t *testing.T) {
	s, seen := oneShotBackend(t)
	for _, tc := range []struct {
		name   string
		req    Request
		idle   time.Duration
		checks int64
	}{
		{"GET retried", Request{Method: "GET", Target: "/next"}, 0, 0},
		{"GET idle", Request{Method: "GET", Target: "/next"}, idleCheckAfter, 1},
		{"POST checked", Request{Method: "POST", Target: "/next", Body: strings.NewReader("x"), ContentLength: 1}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen() // forget the last test's
			eventually(t, "the last test's connections closed", func() bool { return s.Closed() == s.Accepted() })
			tr := newTestTransport(t, s.Addr)
			closed := s.Closed()
			get(t, tr, "/first")
			eventually(t, "the backend to close", func() bool { return s.Closed() == closed+1 })
			checks := countChecks(t, tr)
			idleFor(t, tr, tc.idle)
			req := tc.req
			if res, body, err := do(t, tr, &req); err != nil || res.StatusCode != 200 || body != "ok" {
				t.Fatalf("%v %q %v", res, body, err)
			}
			if n := checks.Load(); n != tc.checks {
				t.Errorf("%d checks, want %d", n, tc.checks)
			}
			if got, want := fmt.Sprint(seen()), "[GET /first "+tc.req.Method+" /next]"; got != want {
				t.Errorf("backend saw %v, want %s", got, want)
			}
		})
	}
}

// TestLateBytesNeverReachTheNextRequest: after a response without a body
// by rule (HEAD, 204, 304), or one with 1xx, a faulty backend sends bytes
// (here a forged response) once the connection is back in the pool; or it
// does so after an ordinary response, and the connection idles a second.
// The next request, a replayable GET, must not take them for its answer:
// it checks the connection, finds the bytes, and goes to a new one.
func TestLateBytesNeverReachTheNextRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first Request
		head  string
		idle  time.Duration
	}{
		{"HEAD", Request{Method: "HEAD"}, "HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n", 0},
		{"204", Request{}, "HTTP/1.1 204 No Content\r\n\r\n", 0},
		{"304", Request{}, "HTTP/1.1 304 Not Modified\r\n\r\n", 0},
		{"103", Request{}, "HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0},
		{"idle", Request{}, okReply, idleCheckAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pooledc := make(chan struct{})
			sent := make(chan struct{})
			var answered atomic.Bool
			s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					if answered.Swap(true) {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
						continue
					}
					io.WriteString(c, tc.head)
					<-pooledc
					io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Evil: 1\r\nContent-Length: 5\r\n\r\nevil!")
					close(sent)
				}
			})
			tr := newTestTransport(t, s.Addr)
			first := tc.first
			first.Target = "/"
			if _, _, err := do(t, tr, &first); err != nil {
				t.Fatal(err)
			}
			c := pooled(t, tr, nil)
			close(pooledc)
			<-sent
			eventually(t, "the late bytes to arrive", func() bool { return !c.alive() })
			idleFor(t, tr, tc.idle)
			res, body := get(t, tr, "/")
			if res.Header.Get("X-Evil") != "" || body != "good" {
				t.Fatalf("the next request got the late bytes: X-Evil %q, body %q", res.Header.Get("X-Evil"), body)
			}
			if n := s.Accepted(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
		})
	}
}

// TestRequestTimeoutOnReusedConnection: a 408 answering a replayable
// request on a reused connection is taken for the backend timing the
// connection out, and the request is sent again, once, on a new one. One
// answering a request that is not replayable, or on a new connection, is
// the answer.
func TestRequestTimeoutOnReusedConnection(t *testing.T) {
	// The second request on every connection is answered 408.
	s, seen := recordingBackend(t, func(n int) (string, bool) {
		if n == 1 {
			return "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 7\r\n\r\ntimeout", false
		}
		return okReply, true
	})
	for _, tc := range []struct {
		req    Request
		status int
		seen   string
	}{
		{Request{Method: "GET", Target: "/r"}, 200, "[GET / GET /r GET /r]"},
		{Request{Method: "PUT", Target: "/r", Body: strings.NewReader("x"), ContentLength: 1}, 200, "[GET / PUT /r PUT /r]"},
		{Request{Method: "POST", Target: "/r", Body: strings.NewReader("x"), ContentLength: 1}, 408, "[GET / POST /r]"},
	} {
		t.Run(tc.req.Method, func(t *testing.T) {
			seen() // forget the last case's
			tr := newTestTransport(t, s.Addr)
			get(t, tr, "/")
			req := tc.req
			res, _, err := do(t, tr, &req)
			if err != nil || res.StatusCode != tc.status {
				t.Fatalf("%v %v, want status %d", res, err, tc.status)
			}
			if got := fmt.Sprint(seen()); got != tc.seen {
				t.Errorf("backend saw %v, want %s", got, tc.seen)
			}
		})
	}

	// On a new connection, a 408 is the answer.
	s2 := testbackend.Raw(t, serveResponses(func(*http.Request, []byte) string {
		return "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"
	}))
	tr := newTestTransport(t, s2.Addr)
	if res, _ := get(t, tr, "/"); res.StatusCode != 408 {
		t.Fatalf("status %d, want 408", res.StatusCode)
	}
	if n := s2.Accepted(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestDeadlineLeftByLastExchange: an exchange on a connection reused soon
// sets no read deadline (the one the last exchange left does); the waits
// stay bounded all the same: the response-header timeout ends the wait at
// its end, not at the earlier deadline, and a canceled context ends it
// (the watch is installed when the earlier deadline passes).
func TestDeadlineLeftByLastExchange(t *testing.T) {
	got := make(chan struct{}, 1)
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if r.URL.Path == "/stall" {
				got <- struct{}{}
				io.Copy(io.Discard, br) // never answers
				return
			}
			io.WriteString(c, okReply)
		}
	})

	t.Run("no deadline set", func(t *testing.T) {
		tr := newTestTransport(t, s.Addr)
		get(t, tr, "/")
		n := new(atomic.Int64)
		pooled(t, tr, func(c *conn) {
			c.readDL = time.Now().Add(watchDelay) // as the GET left it, but now
			c.nc.SetReadDeadline(c.readDL)
			c.nc = countingConn{c.nc, n}
		})
		get(t, tr, "/")
		if n := n.Load(); n != 0 {
			t.Errorf("%d read deadlines set on a connection reused at once, want 0", n)
		}
		// One left too close to its end is set anew.
		pooled(t, tr, func(c *conn) {
			c.readDL = time.Now().Add(watchDelay / 4)
			c.nc.SetReadDeadline(c.readDL)
		})
		n.Store(0)
		get(t, tr, "/")
		if n := n.Load(); n != 1 {
			t.Errorf("%d read deadlines set, want 1", n)
		}
	})

	t.Run("response header timeout", func(t *testing.T) {
		const rht = 3 * watchDelay
		tr := newTestTransport(t, s.Addr, func(o *Options) { o.ResponseHeaderTimeout = rht })
		get(t, tr, "/")
		start := time.Now()
		_, _, err := do(t, tr, &Request{Target: "/stall"})
		if !isTimeout(err) {
			t.Fatalf("err %v, want a timeout", err)
		}
		<-got
		if d := time.Since(start); d < rht {
			t.Errorf("timed out after %s, before the response-header timeout %s", d, rht)
		}
	})

	t.Run("context", func(t *testing.T) {
		tr := newTestTransport(t, s.Addr, func(o *Options) { o.ResponseHeaderTimeout = 0 })
		get(t, tr, "/")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		go func() { _, _, err := do(t, tr, &Request{Ctx: ctx, Target: "/stall"}); errc <- err }()
		<-got
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	})
}

// TestStreamedBodyAfterShortExchange: the read deadline a synchronous
// exchange leaves is cleared before a streamed body's exchange, whose
// response head may take longer than it.
func TestStreamedBodyAfterShortExchange(t *testing.T) {
	s := testbackend.Raw(t, serveResponses(func(r *http.Request, _ []byte) string {
		if r.Method == "POST" {
			time.Sleep(2 * watchDelay) // past the deadline the GET left
		}
		return okReply
	}))
	tr := newTestTransport(t, s.Addr, func(o *Options) { o.ResponseHeaderTimeout = 0 })
	get(t, tr, "/")
	if dl := pooled(t, tr, nil).readDL; dl.IsZero() {
		t.Fatal("the GET left no read deadline: nothing to test")
	}
	res, body, err := do(t, tr, &Request{Method: "POST", Target: "/", Body: strings.NewReader("x"), ContentLength: -1})
	if err != nil || res.StatusCode != 200 || body != "ok" {
		t.Fatalf("%v %q %v", res, body, err)
	}
	if n := s.Accepted(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestEndsSuspect spells out the exchanges that leave a connection
// suspect. (An exchange with "Expect: 100-continue" streams its body, and
// whether its connection is pooled races with the body writer's end; it is
// tested here only.)
func TestEndsSuspect(t *testing.T) {
	for _, tc := range []struct {
		method        string
		status        int
		informational int
		expect        bool
		want          bool
	}{
		{"GET", 200, 0, false, false},
		{"POST", 201, 0, false, false},
		{"GET", 404, 0, false, false},
		{"HEAD", 200, 0, false, true},
		{"HEAD", 404, 0, false, true},
		{"GET", 204, 0, false, true},
		{"GET", 304, 0, false, true},
		{"GET", 200, 1, false, true},
		{"PUT", 200, 0, true, true},
	} {
		h := head{status: tc.status}
		if got := endsSuspect(tc.method, &h, tc.informational, framing{expect: tc.expect}); got != tc.want {
			t.Errorf("%+v: endsSuspect %v", tc, got)
		}
	}
}

// TestNeedsCheck spells out the conditions of the check.
func TestNeedsCheck(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		suspect, replayable bool
		idle                time.Duration
		want                bool
	}{
		{false, true, 0, false},
		{false, true, idleCheckAfter - time.Millisecond, false},
		{false, true, idleCheckAfter, true},
		{false, false, 0, true},
		{true, true, 0, true},
	} {
		c := &conn{suspect: tc.suspect, idleAt: now.Add(-tc.idle)}
		if got := c.needsCheck(now, tc.replayable); got != tc.want {
			t.Errorf("suspect %v, replayable %v, idle %s: needsCheck %v, want %v", tc.suspect, tc.replayable, tc.idle, got, tc.want)
		}
	}
}
