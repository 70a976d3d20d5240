package proxy

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/lbproject/load_balancer/internal/balancer"
	"github.com/lbproject/load_balancer/internal/health"
	"github.com/lbproject/load_balancer/internal/testbackend"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// newTestHandler returns a Handler balancing round-robin over the given
// backend URLs (http://host:port).
func newTestHandler(t testing.TB, urls ...string) (*Handler, []*upstream.Backend) {
	t.Helper()
	pool := &upstream.Pool{}
	var backends []*upstream.Backend
	for _, u := range urls {
		host, port, err := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		addr := upstream.Address{Scheme: "http", Host: host, Port: p}
		opts := upstream.TransportOptions{
			DialTimeout: time.Second, ResponseHeaderTimeout: 5 * time.Second,
			IdleConnTimeout: time.Minute, MaxIdleConns: 64,
		}
		tr := upstream.NewTransport(addr, opts)
		t.Cleanup(tr.CloseIdleConnections)
		b := upstream.NewBackend(addr, tr)
		backends = append(backends, b)
		pool.Members = append(pool.Members, upstream.Member{Backend: b, Weight: 1})
	}
	h := New(slog.New(slog.DiscardHandler))
	h.Store(&Snapshot{Pool: pool, Picker: balancer.NewRoundRobin(pool), Attempts: 3, MaxURIBytes: 8192})
	return h, backends
}

func TestHandlerNoAvailableBackendIs503(t *testing.T) {
	h, backends := newTestHandler(t, "http://127.0.0.1:1")
	backends[0].SetDraining(true)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
}

func TestHandlerLongURIIs414(t *testing.T) {
	h, _ := newTestHandler(t, "http://127.0.0.1:1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/"+strings.Repeat("a", 9000), nil))
	if rec.Code != http.StatusRequestURITooLong {
		t.Fatalf("status %d, want 414", rec.Code)
	}
}

func TestHandlerRetriesRefusedConnection(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backend.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close() // connections to it are refused now

	h, backends := newTestHandler(t, closedURL, backend.URL)
	for range 4 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 200 || rec.Body.String() != "ok" {
			t.Fatalf("status %d body %q, want 200 ok", rec.Code, rec.Body)
		}
	}
	if backends[0].Failures() == 0 {
		t.Fatalf("the refused backend recorded no failure")
	}
}

// TestHandlerExchange runs exchanges through the handler: bodies both ways,
// hop-by-hop fields removed both ways, Via and X-Forwarded-For set.
func TestHandlerExchange(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Seen", r.Header.Get("X-Forwarded-For")+" "+r.Header.Get("X-Secret")+" "+r.Header.Get("Via"))
		w.Header().Add("Set-Cookie", "b=1")
		io.WriteString(w, r.Method+" "+r.RequestURI+" "+string(b))
	}))
	defer backend.Close()
	h, _ := newTestHandler(t, backend.URL)
	for _, method := range []string{"GET", "POST"} {
		req := httptest.NewRequest(method, "/p?q=1", strings.NewReader("body"))
		req.Header.Set("Connection", "X-Secret")
		req.Header.Set("X-Secret", "s")
		req.RemoteAddr = "192.0.2.9:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		want := method + " /p?q=1 body"
		if rec.Code != 200 || rec.Body.String() != want {
			t.Fatalf("%s: status %d body %q, want %q", method, rec.Code, rec.Body, want)
		}
		hdr := rec.Header()
		if hdr.Get("X-Hop") != "" || hdr.Get("Keep-Alive") != "" || hdr.Get("Connection") != "" {
			t.Errorf("%s: hop-by-hop fields reached the client: %v", method, hdr)
		}
		if hdr.Get("X-Seen") != "192.0.2.9  1.1 load_balancer" || hdr.Get("Via") != "1.1 load_balancer" || hdr.Get("Set-Cookie") != "b=1" {
			t.Errorf("%s: header %v", method, hdr)
		}
	}
}

// TestHandlerErrorReplyHasNoBackendFields: a response whose head was read
// into the client's header and then rejected leaves nothing behind in the
// error reply.
func TestHandlerErrorReplyHasNoBackendFields(t *testing.T) {
	replies := map[string]string{
		"/bad-cl":      "HTTP/1.1 200 OK\r\nX-Leak: 1\r\nContent-Length: x\r\n\r\n",
		"/101-unasked": "HTTP/1.1 101 Switching Protocols\r\nX-Leak: 1\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
	}
	backend := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		if r, err := http.ReadRequest(br); err == nil {
			io.WriteString(c, replies[r.URL.Path])
		}
	})
	h, _ := newTestHandler(t, "http://"+backend.Addr)
	for path := range replies {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusBadGateway || rec.Header().Get("X-Leak") != "" {
			t.Errorf("%s: status %d header %v, want a clean 502", path, rec.Code, rec.Header())
		}
	}
}

