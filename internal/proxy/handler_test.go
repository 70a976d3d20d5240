package proxy

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/balancer"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// netHTTPTransport makes newTestHandler use net/http's Transport instead of
// h1's, to test the proxy's generic RoundTripper path.
var netHTTPTransport = false

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
		var tr interface {
			http.RoundTripper
			CloseIdleConnections()
		} = upstream.NewH1Transport(addr, opts)
		if netHTTPTransport {
			tr = upstream.NewTransport(opts)
		}
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

// discardWriter is a ResponseWriter that keeps nothing, so benchmarks
// measure the handler rather than a recorder.
type discardWriter struct{ h http.Header }

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
