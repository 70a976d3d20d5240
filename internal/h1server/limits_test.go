package h1server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// headOf returns a request head of exactly n bytes (n >= 40).
func headOf(n int) string {
	const start, end = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ", "\r\n\r\n"
	return start + strings.Repeat("p", n-len(start)-len(end)) + end
}

// lfHeadOf is headOf with bare LF line ends (valid, but off any fast path).
func lfHeadOf(n int) string {
	const start, end = "GET / HTTP/1.1\nHost: a\nX-Pad: ", "\n\n"
	return start + strings.Repeat("p", n-len(start)-len(end)) + end
}

// TestHeadLimit: a head of exactly MaxHeaderBytes is served, one byte more
// gets 431 and the end of the connection; for limits below, at and above
// the server's 4 KiB read buffer, and the default. The head is sent in one
// write (the server's first read takes as much of it as fits its buffer),
// or as the second request on a connection (part of it already read with
// the first).
func TestHeadLimit(t *testing.T) {
	for _, limit := range []int{100, 1000, 4095, 4096, 4097, 10000, 0} {
		eff := limit
		if eff == 0 {
			eff = DefaultMaxHeaderBytes
		}
		addr := serve(t, &Server{MaxHeaderBytes: limit, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		})})
		for _, tc := range []struct {
			extra int
			lf    bool
		}{{0, false}, {1, false}, {0, true}, {1, true}} {
			want := 200
			if tc.extra == 1 {
				want = 431
			}
			head, kind := headOf(eff+tc.extra), "head"
			if tc.lf {
				head, kind = lfHeadOf(eff+tc.extra), "LF head"
			}
			extra := tc.extra
			t.Run(fmt.Sprintf("limit %d, %s %d", eff, kind, eff+extra), func(t *testing.T) {
				c := newRaw(t, addr)
				c.sendAsync(head)
				c.readFinal("GET", want)
			})
			if eff < 200 {
				continue
			}
			t.Run(fmt.Sprintf("limit %d, pipelined %s %d", eff, kind, eff+extra), func(t *testing.T) {
				c := newRaw(t, addr)
				c.sendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n" + head)
				if res := c.read("GET"); res.status != 200 {
					t.Fatalf("first request: %s", res)
				}
				c.readFinal("GET", want)
			})
		}
	}
}

// TestRequestLineTooLong: a request line that alone exceeds the head limit
// gets 414 (net/http: 431), whether the limit is reached with later reads
// or, for a limit under the read buffer's size, the line is read whole at
// once.
func TestRequestLineTooLong(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	small := serve(t, &Server{MaxHeaderBytes: 1000, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	for _, tc := range []struct {
		addr string
		n    int
	}{
		{addr, DefaultMaxHeaderBytes - len("GET / HTTP/1.1\r\n") + 1},
		{addr, 3 * DefaultMaxHeaderBytes},
		{small, 2000},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			c := newRaw(t, tc.addr)
			c.sendAsync("GET /" + strings.Repeat("a", tc.n) + " HTTP/1.1\r\nHost: a\r\n\r\n")
			if res := c.read("GET"); res.status != http.StatusRequestURITooLong {
				t.Fatalf("got %s, want 414", res)
			}
			c.expectClosed()
		})
	}
	// A long field instead is 431.
	c := newRaw(t, addr)
	c.sendAsync(headOf(DefaultMaxHeaderBytes + 100))
	if res := c.read("GET"); res.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("got %s, want 431", res)
	}
}