// TestHandlerResponseValuesInWritersRoom: with a ResponseWriter that has
// room for its header values (h1server's), the backend's field values are
// parsed into that room, not into an allocation of their own.
func TestHandlerResponseValuesInWritersRoom(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From", "backend")
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	h, _ := newTestHandler(t, backend.URL)
	w := &valuesRecorder{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	v := w.Header()["X-From"]
	if w.Code != 200 || len(v) != 1 || v[0] != "backend" {
		t.Fatalf("status %d, X-From %q", w.Code, v)
	}
	if in := uintptr(unsafe.Pointer(&v[0])) - uintptr(unsafe.Pointer(&w.vals[0])); in >= unsafe.Sizeof(w.vals) {
		t.Errorf("X-From's value is not in the writer's room")
	}
}

// valuesRecorder is a recorder with room for its header values.
type valuesRecorder struct {
	*httptest.ResponseRecorder
	vals [16]string
}

func (w *valuesRecorder) HeaderValues() []string { return w.vals[:] }

// discardWriter is a ResponseWriter that keeps nothing, so benchmarks
// measure the handler rather than a recorder; like h1server's, it has room
// for its header values.
type discardWriter struct {
	h    http.Header
	vals [16]string
}

func (w *discardWriter) HeaderValues() []string      { clear(w.vals[:]); return w.vals[:] }
func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// fakeConn is a net.Conn with only a remote address, for ConnContext.
type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.remote }

// BenchmarkHandler measures one proxied GET with a 100-byte response through
// the whole handler (pick, header rewrite, pooled backend connection,
// streaming) against a real backend on loopback.
func BenchmarkHandler(b *testing.B) {
	body := strings.Repeat("x", 100)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, body)
	}))
	defer backend.Close()
	h, _ := newTestHandler(b, backend.URL)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/small", nil)
		req.RemoteAddr = "127.0.0.1:40000"
		// As the server's ConnContext hook does for every connection.
		req = req.WithContext(ConnContext(req.Context(), fakeConn{remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}}))
		w := &discardWriter{h: make(http.Header)}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

// BenchmarkOutgoingHeader measures preparing the backend request's header.
func BenchmarkOutgoingHeader(b *testing.B) {
	h, _ := newTestHandler(b, "http://127.0.0.1:1")
	snap := h.Snapshot()
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "192.0.2.1:5000"
	req.Header = http.Header{
		"Accept":          {"*/*"},
		"User-Agent":      {"bench"},
		"Connection":      {"keep-alive"},
		"Accept-Encoding": {"gzip"},
	}
	ci := requestConnInfo(req)
	out := make(http.Header)
	b.ReportAllocs()
	for b.Loop() {
		clear(out)
		outgoingHeader(req, snap, ci, out)
	}
}

// BenchmarkServerHTTP1 measures the balancer's whole request path as it
// runs in production: a keep-alive HTTP/1.1 client connection to net/http's
// server with the proxy handler (and ConnContext), forwarding through h1 to
// a minimal backend. Client and backend are raw loops that cost little, so
// that the profile is the balancer's.
func BenchmarkServerHTTP1(b *testing.B) {
	reply := "HTTP/1.1 200 OK\r\nServer: bench\r\nDate: Mon, 01 Jan 2026 00:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 100)
	backend := testbackend.Bench(b, reply)
	h, _ := newTestHandler(b, "http://"+backend)
	front := httptest.NewUnstartedServer(h)
	front.Config.ConnContext = ConnContext
	front.Start()
	defer front.Close()
	req := "GET /small HTTP/1.1\r\nHost: lb.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", front.Listener.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for pb.Next() {
			if _, err := io.WriteString(c, req); err != nil {
				b.Fatal(err)
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, res.Body); err != nil || n != 100 || res.StatusCode != 200 {
				b.Fatalf("status %d, %d bytes, %v", res.StatusCode, n, err)
			}
		}
	})
}

