package telemetry

// This file is compiled only with the tests: NewTestProxy is exported for
// the external test package (tracing_test.go) too.

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/balancer"
	"github.com/lbproject/load_balancer/internal/proxy"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// NewTestProxy returns a proxy handler balancing round-robin (the first
// request goes to the first URL) over backends at urls (http://host:port),
// with retries; each backend's connections are counted.
func NewTestProxy(t testing.TB, urls ...string) (*proxy.Handler, []*upstream.Backend, []*upstream.ConnCount) {
	t.Helper()
	pool := &upstream.Pool{}
	var backends []*upstream.Backend
	var counts []*upstream.ConnCount
	for _, u := range urls {
		host, port, err := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		addr := upstream.Address{Scheme: "http", Host: host, Port: p}
		conns := new(upstream.ConnCount)
		tr := upstream.NewTransport(addr, upstream.TransportOptions{
			DialTimeout: time.Second, ResponseHeaderTimeout: 5 * time.Second,
			IdleConnTimeout: time.Minute, MaxIdleConns: 64, Conns: conns,
		})
		t.Cleanup(tr.CloseIdleConnections)
		b := upstream.NewBackend(addr, tr)
		backends = append(backends, b)
		counts = append(counts, conns)
		pool.Members = append(pool.Members, upstream.Member{Backend: b, Weight: 1})
	}
	h := proxy.New(slog.New(slog.DiscardHandler))
	h.Store(&proxy.Snapshot{Pool: pool, Picker: balancer.NewRoundRobin(pool), Attempts: 3, MaxURIBytes: 8192})
	return h, backends, counts
}
