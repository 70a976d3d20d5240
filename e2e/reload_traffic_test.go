package e2e

// Reloads have no effect on traffic: continuous load from several clients
// through many reloads loses no request; a WebSocket-style tunnel and a
// long streamed response through an unchanged backend survive a reload; a
// sticky session stays pinned across reloads that add or remove other
// backends.

import (
	"bufio"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/testbackend"
)

// TestReloadUnderLoad: four clients send GET requests in a loop (each
// answered after 2ms, so that every backend always has requests in flight)
// while the watched file is rewritten (write + rename) with other backends
// added and removed, a weight and the backend idle timeout changed, until
// 20 reloads were applied, each after the load made progress on the
// previous config. No request fails.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	_, s1 := startDemoBackend(t, "S1")
	_, s2 := startDemoBackend(t, "S2")
	extra := []*testBackend{newTestBackend(t, "E1"), newTestBackend(t, "E2"), newTestBackend(t, "E3")}
	config := func(i int) string {
		// Timeouts change too, on every other reload: the backends' transports
		// (connection pools) are replaced under load.
		global := fmt.Sprintf("log:\n  access: false\ntimeouts:\n  backend_idle: %ds\n", 60+i/2)
		entries := []backendEntry{{Addr: s1, Weight: 1 + i%3}, {Addr: s2}}
		for j, e := range extra {
			if (i>>j)&1 == 1 { // a different subset of the extras each time
				entries = append(entries, backendEntry{Addr: e.addr})
			}
		}
		return lbConfig("weighted-round-robin", global, entries...)
	}
	lb := startBalancer(t, config(0), "-w", "-i", "100")
	path := filepath.Join(lb.Dir, "lb.yaml")

	const clients, reloads = 4, 20
	load := lcStartLoad(t, lb.URL("/delay?d=2ms"), clients, 0)
	load.waitOK(t, 50, 10*time.Second)
	started := time.Now()
	from := len(lb.Output())
	for i := 1; i <= reloads; i++ {
		writeFileAtomic(t, path, config(i))
		from = lcReloaded(t, lb, from)
		load.waitOK(t, 60, 10*time.Second) // traffic on the new config
		for j, e := range extra {
			if (i>>j)&1 == 1 {
				load.waitServed(t, e.name, 1, 5*time.Second)
			}
		}
	}
	load.Stop()
	took := time.Since(started)
	total := load.ok.Load() + load.failed.Load()
	t.Logf("MEASURE reload under load: %d clients, %d requests, %d reloads in %s, %d failed; served %v",
		clients, total, reloads, took.Round(time.Millisecond), load.failed.Load(), load.Served())
	if f := load.failed.Load(); f != 0 {
		t.Errorf("%d of %d requests failed during %d reloads, first: %v", f, total, reloads, load.Failures())
	}
	if errs := linesContaining(lb.Output(), "level=ERROR"); len(errs) != 0 {
		t.Errorf("errors logged: %v", errs)
	}
}

// TestReloadKeepsTunnelsAndStreams: connections that outlive a request
// survive reloads that add and remove other backends.
func TestReloadKeepsTunnelsAndStreams(t *testing.T) {
	t.Parallel()

	// A WebSocket-style tunnel (101, then raw bytes both ways) through a
	// backend that stays in the config.
	t.Run("tunnel", func(t *testing.T) {
		t.Parallel()
		u := testbackend.Raw(t, lcUpgradeEcho("U"))
		x, y := newTestBackend(t, "X"), newTestBackend(t, "Y")
		cfg := func(others ...string) string {
			return lbConfig("round-robin", "", backendsAt(append([]string{u.Addr}, others...)...)...)
		}
		lb := startBalancer(t, cfg(), "-w", "-i", "100")
		path := filepath.Join(lb.Dir, "lb.yaml")
		c, br := lcOpenTunnel(t, lb.Addr)
		from := len(lb.Output())
		for i, others := range [][]string{{x.addr}, {x.addr, y.addr}, {y.addr}} {
			writeFileAtomic(t, path, cfg(others...))
			from = lcReloaded(t, lb, from)
			if err := lcEcho(c, br, fmt.Sprintf("after reload %d", i+1)); err != nil {
				t.Fatalf("tunnel after reload %d: %v", i+1, err)
			}
		}
	})

	// A tunnel through a backend the reload removes: removed backends
	// finish what is in flight, and an open tunnel is in flight.
	t.Run("tunnel to a removed backend", func(t *testing.T) {
		t.Parallel()
		u := testbackend.Raw(t, lcUpgradeEcho("U"))
		x := newTestBackend(t, "X")
		lb := startBalancer(t, lbConfig("round-robin", "", backendsAt(u.Addr)...), "-w", "-i", "100")
		c, br := lcOpenTunnel(t, lb.Addr)
		from := len(lb.Output())
		writeFileAtomic(t, filepath.Join(lb.Dir, "lb.yaml"), lbConfig("round-robin", "", backendsOf(x)...))
		lcReloaded(t, lb, from)
		if got := servedBy(t, client(t), lb.URL("/"), 3); got["X"] != 3 {
			t.Errorf("after the reload: served by %v, want X", got)
		}
		if err := lcEcho(c, br, "after removal"); err != nil {
			t.Errorf("tunnel through the removed backend: %v", err)
		}
	})

	// A long chunked response streamed through a backend that stays.
	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		_, s := startDemoBackend(t, "S")
		x, y := newTestBackend(t, "X"), newTestBackend(t, "Y")
		lb := startBalancer(t, lbConfig("round-robin", "", backendsAt(s)...), "-w", "-i", "100")
		path := filepath.Join(lb.Dir, "lb.yaml")
		const n = 20
		req, _ := http.NewRequestWithContext(ctxFor(t, 20*time.Second), http.MethodGet, lb.URL(fmt.Sprintf("/chunked?n=%d&interval=100ms", n)), nil)
		res, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("X-Backend") != "S" {
			t.Fatalf("stream: status %d from %q", res.StatusCode, res.Header.Get("X-Backend"))
		}
		sc := bufio.NewScanner(res.Body)
		var lines []string
		next := func() bool {
			if sc.Scan() {
				lines = append(lines, sc.Text())
				return true
			}
			return false
		}
		if !next() {
			t.Fatalf("no first chunk: %v", sc.Err())
		}
		from := len(lb.Output())
		for _, cfg := range []string{
			lbConfig("round-robin", "", backendsAt(s, x.addr)...),
			lbConfig("round-robin", "", backendEntry{Addr: s, Weight: 2}, backendEntry{Addr: y.addr}),
		} {
			writeFileAtomic(t, path, cfg)
			from = lcReloaded(t, lb, from)
			if !next() {
				t.Fatalf("stream ended after a reload, %d of %d lines: %v", len(lines), n, sc.Err())
			}
		}
		for next() {
		}
		if err := sc.Err(); err != nil || len(lines) != n || !strings.Contains(lines[n-1], fmt.Sprintf("chunk %d/%d", n, n)) {
			t.Errorf("stream across two reloads: %d lines, want %d, last %q, err %v", len(lines), n, lines[len(lines)-1], err)
		}
	})
}