// TestHeaderTimeout: a client that sends part of a head and stops is
// disconnected by the server once ReadHeaderTimeout has passed, on a new
// connection (the timeout counts from the connection's start) and on a
// kept-alive one (from the head's first byte), with no reply.
func TestHeaderTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	addr := serve(t, &Server{ReadHeaderTimeout: timeout, IdleTimeout: ioTimeout, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	for _, kept := range []bool{false, true} {
		t.Run(fmt.Sprint("kept-alive ", kept), func(t *testing.T) {
			c := newRaw(t, addr)
			if kept {
				c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
				c.read("GET")
			}
			start := time.Now()
			c.send("GET / HTTP/1.1\r\nHost: a\r\nX-Half: ")
			c.expectClosed()
			if d := time.Since(start); d < timeout*9/10 {
				t.Errorf("closed after %v, before the timeout", d)
			}
		})
	}
}

// TestIdleTimeout: a kept-alive connection on which no request comes is
// closed by the server after IdleTimeout (and not before), while a request
// that comes in time is served.
func TestIdleTimeout(t *testing.T) {
	const idle = 150 * time.Millisecond
	addr := serve(t, &Server{ReadHeaderTimeout: ioTimeout, IdleTimeout: idle, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	c := newRaw(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	c.read("GET")
	c.expectOpen() // a request right away is served
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d < idle*9/10 {
		t.Errorf("closed after %v, before the idle timeout", d)
	}
}

// TestIdleDeadlineKept: the idle deadline is set again only once a
// sixteenth of IdleTimeout has passed (armIdleDeadline), yet every wait for
// a request stays bounded by IdleTimeout. A connection kept busy for more
// than two idle timeouts, with requests closer together than that
// sixteenth (the deadline is kept) and further apart (it moves on), is not
// cut. After a request whose handling touched the read deadline (the
// handler set one, its body was read, the background read watched it; or
// the handler of a request before it, pipelined), the next wait gets its
// idle deadline at once: otherwise it would wait for an hour or for ever.
// Each of those requests follows another closely, when the deadline would
// be kept (on a machine slow enough to take longer than the sixteenth, they
// pass without testing that). A body's end sets the deadline of its drain
// (finishBody), which is what makes the next wait arm its own.
func TestIdleDeadlineKept(t *testing.T) {
	const idle = 600 * time.Millisecond // the sixteenth: 37.5 ms
	s := &Server{ReadHeaderTimeout: ioTimeout, IdleTimeout: idle, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/own-deadline":
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Hour))
		case "/body":
			io.Copy(io.Discard, r.Body)
		case "/watched":
			r.Context().Done() // starts the background read, which the request's end stops
		}
	})}
	addr := serve(t, s)

	t.Run("busy", func(t *testing.T) {
		c := newRaw(t, addr)
		var start time.Time
		for i, end := 0, time.Now().Add(idle*5/2); time.Now().Before(end); i++ {
			c.expectOpen()
			start = time.Now()
			if i%4 == 3 {
				time.Sleep(idle / 8) // further apart than the sixteenth
			}
		}
		c.expectClosed()
		if d := time.Since(start); d < idle*9/10 {
			t.Errorf("closed %v after the last response, before the idle timeout", d)
		}
	})
	for name, reqs := range map[string]string{
		"own deadline":                           "GET /own-deadline HTTP/1.1\r\nHost: a\r\n\r\n",
		"body":                                   "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
		"watched":                                "GET /watched HTTP/1.1\r\nHost: a\r\n\r\n",
		"own deadline, then a pipelined request": "GET /own-deadline HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c := newRaw(t, addr)
			c.expectOpen()
			c.expectOpen() // its wait has the deadline armIdleDeadline keeps
			c.send(reqs)
			for range strings.Count(reqs, "HTTP/1.1\r\n") {
				if res := c.read(strings.Fields(reqs)[0]); res.status != 200 {
					t.Fatalf("got %s", res)
				}
			}
			c.expectClosed()
		})
	}
}

// goroutinesIn reports how many goroutines have fn on their stack.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), fn)
}

