package h1server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Regression tests for defects a review of the package found; each fails
// without its fix.

// TestKeptByteSurvivesNextWatch: a byte the background read kept (the
// start of a pipelined request) is not overwritten by the watch of the
// request served next from the buffer: the third request arrives whole.
func TestKeptByteSurvivesNextWatch(t *testing.T) {
	watching := make(chan struct{}, 1)
	release := make(chan struct{})
	var s *Server
	keptByte := func() (b byte) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for sc := range s.conns {
			sc.mu.Lock()
			if sc.hasByte {
				b = sc.bgByte[0]
			}
			sc.mu.Unlock()
		}
		return b
	}
	s = &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.Context().Done() // as the proxy's backend client does after 100 ms
		switch r.URL.Path {
		case "/first":
			watching <- struct{}{}
			<-release
		case "/second":
			// Give a wrongly started read the time to take the next byte
			// over the kept one (the fixed server starts none).
			for end := time.Now().Add(100 * time.Millisecond); keptByte() == 'G' && time.Now().Before(end); {
				time.Sleep(time.Millisecond)
			}
		}
		fmt.Fprintf(w, "%s %s", r.Method, r.RequestURI)
	})}
	addr := serve(t, s)
	c := newRaw(t, addr)
	c.send("GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n")
	<-watching
	c.send("GET /third HTTP/1.1\r\nHost: a\r\n\r\n")
	waitFor(t, "the watch to keep the third request's first byte", func() bool { return keptByte() == 'G' })
	close(release)
	for _, want := range []string{"GET /first", "GET /second", "GET /third"} {
		if r := c.read("GET"); r.status != 200 || r.body != want {
			t.Fatalf("got %s, want 200 %q", r, want)
		}
	}
}

// TestRequestTrailersReachHandler: trailer fields of a chunked request
// body, announced or not, are in the handler's Request.Trailer once the
// body is read (net/http's reader sets them in the Request it was made for).
func TestRequestTrailersReachHandler(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		fmt.Fprintf(w, "%q", r.Trailer.Get("X-T"))
	})})
	c := newRaw(t, addr)
	c.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n")
	if r := c.read("POST"); r.body != `"1"` {
		t.Fatalf("handler saw trailer %s, want \"1\"", r.body)
	}
}

// TestFramingFieldsAfterWriteHeader: a Content-Length set after
// WriteHeader is not the framing and does not reach the head beside the
// server's own framing; announced trailer fields go after the body only.
func TestFramingFieldsAfterWriteHeader(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cl":
			w.WriteHeader(200)
			w.Header().Set("Content-Length", "9")
			io.WriteString(w, "hi")
		case "/cl-flush":
			w.WriteHeader(200)
			w.Header().Set("Content-Length", "4")
			io.WriteString(w, "hi")
			w.(http.Flusher).Flush()
			io.WriteString(w, "ho")
		case "/announced":
			w.Header().Set("Trailer", "X-T")
			w.Header().Set("X-T", "early")
			w.WriteHeader(200)
			io.WriteString(w, "hi")
			w.Header().Set("X-T", "v")
		}
	})})
	for path, want := range map[string]string{
		"/cl":        "200/length/\"hi\"",
		"/cl-flush":  "200/chunked/\"hiho\"",
		"/announced": "200/chunked/\"hi\"",
	} {
		c := newRaw(t, addr)
		c.send("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
		r := c.read("GET")
		if r.String() != want {
			t.Errorf("%s: got %s, want %s", path, r, want)
		}
		if cl := r.header.Values("Content-Length"); len(cl) > 1 || r.framing == "chunked" && len(cl) > 0 {
			t.Errorf("%s: Content-Length fields %q with %s framing", path, cl, r.framing)
		}
		if path == "/announced" && (r.header.Get("X-T") != "" || r.trailer.Get("X-T") != "v") {
			t.Errorf("%s: X-T in head %q, in trailer %q; want only the trailer's v", path, r.header.Get("X-T"), r.trailer.Get("X-T"))
		}
	}
}

