package h1server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pattern is a body of n bytes that shows misplaced or lost bytes.
func pattern(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%07d,", i)
	}
	return b.String()[:n]
}

// TestHandlerContentLength: a Content-Length set by the handler is sent as
// is, the body follows unframed (small ones in the head's write, large ones
// in a writev), and the connection stays open; an HTTP/1.0 client that
// asked for keep-alive is told so.
func TestHandlerContentLength(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		body := pattern(n)
		// In two writes, the second larger than the write buffer for big n.
		io.WriteString(w, body[:n/3])
		io.WriteString(w, body[n/3:])
	})})
	for _, n := range []int{0, 10, 4000, 4096, 5000, 100000} {
		for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
			t.Run(fmt.Sprint(n, proto), func(t *testing.T) {
				c := newRaw(t, addr)
				c.send(fmt.Sprintf("GET /?n=%d %s\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", n, proto))
				res := c.read("GET")
				if res.status != 200 || res.framing != "length" || res.header.Get("Content-Length") != strconv.Itoa(n) {
					t.Fatalf("got %s, Content-Length %q", res, res.header.Get("Content-Length"))
				}
				if res.body != pattern(n) {
					t.Fatalf("body of %d bytes differs from what the handler wrote", len(res.body))
				}
				if proto == "HTTP/1.0" && res.header.Get("Connection") != "keep-alive" {
					t.Errorf("Connection %q, want keep-alive", res.header.Get("Connection"))
				}
				c.expectOpen()
			})
		}
	}
}

// TestSmallBodyGetsContentLength: a body of at most 2 KiB that the handler
// wrote without flushing is sent with a Content-Length, to HTTP/1.1 and
// HTTP/1.0 clients, and the connection stays open.
func TestSmallBodyGetsContentLength(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		body := pattern(n)
		io.WriteString(w, body[:n/2])
		io.WriteString(w, body[n/2:])
	})})
	for _, n := range []int{0, 1, 1000, 2048} {
		for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
			t.Run(fmt.Sprint(n, proto), func(t *testing.T) {
				c := newRaw(t, addr)
				c.send(fmt.Sprintf("GET /?n=%d %s\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", n, proto))
				res := c.read("GET")
				if res.framing != "length" || res.header.Get("Content-Length") != strconv.Itoa(n) || res.body != pattern(n) {
					t.Fatalf("got %s, header %v", res, res.header)
				}
				c.expectOpen()
			})
		}
	}
}

// TestStreamedBody: a body over 2 KiB, or flushed, goes chunked to an
// HTTP/1.1 client (connection kept) and delimited by the close to an
// HTTP/1.0 client (announced with Connection: close).
func TestStreamedBody(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		body := pattern(n)
		if r.URL.Path == "/flush" {
			io.WriteString(w, body[:n/2])
			w.(http.Flusher).Flush()
			io.WriteString(w, body[n/2:])
			return
		}
		io.WriteString(w, body)
	})})
	for _, target := range []string{"/?n=2049", "/?n=100000", "/flush?n=5", "/flush?n=0", "/flush?n=9000"} {
		t.Run("1.1"+target, func(t *testing.T) {
			c := newRaw(t, addr)
			c.send("GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n")
			res := c.read("GET")
			n, _ := strconv.Atoi(target[strings.Index(target, "=")+1:])
			if res.framing != "chunked" || res.body != pattern(n) || res.header.Get("Content-Length") != "" {
				t.Fatalf("got %s, header %v", res, res.header)
			}
			c.expectOpen()
		})
		t.Run("1.0"+target, func(t *testing.T) {
			c := newRaw(t, addr)
			c.send("GET " + target + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
			res := c.read("GET")
			n, _ := strconv.Atoi(target[strings.Index(target, "=")+1:])
			if res.framing != "close" || res.body != pattern(n) || !res.close {
				t.Fatalf("got %s, header %v", res, res.header)
			}
			c.expectClosed()
		})
	}
}

// trailerHandler announces trailers with the Trailer field or sets them
// with http.TrailerPrefix, after a small body or a streamed one.
func trailerHandler(w http.ResponseWriter, r *http.Request) {
	announce := r.URL.Query().Get("how") == "announce"
	if announce {
		w.Header().Set("Trailer", "X-Sum, X-Count")
	}
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	io.WriteString(w, pattern(n))
	if r.URL.Query().Get("flush") == "1" {
		w.(http.Flusher).Flush()
	}
	if announce {
		w.Header().Set("X-Sum", "sum-"+strconv.Itoa(n))
		w.Header().Set("X-Count", "1")
	} else {
		w.Header().Set(http.TrailerPrefix+"X-Sum", "sum-"+strconv.Itoa(n))
		w.Header().Set(http.TrailerPrefix+"X-Count", "1")
	}
}