// TestLeanIdle: above LeanAbove open connections, idle connections wait
// without a read buffer: on Linux parked, with no goroutine (neither in
// waitIdle nor anywhere in the connection's loop), elsewhere in waitIdle;
// and still serve their next request (sent whole, one byte first, or
// pipelined), honour the idle timeout, and are closed at once by Shutdown.
// At or under it they wait in a read, never parked.
func TestLeanIdle(t *testing.T) {
	const idle = 150 * time.Millisecond
	const waitIdle, loop = "(*conn).waitIdle", "(*conn).loop"
	for _, leanAbove := range []int{-1, 1} {
		t.Run(fmt.Sprint("LeanAbove ", leanAbove), func(t *testing.T) {
			s := &Server{LeanAbove: leanAbove, IdleTimeout: idle, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, r.URL.Path)
			})}
			addr := serve(t, s)
			a, b := newRaw(t, addr), newRaw(t, addr)
			// Both open before the requests: a connection served while
			// the server was not lean waits in a read until its next
			// request.
			waitFor(t, "both connections to be open", func() bool { return s.open.Load() == 2 })
			for _, c := range []*rawClient{a, b} {
				c.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
				c.read("GET")
			}
			// Two connections are open: both are over LeanAbove 1.
			switch {
			case leanAbove > 0 && runtime.GOOS == "linux":
				waitFor(t, "both idle connections to be parked, with no goroutine", func() bool {
					return s.parkedConns() == 2 && goroutinesIn(waitIdle) == 0 && goroutinesIn(loop) == 0
				})
			case leanAbove > 0:
				waitFor(t, "both idle connections to wait lean", func() bool { return goroutinesIn(waitIdle) == 2 })
			default:
				if n := goroutinesIn(waitIdle); n != 0 {
					t.Fatalf("%d connections wait lean with LeanAbove %d", n, leanAbove)
				}
				if n := s.parkedConns(); n != 0 {
					t.Fatalf("%d connections parked with LeanAbove %d", n, leanAbove)
				}
			}
			a.send("G")
			a.send("ET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
			b.send("GET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
			for _, want := range []string{"/2"} {
				if res := a.read("GET"); res.body != want {
					t.Fatalf("a: got %s, want %s", res, want)
				}
			}
			for _, want := range []string{"/2", "/3"} {
				if res := b.read("GET"); res.body != want {
					t.Fatalf("b: got %s, want %s", res, want)
				}
			}
			start := time.Now()
			a.expectClosed()
			if d := time.Since(start); d < idle*9/10 {
				t.Errorf("closed after %v, before the idle timeout", d)
			}
			c := newRaw(t, addr)
			c.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
			c.read("GET")
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			c.expectClosed()
			if d := time.Since(start); d > idle*3/2 {
				t.Errorf("Shutdown took until %v after the idle timeout started", d)
			}
		})
	}
}

// TestUnreadBody: a request body the handler leaves unread is read and
// dropped when small (the connection serves the next request), and ends
// the connection, after the response, when over 256 KiB.
func TestUnreadBody(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ignored")
	})})
	for _, tc := range []struct {
		name string
		req  string
		open bool
	}{
		{"small", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("b", 1000), true},
		{"small chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + strings.Repeat("b", 1000) + "\r\n0\r\n\r\n", true},
		{"256 KiB", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 262144\r\n\r\n" + strings.Repeat("b", 256<<10), true},
		{"over 256 KiB", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 262145\r\n\r\n" + strings.Repeat("b", 256<<10+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newRaw(t, addr)
			c.sendAsync(tc.req)
			if res := c.read("POST"); res.status != 200 || res.body != "ignored" {
				t.Fatalf("got %s", res)
			}
			if tc.open {
				c.writers.Wait()
				c.expectOpen()
			} else {
				c.expectClosed()
			}
		})
	}
}

// TestHeadInPieces: a head that arrives in many small segments (the Host
// field among them, and after more than a read buffer of fields) is read
// whole, its Host field counted once.
func TestHeadInPieces(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host)
	})})
	for _, head := range []string{
		"GET / HTTP/1.1\r\nHost: piece\r\n\r\n",
		"GET / HTTP/1.1\r\nX-Pad: " + strings.Repeat("p", 5000) + "\r\nHost: piece\r\n\r\n",
	} {
		c := newRaw(t, addr)
		for i := 0; i < len(head); i += 7 {
			c.send(head[i:min(i+7, len(head))])
		}
		if res := c.read("GET"); res.status != 200 || res.body != "piece" {
			t.Fatalf("got %s", res)
		}
		c.send("GET / HTTP/1.1\r\nX-Pad: " + strings.Repeat("p", 5000) + "\r\n")
		c.send("\r\n") // no Host: counted as none, even after a long head
		if res := c.read("GET"); res.status != 400 {
			t.Fatalf("head without Host got %s", res)
		}
	}
}
