package e2e

// Helpers for the balancing_*_test.go and cli_*_test.go files: backends that
// count requests and TCP connections, config builders, clients that keep
// one connection, statistics, and running the binary as a command.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testBackend is an HTTP server in the test process that names itself in
// the X-Backend header and counts the requests it serves and the TCP
// connections that carried them.
type testBackend struct {
	name string
	srv  *httptest.Server
	addr string // 127.0.0.1:port

	requests atomic.Int64
	accepted atomic.Int64 // TCP connections accepted (health probes included)
	used     atomic.Int64 // TCP connections that carried at least one request

	mu   sync.Mutex
	seen map[net.Conn]bool
}

// newTestBackend starts a counting backend on a loopback port; it is closed
// at the end of the test.
func newTestBackend(t testing.TB, name string) *testBackend {
	t.Helper()
	return newTestBackendOn(t, name, nil)
}

// newTestBackendOn is newTestBackend serving on ln (a new loopback
// listener when nil).
func newTestBackendOn(t testing.TB, name string, ln net.Listener) *testBackend {
	t.Helper()
	b := &testBackend{name: name, seen: map[net.Conn]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		w.Header().Set("X-Backend", b.name)
		if r.URL.Path == "/set-app-cookie" {
			w.Header().Add("Set-Cookie", "app_session=from-backend; Path=/")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, b.name+"\n")
	})
	b.srv = httptest.NewUnstartedServer(mux)
	if ln != nil {
		b.srv.Listener.Close()
		b.srv.Listener = ln
	}
	b.srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.accepted.Add(1)
		case http.StateActive:
			b.mu.Lock()
			if !b.seen[c] {
				b.seen[c] = true
				b.used.Add(1)
			}
			b.mu.Unlock()
		case http.StateClosed, http.StateHijacked:
			// Keep the map small; a closed conn is never active again.
			b.mu.Lock()
			delete(b.seen, c)
			b.mu.Unlock()
		}
	}
	b.srv.Start()
	b.addr = b.srv.Listener.Addr().String()
	t.Cleanup(b.srv.Close)
	return b
}

// Close stops the backend: it refuses connections from now on.
func (b *testBackend) Close() { b.srv.Close() }

// startLB is startBalancer that also fails the test if the race detector
// reported a data race in the balancer while the test ran.
func startLB(t testing.TB, configYAML string, extra ...string) *balancer {
	t.Helper()
	lb := startBalancer(t, configYAML, extra...)
	t.Cleanup(func() { // runs before the harness kills the process
		if strings.Contains(lb.Output(), "DATA RACE") {
			t.Errorf("the race detector reported a data race in load_balancer")
		}
	})
	return lb
}

// startDemoBackendProc is startDemoBackend that also returns the process,
// so that a test can kill it.
func startDemoBackendProc(t testing.TB, name string) (*process, string) {
	t.Helper()
	port := freePort(t)
	p := start(t, "lb_backend", "", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--name", name)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitForPort(t, addr, 10*time.Second)
	return p, addr
}

// kill stops p with SIGKILL and waits until it is gone, so that its port
// refuses connections from then on.
func kill(t testing.TB, p *process) {
	t.Helper()
	p.Signal(syscall.SIGKILL)
	p.Wait(10 * time.Second)
}

// lbBackend is one entry of a generated config.
type lbBackend struct {
	Addr   string // host:port
	Weight int    // 0: weight not written (default 1)
}

// lbYAML builds a config with the given strategy ("" for none), backends
// and extra top-level YAML. The admin listener is turned off so that
// balancers running in parallel do not compete for its default port.
func lbYAML(strategy string, extra string, backends ...lbBackend) string {
	var b strings.Builder
	b.WriteString("admin:\n  addr: \"off\"\n")
	if strategy != "" {
		fmt.Fprintf(&b, "strategy: %s\n", strategy)
	}
	b.WriteString(extra)
	if extra != "" && !strings.HasSuffix(extra, "\n") {
		b.WriteByte('\n')
	}
	b.WriteString("backends:\n")
	for _, be := range backends {
		host, port, _ := net.SplitHostPort(be.Addr)
		fmt.Fprintf(&b, "  - host: %q\n    port: %s\n", host, port)
		if be.Weight != 0 {
			fmt.Fprintf(&b, "    weight: %d\n", be.Weight)
		}
	}
	return b.String()
}

// addrs turns test backends into config entries of weight 1.
func addrs(bs ...*testBackend) []lbBackend {
	out := make([]lbBackend, len(bs))
	for i, b := range bs {
		out[i] = lbBackend{Addr: b.addr}
	}
	return out
}

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

// getResult is what a test keeps of one response.
type getResult struct {
	Status  int
	Backend string // X-Backend
	Body    string
	Header  http.Header
	Reused  bool // the client sent the request on a reused connection
}

// get sends GET url with the given extra header lines ("Name: value") and
// reads the whole response. It fails the test on transport errors.
func get(t testing.TB, c *http.Client, url string, headers ...string) getResult {
	t.Helper()
	r, err := tryGet(c, url, headers...)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return r
}

// tryGet is get returning transport errors; safe to call from goroutines.
func tryGet(c *http.Client, url string, headers ...string) (getResult, error) {
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, url, nil)
	if err != nil {
		return getResult{}, err
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	res, err := c.Do(req)
	if err != nil {
		return getResult{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return getResult{}, fmt.Errorf("reading body: %w", err)
	}
	return getResult{Status: res.StatusCode, Backend: res.Header.Get("X-Backend"), Body: string(body), Header: res.Header, Reused: reused}, nil
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

// cmdResult is the outcome of running load_balancer as a command.
type cmdResult struct {
	Stdout, Stderr string
	Code           int
}

// runLB runs load_balancer with args in dir (a fresh temp dir when "")
// and waits for it to exit, at most within.
func runLB(t testing.TB, dir string, within time.Duration, args ...string) cmdResult {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "load_balancer"), args...)
	cmd.Dir = dir
	// A race-enabled binary sleeps 1s at exit by default, to let
	// goroutines report races; these commands exit at once.
	cmd.Env = append(os.Environ(), strings.TrimSpace("GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("load_balancer %q did not exit within %s; stdout:\n%s\nstderr:\n%s", args, within, stdout.String(), stderr.String())
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("running load_balancer %q: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return cmdResult{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
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

// portFree reports whether nothing listens on addr (a connection is
// refused).
func portFree(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// eventually polls cond every 10ms until it holds or within passes, and
// reports whether it held.
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
