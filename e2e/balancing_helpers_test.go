package e2e

// Helpers for the balancing_*_test.go and cli_*_test.go files: clients that
// keep one connection, concurrent load, statistics, cookies and command
// output.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// oneConnClient is an HTTP client that uses a single keep-alive connection
// for all its requests (sequentially) and counts the connections it dials.
type oneConnClient struct {
	*http.Client
	dials atomic.Int64
}

func newOneConnClient(t testing.TB) *oneConnClient {
	c := &oneConnClient{}
	tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, ResponseHeaderTimeout: 10 * time.Second}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c.dials.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	c.Client = &http.Client{Transport: tr, Timeout: 15 * time.Second}
	return c
}

// loadResult counts the outcome of many requests.
type loadResult struct {
	ByBackend map[string]int
	Failures  []string // one line per failed request (error or non-200)
}

// spread sends n GET requests for url from workers concurrent goroutines
// sharing client c and counts which backend served each.
func spread(c *http.Client, url string, n, workers int) loadResult {
	var mu sync.Mutex
	res := loadResult{ByBackend: map[string]int{}}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				r, err := tryGet(c, url)
				mu.Lock()
				switch {
				case err != nil:
					res.Failures = append(res.Failures, err.Error())
				case r.Status != http.StatusOK:
					res.Failures = append(res.Failures, fmt.Sprintf("status %d: %q", r.Status, r.Body))
				default:
					res.ByBackend[r.Backend]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return res
}

// sequenceOver sends n sequential GET requests over the one connection of
// c and returns the backend names in order. It fails the test if a request
// fails or if c had to open a second connection.
func sequenceOver(t testing.TB, c *oneConnClient, url string, n int) []string {
	t.Helper()
	before := c.dials.Load()
	seq := make([]string, n)
	for i := range seq {
		r := get(t, c.Client, url)
		if r.Status != http.StatusOK {
			t.Fatalf("request %d: status %d, body %q", i, r.Status, r.Body)
		}
		seq[i] = r.Backend
	}
	if d := c.dials.Load() - before; d > 1 {
		t.Fatalf("%d requests used %d client connections, want one keep-alive connection", n, d)
	}
	return seq
}

// rejectedTwice runs a statistical check and, if it fails, runs it once
// more on a fresh sample; it returns the second failure, or "". A check at
// p = 0.001 then fails a correct balancer once in a million runs instead
// of once in a thousand, while real bias still fails both samples.
func rejectedTwice(check func() string) string {
	if check() == "" {
		return ""
	}
	return check()
}

// Chi-square critical values at p = 0.001 by degrees of freedom.
var chiSquare001 = map[int]float64{1: 10.828, 2: 13.816, 3: 16.266, 8: 26.124}

// chiSquare returns the statistic of observed counts against expected
// counts.
func chiSquare(observed, expected []float64) float64 {
	var x float64
	for i := range observed {
		d := observed[i] - expected[i]
		x += d * d / expected[i]
	}
	return x
}

// cookieFrom returns the raw Set-Cookie header value of the response that
// sets cookie name, and its value ("" when none does).
func cookieFrom(h http.Header, name string) (raw, value string) {
	for _, sc := range h.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(sc, name+"="); ok {
			value, _, _ = strings.Cut(v, ";")
			return sc, strings.Trim(value, `"`)
		}
	}
	return "", ""
}

// nonEmptyLines returns the lines of s that are not blank.
func nonEmptyLines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.TrimSpace(l) != "" {
			out = append(out, strings.TrimRight(l, "\r\n"))
		}
	}
	return out
}