// TestTrailers: trailers announced with the Trailer field, and those set
// with http.TrailerPrefix, reach the client after a streamed body; announced
// ones also after a small or empty body the handler did not flush (which,
// as with net/http, must then be chunked: a Content-Length leaves no place
// for them). net/http's server runs the same handler for reference.
// Not covered: http.TrailerPrefix fields after an unflushed small body,
// which net/http drops too (it decides the framing from the fields set when
// the body is first written).
func TestTrailers(t *testing.T) {
	h1 := serve(t, &Server{Handler: http.HandlerFunc(trailerHandler)})
	std := serveStd(t, http.HandlerFunc(trailerHandler), 0)
	for _, how := range []string{"announce", "prefix"} {
		for _, q := range []string{"n=5000", "n=10&flush=1", "n=0&flush=1", "n=10", "n=0"} {
			if how == "prefix" && !strings.Contains(q, "flush") && q != "n=5000" {
				continue
			}
			t.Run(how+"/"+q, func(t *testing.T) {
				target := "/?how=" + how + "&" + q
				var results [2]string
				for i, addr := range []string{h1, std} {
					c := newRaw(t, addr)
					c.send("GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n")
					res := c.read("GET")
					results[i] = fmt.Sprintf("%s trailer X-Sum=%q X-Count=%q", res.framing, res.trailer.Get("X-Sum"), res.trailer.Get("X-Count"))
					c.expectOpen()
				}
				n := q[2:]
				if i := strings.IndexByte(n, '&'); i >= 0 {
					n = n[:i]
				}
				want := fmt.Sprintf("chunked trailer X-Sum=%q X-Count=%q", "sum-"+n, "1")
				if results[0] != want {
					t.Errorf("h1server: %s\nwant      %s\nnet/http: %s", results[0], want, results[1])
				}
				if results[1] != want {
					t.Errorf("net/http: %s, want %s", results[1], want)
				}
			})
		}
	}
}

// TestShortBody: a body shorter than the handler's Content-Length can only
// be told by closing the connection; writing past it fails with
// http.ErrContentLength.
func TestShortBody(t *testing.T) {
	errc := make(chan error, 1)
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "1234")
		if r.URL.Path == "/over" {
			_, err := io.WriteString(w, "5678901")
			errc <- err
		}
	})})
	for _, path := range []string{"/", "/over"} {
		t.Run(path, func(t *testing.T) {
			c := newRaw(t, addr)
			c.send("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
			res, err := readResp(c.br, "GET")
			if !errors.Is(err, io.ErrUnexpectedEOF) || res.body != "1234" || res.header.Get("Content-Length") != "10" {
				t.Fatalf("got %s, %v; want the 4 bytes then the end of the connection", res, err)
			}
			c.expectClosed()
			if path == "/over" {
				if err := <-errc; !errors.Is(err, http.ErrContentLength) {
					t.Errorf("write past Content-Length: %v, want http.ErrContentLength", err)
				}
			}
		})
	}
}

// TestWriteErrors: a body for a 204 or 304 is refused; for HEAD it is
// accepted and dropped (nothing of it reaches the client: the next response
// parses).
func TestWriteErrors(t *testing.T) {
	type result struct {
		n   int
		err error
	}
	results := make(chan result, 1)
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.WriteHeader(304)
		}
		n, err := io.WriteString(w, "body")
		results <- result{n, err}
	})})
	for _, tc := range []struct {
		method, path string
		status       int
		n            int
		err          error
	}{
		{"GET", "/204", 204, 0, http.ErrBodyNotAllowed},
		{"GET", "/304", 304, 0, http.ErrBodyNotAllowed},
		{"HEAD", "/", 200, 4, nil},
		{"HEAD", "/204", 204, 4, nil},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			c := newRaw(t, addr)
			c.send(tc.method + " " + tc.path + " HTTP/1.1\r\nHost: a\r\n\r\n")
			if res := c.read(tc.method); res.status != tc.status || res.body != "" {
				t.Fatalf("got %s", res)
			}
			if r := <-results; r.n != tc.n || !errors.Is(r.err, tc.err) {
				t.Errorf("Write: %d, %v; want %d, %v", r.n, r.err, tc.n, tc.err)
			}
			c.expectOpen()
		})
	}
}