// BenchmarkAccessLog measures the access log line of one request, text and
// JSON, written to a discarding writer: the cost logging adds per request.
func BenchmarkAccessLog(b *testing.B) {
	req := httptest.NewRequest("GET", "/small?q=1", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	backend := upstream.NewBackend(upstream.Address{Scheme: "http", Host: "127.0.0.1", Port: 9001}, nil)
	for _, format := range []string{"text", "json"} {
		b.Run(format, func(b *testing.B) {
			var handler slog.Handler = slog.NewTextHandler(io.Discard, nil)
			if format == "json" {
				handler = slog.NewJSONHandler(io.Discard, nil)
			}
			h := New(slog.New(handler))
			ex := &exchange{accessLog: true}
			ex.Status, ex.BytesOut, ex.Backend, ex.Attempts, ex.Duration = 200, 100, backend, 1, time.Millisecond
			b.ReportAllocs()
			for b.Loop() {
				h.logAccess(req, ex)
			}
		})
	}
}

// recordingObserver records the outcomes passive health checking would see.
type recordingObserver struct {
	mu       sync.Mutex
	outcomes []health.Outcome
}

func (o *recordingObserver) Observe(_ *upstream.Backend, out health.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes = append(o.outcomes, out)
}

func (o *recordingObserver) failures() []health.Outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	var bad []health.Outcome
	for _, out := range o.outcomes {
		if out != health.Success {
			bad = append(bad, out)
		}
	}
	return bad
}

// TestHandlerPoolFullIs503AndNotBlamed: a backend at its connection limit
// is busy, not broken: the request waiting for a connection gets 503 after
// the dial timeout, and passive health checking is told nothing bad.
func TestHandlerPoolFullIs503AndNotBlamed(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	defer close(release)

	host, port, _ := net.SplitHostPort(strings.TrimPrefix(backend.URL, "http://"))
	p, _ := strconv.Atoi(port)
	addr := upstream.Address{Scheme: "http", Host: host, Port: p}
	tr := upstream.NewTransport(addr, upstream.TransportOptions{
		DialTimeout: 200 * time.Millisecond, ResponseHeaderTimeout: 5 * time.Second,
		IdleConnTimeout: time.Minute, MaxIdleConns: 4, MaxConns: 1,
	})
	defer tr.CloseIdleConnections()
	b := upstream.NewBackend(addr, tr)
	pool := &upstream.Pool{Members: []upstream.Member{{Backend: b, Weight: 1}}}
	obs := &recordingObserver{}
	h := New(slog.New(slog.DiscardHandler))
	h.Observer = obs
	h.Store(&Snapshot{Pool: pool, Picker: balancer.NewRoundRobin(pool), Attempts: 3, MaxURIBytes: 8192})

	held := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/hold", nil))
		held <- rec.Code
	}()
	<-started // the only connection is busy now
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d while the backend is at its connection limit, want 503", rec.Code)
	}
	if bad := obs.failures(); len(bad) != 0 {
		t.Fatalf("passive health was told %v about a busy backend", bad)
	}
	release <- struct{}{}
	if code := <-held; code != 200 {
		t.Fatalf("the request holding the connection got %d", code)
	}
}

// TestRequestBodyNoDeadlineAfterRequest: a body read after the handler
// returned (the backend client's writer may outlive it) sets no read
// deadline on the client connection, which may be serving the next
// request by then; before, it does.
func TestRequestBodyNoDeadlineAfterRequest(t *testing.T) {
	w := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	r := httptest.NewRequest("POST", "/", strings.NewReader("abcdef"))
	b := newRequestBody(w, r, time.Second)
	p := make([]byte, 2)
	if _, err := b.Read(p); err != nil || w.calls != 1 {
		t.Fatalf("read during the request: %v, %d deadline calls, want 1", err, w.calls)
	}
	ex := getExchange()
	ex.body = b
	ex.release() // as when ServeHTTP returns
	if _, err := b.Read(p); err != nil || w.calls != 1 {
		t.Fatalf("read after the request: %v, %d deadline calls, want still 1", err, w.calls)
	}
}

// deadlineRecorder counts the read deadlines set through a
// ResponseController.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	calls int
}

func (w *deadlineRecorder) SetReadDeadline(time.Time) error { w.calls++; return nil }

// TestShouldFlushEachRead: a body of unknown length, or server-sent events
// of any framing, reach the client as each read comes; a sized body of any
// other type is left to the server's write buffer.
func TestShouldFlushEachRead(t *testing.T) {
	for _, tc := range []struct {
		length      int64
		contentType []string
		want        bool
	}{
		{-1, nil, true},
		{-1, []string{"text/plain"}, true},
		{100, []string{"text/event-stream"}, true},
		{100, []string{"text/event-stream; charset=utf-8"}, true},
		{100, []string{"text/plain"}, false},
		{100, nil, false},
		{100, []string{""}, false},
	} {
		res := &http.Response{ContentLength: tc.length, Header: http.Header{}}
		if tc.contentType != nil {
			res.Header["Content-Type"] = tc.contentType
		}
		if got := shouldFlushEachRead(res); got != tc.want {
			t.Errorf("length %d, Content-Type %q: %v, want %v", tc.length, tc.contentType, got, tc.want)
		}
	}
}
