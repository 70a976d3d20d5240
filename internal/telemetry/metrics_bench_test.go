package telemetry

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/proxy"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// BenchmarkRequestFinished measures the metrics' cost per request alone:
// RequestStarted plus RequestFinished for a GET answered 200 by a backend.
func BenchmarkRequestFinished(b *testing.B) {
	backends := make([]upstream.Member, 4)
	for i := range backends {
		backends[i] = upstream.Member{Backend: upstream.NewBackend(upstream.Address{Scheme: "http", Host: "127.0.0.1", Port: 9001 + i}, nil), Weight: 1}
	}
	m := NewMetrics(MetricsOptions{})
	m.SetSource(&fakeSource{members: backends})
	req := httptest.NewRequest("GET", "/", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s := proxy.Summary{Status: 200, Duration: 900 * time.Microsecond, BackendDuration: 700 * time.Microsecond,
				BytesOut: 100, Backend: backends[i%len(backends)].Backend, Attempts: 1}
			m.RequestStarted()
			m.RequestFinished(req, &s)
			i++
		}
	})
}

// discardWriter is a ResponseWriter that keeps nothing, so that the
// benchmarks measure the handler rather than a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkHandlerMetrics measures one proxied GET with a 100-byte response
// through the whole proxy.Handler against a real backend on loopback (as
// proxy's BenchmarkHandler does), without and with metrics: the difference
// is what metrics cost a request.
func BenchmarkHandlerMetrics(b *testing.B) {
	body := strings.Repeat("x", 100)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, body)
	}))
	defer backend.Close()
	for _, withMetrics := range []bool{false, true} {
		name := "metrics=off"
		if withMetrics {
			name = "metrics=on"
		}
		b.Run(name, func(b *testing.B) {
			h, src := testProxy(b, backend.URL)
			if withMetrics {
				m := NewMetrics(MetricsOptions{})
				m.SetSource(src)
				h.Metrics = m
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", "/small", nil)
				req.RemoteAddr = "127.0.0.1:40000"
				w := &discardWriter{h: make(http.Header)}
				for pb.Next() {
					clear(w.h)
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}