// TestUnreadBodyAnnouncesClose: a response to a request whose large body
// the handler left unread says Connection: close (the server will not read
// megabytes to keep the connection), as net/http's does.
func TestUnreadBodyAnnouncesClose(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})})
	c := newRaw(t, addr)
	c.send(fmt.Sprintf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", 4<<20))
	c.sendAsync(strings.Repeat("x", 1<<20)) // more follows, never
	if r := c.read("POST"); r.status != 413 || !r.close {
		t.Fatalf("got %s, close %v; want 413 with Connection: close", r, r.close)
	}
}

// TestUnreadBodyDrainBounded: a body the handler did not read is drained
// within the header timeout: a client that stops sending it does not hold
// the connection.
func TestUnreadBodyDrainBounded(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
	}), ReadHeaderTimeout: 100 * time.Millisecond})
	c := newRaw(t, addr)
	c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
	if r := c.read("POST"); r.status != 503 {
		t.Fatalf("got %s", r)
	}
	c.c.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := c.br.ReadByte(); isTimeout(err) {
		t.Fatalf("connection still open after %v: the drain is not bounded", ioTimeout)
	}
}

// TestShutdownSkipsHijacked: Shutdown does not wait for a connection the
// handler hijacked (a tunnel), even while that handler still runs.
func TestShutdownSkipsHijacked(t *testing.T) {
	release := make(chan struct{})
	hijacked := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		close(hijacked)
		<-release
		nc.Close()
	})}
	addr := serve(t, s)
	c := newRaw(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-hijacked
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a hijacked connection: %v, want nil", err)
	}
}

// TestFoldedHostRejected: a Host field continued on an obs-fold line is
// malformed (400), as net/http's server finds after joining the lines.
func TestFoldedHostRejected(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\t/b\r\n\r\n",
	} {
		c := newRaw(t, addr)
		c.send(raw)
		if r := c.read("GET"); r.status != 400 {
			t.Errorf("%q: got %s, want 400", raw, r)
		}
	}
}

// enfileListener fails its first Accept with ENFILE.
type enfileListener struct {
	net.Listener
	n int
}

func (l *enfileListener) Accept() (net.Conn, error) {
	if l.n++; l.n == 1 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ENFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptENFILERetried: a full system file table is waited out, as by
// net/http: Serve goes on and serves the next connection.
func TestAcceptENFILERetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(&enfileListener{Listener: ln}) }()
	c := newRaw(t, ln.Addr().String())
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if r := c.read("GET"); r.status != 200 {
		t.Errorf("got %s", r)
	}
	s.Close()
	if err := <-errc; err != http.ErrServerClosed {
		t.Errorf("Serve: %v, want ErrServerClosed", err)
	}
}

// TestExpectTokenList: "100-continue" among other Expect tokens is honoured
// (100 Continue, then the answer), as by net/http; only an Expect without
// it gets 417.
func TestExpectTokenList(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s", b)
	})})
	c := newRaw(t, addr)
	r := c.sendWithContinue("POST", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x-foo\r\nContent-Length: 2\r\n\r\n", "hi")
	if r.status != 200 || r.body != "hi" {
		t.Fatalf("got %s, want 200 \"hi\"", r)
	}
}

// TestTransferEncodingKeepsShortBodyChunked: a handler that sets
// Transfer-Encoding marks its body as a stream: sent chunked to HTTP/1.1
// clients even when it ends short and unflushed (no Content-Length is made
// up for it), close-delimited to HTTP/1.0 ones, as by net/http's server.
func TestTransferEncodingKeepsShortBodyChunked(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Transfer-Encoding", "chunked")
		io.WriteString(w, "hello")
	})})
	for req, want := range map[string]string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n": `200/chunked/"hello"`,
		"GET / HTTP/1.0\r\n\r\n":            `200/close/"hello"`,
	} {
		c := newRaw(t, addr)
		c.send(req)
		if r := c.read("GET"); r.String() != want {
			t.Errorf("%q: got %s, want %s", req, r, want)
		}
	}
}
