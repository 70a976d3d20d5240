package e2e

// Backend drain from the config file: a draining backend gets no new
// requests and no new sticky sessions; requests in flight finish. Drain set
// at startup and toggled by reload.

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestReloadDrainAtStartup: B is listed with drain: true. Clients without a
// cookie are served by A and C and pinned to them only.
func TestReloadDrainAtStartup(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "A"), newTestBackend(t, "B"), newTestBackend(t, "C")
	lb := startBalancer(t, lbConfig("sticky", "", backendEntry{Addr: a.addr}, backendEntry{Addr: b.addr, Drain: true}, backendEntry{Addr: c.addr}))
	cl := client(t)
	pinnedTo := map[string]string{} // cookie value → backend
	for i := range 30 {
		r := get(t, cl, lb.URL("/"))
		if r.Status != http.StatusOK || r.Backend == "B" {
			t.Fatalf("request %d: status %d from %q; want A or C (B drains)", i, r.Status, r.Backend)
		}
		_, v := cookieFrom(r.Header, defaultCookie)
		if v == "" {
			t.Fatalf("request %d without a cookie got none", i)
		}
		if prev, ok := pinnedTo[v]; ok && prev != r.Backend {
			t.Fatalf("cookie %q pins to %s and %s", v, prev, r.Backend)
		}
		pinnedTo[v] = r.Backend
	}
	if len(pinnedTo) != 2 {
		t.Errorf("sessions pinned to %v, want A and C only", pinnedTo)
	}
	if n := b.requests.Load(); n != 0 {
		t.Errorf("draining B received %d requests", n)
	}
}

// TestReloadDrainThenUndrain: a client is pinned to B and has a slow
// request in flight on it; a reload sets drain: true on B. The slow request
// completes from B; new requests, with B's cookie or without, go elsewhere,
// and B's cookie holder is pinned anew. A reload that lifts the drain makes
// B's cookie pin to B again.
func TestReloadDrainThenUndrain(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "A"), newTestBackend(t, "B"), newTestBackend(t, "C")
	cfg := func(drainB bool) string {
		return lbConfig("sticky", "", backendEntry{Addr: a.addr}, backendEntry{Addr: b.addr, Drain: drainB}, backendEntry{Addr: c.addr})
	}
	lb := startBalancer(t, cfg(false), "-w", "-i", "100")
	path := filepath.Join(lb.Dir, "lb.yaml")
	cl := client(t)

	cookieOf := stickyValues(t, lb, defaultCookie, "A", "B", "C")
	pinB := "Cookie: " + defaultCookie + "=" + cookieOf["B"]

	slow := lcAsyncGet(cl, lb.URL("/delay?d=1500ms"), pinB)
	b.waitStarted(t, 5*time.Second)
	before := b.requests.Load()

	from := len(lb.Output())
	writeFileAtomic(t, path, cfg(true))
	from = lcReloaded(t, lb, from)

	for i := range 10 {
		r := get(t, cl, lb.URL("/"), pinB)
		_, v := cookieFrom(r.Header, defaultCookie)
		if r.Status != http.StatusOK || r.Backend == "B" {
			t.Fatalf("request %d with B's cookie while B drains: status %d from %q", i, r.Status, r.Backend)
		}
		if v != cookieOf[r.Backend] {
			t.Errorf("request %d with B's cookie served by %s set cookie %q, want %s's (%q)", i, r.Backend, v, r.Backend, cookieOf[r.Backend])
		}
	}
	for i := range 20 {
		r := get(t, cl, lb.URL("/"))
		_, v := cookieFrom(r.Header, defaultCookie)
		if r.Status != http.StatusOK || r.Backend == "B" || v == cookieOf["B"] {
			t.Fatalf("request %d without a cookie while B drains: status %d from %q, cookie %q", i, r.Status, r.Backend, v)
		}
	}
	if n := b.requests.Load() - before; n != 0 {
		t.Errorf("draining B received %d new requests", n)
	}
	r := lcRecv(t, slow, 10*time.Second)
	if r.Err != nil || r.Status != http.StatusOK || r.Backend != "B" {
		t.Errorf("slow request in flight on B when it started draining: err %v, status %d from %q, body %q; want 200 from B",
			r.Err, r.Status, r.Backend, r.Body)
	}

	writeFileAtomic(t, path, cfg(false))
	lcReloaded(t, lb, from)
	for i := range 5 {
		r := get(t, cl, lb.URL("/"), pinB)
		if raw, _ := cookieFrom(r.Header, defaultCookie); r.Status != http.StatusOK || r.Backend != "B" || raw != "" {
			t.Fatalf("request %d with B's cookie after the drain was lifted: status %d from %q, Set-Cookie %q; want B, no new cookie",
				i, r.Status, r.Backend, raw)
		}
	}
}