// TestReloadStickyStaysPinned: a client pinned by the sticky cookie stays
// on its backend across reloads that add backends, remove others and
// reorder and reweight the list; it is never given a new cookie.
func TestReloadStickyStaysPinned(t *testing.T) {
	t.Parallel()
	bs := map[string]*testBackend{}
	for _, n := range []string{"A", "B", "C", "D"} {
		bs[n] = newTestBackend(t, n)
	}
	lb := startBalancer(t, lbConfig("sticky", "", backendsOf(bs["A"], bs["B"], bs["C"])...), "-w", "-i", "100")
	path := filepath.Join(lb.Dir, "lb.yaml")
	cl := client(t)

	// Pin one client to each of A, B, C.
	pins := stickyValues(t, lb, defaultCookie, "A", "B", "C") // backend → cookie value
	check := func(when string, names ...string) {
		t.Helper()
		for _, name := range names {
			for i := range 10 {
				r := get(t, cl, lb.URL("/"), "Cookie: "+defaultCookie+"="+pins[name])
				if r.Status != http.StatusOK || r.Backend != name {
					t.Fatalf("%s: request %d pinned to %s: status %d from %q", when, i, name, r.Status, r.Backend)
				}
				if raw, _ := cookieFrom(r.Header, defaultCookie); raw != "" {
					t.Errorf("%s: request pinned to %s got a new cookie %q", when, name, raw)
				}
			}
		}
	}
	check("before any reload", "A", "B", "C")

	from := len(lb.Output())
	writeFileAtomic(t, path, lbConfig("sticky", "", backendsOf(bs["A"], bs["B"], bs["C"], bs["D"])...))
	from = lcReloaded(t, lb, from)
	check("after adding D", "A", "B", "C")

	writeFileAtomic(t, path, lbConfig("sticky", "", backendsOf(bs["D"], bs["B"], bs["C"])...))
	from = lcReloaded(t, lb, from)
	check("after removing A and reordering", "B", "C")

	writeFileAtomic(t, path, lbConfig("sticky", "", backendEntry{Addr: bs["C"].addr, Weight: 5}, backendEntry{Addr: bs["B"].addr, Weight: 2}))
	lcReloaded(t, lb, from)
	check("after removing D and reweighting", "B", "C")

	// The client pinned to the removed A moves, and is pinned anew.
	r := get(t, cl, lb.URL("/"), "Cookie: "+defaultCookie+"="+pins["A"])
	if _, v := cookieFrom(r.Header, defaultCookie); r.Status != http.StatusOK || v == "" || v != pins[r.Backend] {
		t.Errorf("client pinned to the removed A: status %d from %q with cookie %q, want a cookie for %q (%q)", r.Status, r.Backend, v, r.Backend, pins[r.Backend])
	}
}

// TestReloadKeepsPooledConnections: a backend that stays in the config
// keeps its pooled keep-alive connection across reloads that add and remove
// others: requests after the reloads reach it on the connection it already
// had.
func TestReloadKeepsPooledConnections(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "a"), newTestBackend(t, "b"), newTestBackend(t, "c")
	lb := startBalancer(t, lbConfig("round-robin", "", backendsOf(a)...), "-w", "-i", "100")
	path := filepath.Join(lb.Dir, "lb.yaml")
	cl := newOneConnClient(t)
	if seq := sequenceOver(t, cl, lb.URL("/"), 10); count(seq, "a") != 10 {
		t.Fatalf("served %v", seq)
	}
	if n := a.used.Load(); n != 1 {
		t.Fatalf("10 sequential requests reached a on %d connections, want 1", n)
	}
	from := len(lb.Output())
	for _, others := range [][]string{{b.addr}, {b.addr, c.addr}, {c.addr}} {
		writeFileAtomic(t, path, lbConfig("round-robin", "", backendsAt(append([]string{a.addr}, others...)...)...))
		from = lcReloaded(t, lb, from)
		sequenceOver(t, cl, lb.URL("/"), 6)
	}
	if n := a.used.Load(); n != 1 {
		t.Errorf("after three reloads that kept a, its requests came on %d connections in all, want the 1 pooled before", n)
	}
	if n := b.used.Load(); n != 1 {
		t.Errorf("b (added, kept, removed) was reached on %d connections, want 1", n)
	}
}