// TestInformational: WriteHeader(103) sends a 103 at once (the client reads
// it while the handler waits), with the fields set before it; the final
// response follows with all fields. An HTTP/1.0 client gets no 1xx.
func TestInformational(t *testing.T) {
	read103 := make(chan struct{})
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		if r.ProtoAtLeast(1, 1) {
			<-read103
		}
		w.Header().Set("X-Final", "1")
		io.WriteString(w, "ok")
	})})
	t.Run("HTTP/1.1", func(t *testing.T) {
		c := newRaw(t, addr)
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		early := c.read("GET")
		close(read103)
		if early.status != 103 || early.header.Get("Link") != "</a.css>; rel=preload" || early.header.Get("X-Final") != "" {
			t.Fatalf("got %s %v, want a 103 with the Link field only", early, early.header)
		}
		final := c.read("GET")
		if final.status != 200 || final.body != "ok" || final.header.Get("Link") == "" || final.header.Get("X-Final") != "1" {
			t.Fatalf("got %s %v", final, final.header)
		}
		c.expectOpen()
	})
	t.Run("HTTP/1.0", func(t *testing.T) {
		c := newRaw(t, addr)
		c.send("GET / HTTP/1.0\r\n\r\n")
		if res := c.read("GET"); res.status != 200 || res.body != "ok" {
			t.Fatalf("got %s, want the final response only", res)
		}
		c.expectClosed()
	})
}

// TestExpectContinue: the client waits for 100 Continue, which comes with
// the handler's first read of the body, before it sends the body; a
// handler that answers without reading it sends no 100 Continue and closes
// the connection (the client may still be waiting to send).
func TestExpectContinue(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject" {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	})})
	t.Run("read", func(t *testing.T) {
		c := newRaw(t, addr)
		res := c.sendWithContinue("PUT", "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", "hello")
		if res.status != 200 || res.body != "got hello" {
			t.Fatalf("got %s", res)
		}
		c.expectOpen()
	})
	t.Run("not read", func(t *testing.T) {
		c := newRaw(t, addr)
		c.send("PUT /reject HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		if res := c.read("PUT"); res.status != 413 {
			t.Fatalf("got %s, want the 413 and no 100", res)
		}
		c.expectClosed()
	})
}

// TestAbort: a handler that panics with http.ErrAbortHandler in the middle
// of a chunked body leaves the body unterminated (the client sees the
// chunks written so far, then the end of the connection); any other panic
// is logged with its stack, and the connection closed.
func TestAbort(t *testing.T) {
	var logMu sync.Mutex
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logBuf.Write(p)
	}), nil))
	addr := serve(t, &Server{Log: log, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, pattern(3000))
		w.(http.Flusher).Flush()
		io.WriteString(w, "lost?")
		if r.URL.Path == "/boom" {
			panic("boom")
		}
		panic(http.ErrAbortHandler)
	})})
	for _, path := range []string{"/abort", "/boom"} {
		t.Run(path, func(t *testing.T) {
			c := newRaw(t, addr)
			c.send("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
			res, err := readResp(c.br, "GET")
			if res.framing != "chunked" || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("got %s, %v; want a chunked body cut short", res, err)
			}
			if !strings.HasPrefix(res.body, pattern(3000)) {
				t.Fatalf("body %q..., want the flushed part", res.body[:min(len(res.body), 20)])
			}
			c.expectClosed()
		})
	}
	logMu.Lock()
	defer logMu.Unlock()
	if l := logBuf.String(); strings.Count(l, "panic serving request") != 1 || !strings.Contains(l, "boom") || !strings.Contains(l, "response_test.go") {
		t.Errorf("log: %q, want the one panic but ErrAbortHandler, with its stack", l)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestHijack: the hijacked connection reads, through the returned
// bufio.Reader, the bytes the client sent right after the request (already
// in the server's buffer), then what it sends later; the server writes
// nothing of its own, Write fails with http.ErrHijacked, and the
// connection is the handler's to close.
func TestHijack(t *testing.T) {
	errc := make(chan error, 1)
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		errc <- func() error {
			nc, brw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return err
			}
			defer nc.Close()
			if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrHijacked) {
				return fmt.Errorf("Write after Hijack: %v", err)
			}
			buf := make([]byte, len("EXTRA-BYTES"))
			if _, err := io.ReadFull(brw, buf); err != nil {
				return err
			}
			brw.WriteString("got " + string(buf) + ";")
			brw.Flush()
			more := make([]byte, 4)
			if _, err := io.ReadFull(brw, more); err != nil {
				return err
			}
			_, err = nc.Write([]byte("got " + string(more)))
			return err
		}()
	})})
	c := newRaw(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\nEXTRA-BYTES")
	first := make([]byte, len("got EXTRA-BYTES;"))
	if _, err := io.ReadFull(c.br, first); err != nil || string(first) != "got EXTRA-BYTES;" {
		t.Fatalf("read %q, %v", first, err)
	}
	c.send("MORE")
	rest, err := io.ReadAll(c.br)
	if err != nil || string(rest) != "got MORE" {
		t.Fatalf("read %q, %v; want the handler's bytes, then the end", rest, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestFullDuplex: a handler may read the request body on one goroutine
// while it writes and flushes the response on another (run with -race: the
// 100 Continue the body's first read may send is ordered against the
// response head).
func TestFullDuplex(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			t.Errorf("EnableFullDuplex: %v", err)
		}
		bodyc := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(r.Body)
			bodyc <- b
		}()
		for i := range 3 {
			fmt.Fprintf(w, "part%d,", i)
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, "body=%s", <-bodyc)
	})})
	for range 20 {
		c := newRaw(t, addr)
		// (Without Expect: a client waiting for 100 Continue whose body
		// is not read when the head goes out gets Connection: close, as
		// from net/http.)
		c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
		res := c.read("POST")
		if res.status != 200 || res.body != "part0,part1,part2,body=hello" {
			t.Fatalf("got %s", res)
		}
		c.expectOpen()
	}
}

