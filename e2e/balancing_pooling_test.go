package e2e

import (
	"net/http"
	"testing"
	"time"
)

// TestPoolingReusesBackendConnections: the balancer keeps keep-alive
// connections to its backend, so the backend sees far fewer TCP
// connections than requests: for sequential requests, for concurrent
// clients, and for clients that open a new connection per request.
func TestPoolingReusesBackendConnections(t *testing.T) {
	t.Parallel()
	be := newTestBackend(t, "pooled")
	lb := startBalancer(t, lbConfig("round-robin", "", backendsOf(be)...))
	const maxConns = 20

	phase := func(name string, n int, run func() loadResult) {
		t.Helper()
		reqs, conns := be.requests.Load(), be.used.Load()
		res := run()
		if len(res.Failures) > 0 {
			t.Fatalf("%s: %d of %d requests failed, first: %s", name, len(res.Failures), n, res.Failures[0])
		}
		dr, dc := be.requests.Load()-reqs, be.used.Load()-conns
		if dr != int64(n) {
			t.Errorf("%s: the backend saw %d requests, want %d", name, dr, n)
		}
		t.Logf("%s: %d requests over %d backend connections", name, dr, dc)
		if dc > maxConns {
			t.Errorf("%s: %d requests used %d backend connections, want at most %d (connections are not reused)", name, n, dc, maxConns)
		}
	}

	phase("sequential", 500, func() loadResult {
		c := newOneConnClient(t)
		res := loadResult{ByBackend: map[string]int{}}
		for range 500 {
			r, err := tryGet(c.Client, lb.URL("/seq"))
			if err != nil || r.Status != http.StatusOK {
				res.Failures = append(res.Failures, r.Body)
				if err != nil {
					res.Failures[len(res.Failures)-1] = err.Error()
				}
			}
		}
		return res
	})
	phase("8 concurrent clients", 500, func() loadResult {
		return spread(client(t), lb.URL("/concurrent"), 500, 8)
	})
	phase("new client connection per request", 200, func() loadResult {
		tr := &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: 10 * time.Second}
		t.Cleanup(tr.CloseIdleConnections)
		return spread(&http.Client{Transport: tr, Timeout: 15 * time.Second}, lb.URL("/fresh"), 200, 4)
	})
}
