package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFailoverBackendKilled: one of three real lb_backend processes is
// killed; every later GET and POST still succeeds (a refused connection is
// retried on another backend) and nothing goes to the dead one.
func TestFailoverBackendKilled(t *testing.T) {
	t.Parallel()
	procs, backends := startDemoBackends(t, "B1", "B2", "B3")
	lb := startBalancer(t, lbConfig("round-robin", "", backends...))
	cl := client(t)

	res := spread(cl, lb.URL("/"), 60, 4)
	if len(res.Failures) > 0 || len(res.ByBackend) != 3 {
		t.Fatalf("before the failure: %v, failures %v", res.ByBackend, res.Failures)
	}

	kill(t, procs["B2"])

	seq := sequenceOver(t, newOneConnClient(t), lb.URL("/after"), 150)
	if n := count(seq, "B2"); n > 0 {
		t.Errorf("%d responses claim to come from the killed backend", n)
	}
	res = spread(cl, lb.URL("/after-concurrent"), 300, 8)
	if len(res.Failures) > 0 {
		t.Fatalf("%d of 300 GET requests failed after one backend of three was killed, first: %s", len(res.Failures), res.Failures[0])
	}
	if res.ByBackend["B1"] == 0 || res.ByBackend["B3"] == 0 || res.ByBackend["B2"] != 0 {
		t.Errorf("after B2 was killed: %v, want B1 and B3 only", res.ByBackend)
	}

	// A POST whose connection is refused was never sent: it is retried too.
	for i := range 30 {
		body := fmt.Sprintf("payload %d", i)
		resp, err := cl.Post(lb.URL("/echo"), "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(got), body) {
			t.Fatalf("POST %d after B2 died: status %d, body %q, err %v; want 200 echoing %q", i, resp.StatusCode, got, err, body)
		}
	}
}

// TestFailoverEveryStrategy: with each strategy, a closed backend costs no
// request.
func TestFailoverEveryStrategy(t *testing.T) {
	t.Parallel()
	for _, strategy := range []string{"round-robin", "weighted-round-robin", "random", "sticky"} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			a, b, c := newTestBackend(t, "a"), newTestBackend(t, "b"), newTestBackend(t, "c")
			lb := startBalancer(t, lbConfig(strategy, "",
				backendEntry{Addr: a.addr, Weight: 3}, backendEntry{Addr: b.addr, Weight: 2}, backendEntry{Addr: c.addr, Weight: 1}))
			cl := client(t)
			// Pin a sticky client to b before b goes away.
			var cookie []string
			for range 10 {
				r := get(t, cl, lb.URL("/"))
				if _, v := cookieFrom(r.Header, defaultCookie); r.Backend == "b" && v != "" {
					cookie = []string{"Cookie: " + defaultCookie + "=" + v}
					break
				}
			}
			b.Close()
			for i := range 200 {
				r, err := tryGet(cl, lb.URL("/after"), cookie...)
				if err != nil {
					t.Fatalf("request %d after b closed: %v", i, err)
				}
				if r.Status != http.StatusOK || r.Backend == "b" {
					t.Fatalf("request %d after b closed: status %d from %q, body %q", i, r.Status, r.Backend, r.Body)
				}
			}
		})
	}
}

// TestFailoverAllDown: with every backend down the client gets a small
// 502 or 503 at once, not a hang, and no internals.
func TestFailoverAllDown(t *testing.T) {
	t.Parallel()
	a, b := newTestBackend(t, "a"), newTestBackend(t, "b")
	lb := startBalancer(t, lbConfig("round-robin", "", backendsOf(a, b)...))
	cl := client(t)
	cl.Timeout = 5 * time.Second
	if r := get(t, cl, lb.URL("/")); r.Status != http.StatusOK {
		t.Fatalf("status %d with both backends up", r.Status)
	}
	a.Close()
	b.Close()
	for i := range 10 {
		r, err := tryGet(cl, lb.URL("/down"))
		if err != nil {
			t.Fatalf("request %d with every backend down: %v (want a 502 or 503 within %s)", i, err, cl.Timeout)
		}
		if r.Status != http.StatusBadGateway && r.Status != http.StatusServiceUnavailable {
			t.Fatalf("request %d with every backend down: status %d, want 502 or 503", i, r.Status)
		}
		if len(r.Body) > 512 {
			t.Errorf("error reply of %d bytes, want a small one", len(r.Body))
		}
		for _, leak := range []string{"127.0.0.1", a.addr, b.addr, "dial", "refused", "goroutine", ".go:"} {
			if strings.Contains(r.Body, leak) {
				t.Errorf("error reply %q leaks %q", r.Body, leak)
			}
		}
	}
}