// TestResponseController: what http.ResponseController offers works on
// h1server's ResponseWriter: Flush sends the head and body so far while the
// handler runs; a read deadline set before the body is read ends a body
// read that waits (the client sends less than its Content-Length); a write
// deadline ends a write to a client that does not read.
func TestResponseController(t *testing.T) {
	flushed := make(chan struct{})
	errs := map[string]chan error{"/flush": make(chan error, 1), "/read-deadline": make(chan error, 1), "/write-deadline": make(chan error, 1)}
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		errc := errs[r.URL.Path]
		switch r.URL.Path {
		case "/flush":
			io.WriteString(w, "early")
			if err := rc.Flush(); err != nil {
				errc <- err
				return
			}
			<-flushed
			io.WriteString(w, ",late")
			errc <- nil
		case "/read-deadline":
			rc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			_, err := io.ReadAll(r.Body)
			errc <- err
		case "/write-deadline":
			rc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			big := make([]byte, 1<<20)
			var err error
			for err == nil {
				_, err = w.Write(big)
			}
			errc <- err
		}
	})})
	// result waits for the handler's report; a handler stuck past ioTimeout
	// is ended by the end of the test (its client connection closes).
	result := func(t *testing.T, path string) error {
		t.Helper()
		wait := ioTimeout
		if path == "/read-deadline" {
			wait = time.Second // 20 times the deadline
		}
		select {
		case err := <-errs[path]:
			return err
		case <-time.After(wait):
			t.Fatalf("the handler did not return in %v", wait)
			return nil
		}
	}
	t.Run("Flush", func(t *testing.T) {
		c := newRaw(t, addr)
		c.send("GET /flush HTTP/1.1\r\nHost: a\r\n\r\n")
		if l := c.readLine(); l != "HTTP/1.1 200 OK" {
			t.Fatalf("status line %q", l)
		}
		close(flushed)
		res, err := readRespRest(c)
		if err != nil || res != "early,late" {
			t.Fatalf("body %q, %v", res, err)
		}
		if err := result(t, "/flush"); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	})
	t.Run("SetReadDeadline", func(t *testing.T) {
		c := newRaw(t, addr)
		c.send("POST /read-deadline HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
		if err := result(t, "/read-deadline"); !isTimeout(err) {
			t.Fatalf("body read past the read deadline: %v, want a timeout", err)
		}
	})
	t.Run("SetWriteDeadline", func(t *testing.T) {
		c := newRaw(t, addr)
		c.send("GET /write-deadline HTTP/1.1\r\nHost: a\r\n\r\n") // and never read
		if err := result(t, "/write-deadline"); !isTimeout(err) {
			t.Fatalf("write past the write deadline: %v, want a timeout", err)
		}
	})
}

// readRespRest reads the rest of a chunked response whose status line was
// read: its fields, then its body.
func readRespRest(c *rawClient) (string, error) {
	res, err := http.ReadResponse(bufioPrefix("HTTP/1.1 200 OK\r\n", c), nil)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

// bufioPrefix reads prefix, then what c has.
func bufioPrefix(prefix string, c *rawClient) *bufio.Reader {
	return bufio.NewReader(io.MultiReader(strings.NewReader(prefix), c.br))
}

// TestConnContext: each request's context carries the values of the
// connection's (from ConnContext), and Request.RemoteAddr is the client's.
func TestConnContext(t *testing.T) {
	type key struct{}
	addr := serve(t, &Server{
		ConnContext: func(ctx context.Context, nc net.Conn) context.Context {
			return context.WithValue(ctx, key{}, "conn "+nc.RemoteAddr().String())
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%v|%s", r.Context().Value(key{}), r.RemoteAddr)
		}),
	})
	c := newRaw(t, addr)
	local := c.c.LocalAddr().String()
	for range 2 {
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if res := c.read("GET"); res.body != "conn "+local+"|"+local {
			t.Fatalf("got %q, want the connection's value and address %s", res.body, local)
		}
	}
}
