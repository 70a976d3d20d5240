package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const defaultCookie = "ZZZ_BACKEND_ID"

// stickyValues sends cookieless requests to lb until every one of the
// named backends was seen, and returns the cookie value set for each.
func stickyValues(t *testing.T, lb *balancer, cookie string, names ...string) map[string]string {
	t.Helper()
	c := client(t)
	values := map[string]string{}
	for i := 0; len(values) < len(names); i++ {
		if i >= 10*len(names) {
			t.Fatalf("after %d cookieless requests only backends %v were seen, want %v", i, values, names)
		}
		r := get(t, c, lb.URL("/pin"))
		if r.Status != http.StatusOK {
			t.Fatalf("status %d: %q", r.Status, r.Body)
		}
		raw, v := cookieFrom(r.Header, cookie)
		if v == "" {
			t.Fatalf("response from %s to a request without cookie sets no %s cookie; Set-Cookie: %q", r.Backend, cookie, r.Header.Values("Set-Cookie"))
		}
		if old, ok := values[r.Backend]; ok && old != v {
			t.Fatalf("backend %s got two cookie values %q and %q (%s)", r.Backend, old, v, raw)
		}
		values[r.Backend] = v
	}
	return values
}

// TestStickyCookieAttributes: the first response sets ZZZ_BACKEND_ID with
// Path=/, HttpOnly, SameSite=Lax, no Secure over plain HTTP and no Max-Age
// by default, next to the backend's own cookie; the value is opaque.
func TestStickyCookieAttributes(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "a"), newTestBackend(t, "b"), newTestBackend(t, "c")
	lb := startBalancer(t, lbConfig("sticky", "", backendsOf(a, b, c)...))

	r := get(t, client(t), lb.URL("/set-app-cookie"))
	if r.Status != http.StatusOK {
		t.Fatalf("status %d", r.Status)
	}
	raw, value := cookieFrom(r.Header, defaultCookie)
	if raw == "" {
		t.Fatalf("no %s cookie in the first response; Set-Cookie: %q", defaultCookie, r.Header.Values("Set-Cookie"))
	}
	ck, err := http.ParseSetCookie(raw)
	if err != nil {
		t.Fatalf("Set-Cookie %q does not parse: %v", raw, err)
	}
	if ck.Path != "/" {
		t.Errorf("Set-Cookie %q: Path = %q, want /", raw, ck.Path)
	}
	if !ck.HttpOnly {
		t.Errorf("Set-Cookie %q lacks HttpOnly", raw)
	}
	if ck.SameSite != http.SameSiteLaxMode {
		t.Errorf("Set-Cookie %q: SameSite is not Lax", raw)
	}
	if ck.Secure {
		t.Errorf("Set-Cookie %q has Secure over plain HTTP (the browser would never send it back)", raw)
	}
	if ck.MaxAge != 0 || !ck.Expires.IsZero() {
		t.Errorf("Set-Cookie %q is persistent without sticky.max_age", raw)
	}
	if ck.Domain != "" {
		t.Errorf("Set-Cookie %q sets a Domain", raw)
	}
	// Opaque: no position, no address.
	if !regexp.MustCompile(`^[0-9A-Za-z_-]{16,}$`).MatchString(value) {
		t.Errorf("cookie value %q is not an opaque token of at least 16 characters", value)
	}
	for _, be := range []*testBackend{a, b, c} {
		_, port, _ := strings.Cut(be.addr, ":")
		if strings.Contains(value, port) || strings.Contains(value, "127.0.0.1") {
			t.Errorf("cookie value %q reveals a backend address (%s)", value, be.addr)
		}
	}
	// The backend's own cookie is passed on too.
	if _, v := cookieFrom(r.Header, "app_session"); v != "from-backend" {
		t.Errorf("the backend's own Set-Cookie was lost; Set-Cookie: %q", r.Header.Values("Set-Cookie"))
	}
}

// TestStickyCookieNameAndMaxAge: --cookie-name names the cookie and
// sticky.max_age makes it persistent.
func TestStickyCookieNameAndMaxAge(t *testing.T) {
	t.Parallel()
	a, b := newTestBackend(t, "a"), newTestBackend(t, "b")
	lb := startBalancer(t, lbConfig("sticky", "sticky:\n  max_age: 1h\n", backendsOf(a, b)...), "--cookie-name", "E2E_PIN")

	r := get(t, client(t), lb.URL("/"))
	if _, v := cookieFrom(r.Header, defaultCookie); v != "" {
		t.Errorf("with --cookie-name E2E_PIN the response still sets %s", defaultCookie)
	}
	raw, v := cookieFrom(r.Header, "E2E_PIN")
	if v == "" {
		t.Fatalf("no E2E_PIN cookie; Set-Cookie: %q", r.Header.Values("Set-Cookie"))
	}
	ck, err := http.ParseSetCookie(raw)
	if err != nil {
		t.Fatalf("Set-Cookie %q does not parse: %v", raw, err)
	}
	if ck.MaxAge != 3600 {
		t.Errorf("Set-Cookie %q: Max-Age = %d, want 3600 (sticky.max_age: 1h)", raw, ck.MaxAge)
	}
	if ck.Path != "/" || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure {
		t.Errorf("Set-Cookie %q: want Path=/; HttpOnly; SameSite=Lax and no Secure", raw)
	}

	// The custom name pins.
	pinned := r.Backend
	cl := client(t)
	for i := range 20 {
		if got := get(t, cl, lb.URL("/again"), "Cookie: E2E_PIN="+v).Backend; got != pinned {
			t.Fatalf("request %d with E2E_PIN=%s went to %s, want %s", i, v, got, pinned)
		}
	}
}

// TestStickyPinning: clients without a cookie are spread by the fallback
// (round robin), and every request with a cookie goes to its backend, also
// when many clients run at once.
func TestStickyPinning(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "a"), newTestBackend(t, "b"), newTestBackend(t, "c")
	lb := startBalancer(t, lbConfig("sticky", "", backendsOf(a, b, c)...))

	// Round robin fallback: three cookieless requests, three backends.
	cl := client(t)
	var first []string
	for range 3 {
		first = append(first, get(t, cl, lb.URL("/")).Backend)
	}
	if slices.Sort(first); first[0] == first[1] || first[1] == first[2] {
		t.Errorf("three cookieless requests went to %v, want a, b and c (round-robin fallback)", first)
	}

	values := stickyValues(t, lb, defaultCookie, "a", "b", "c")
	if values["a"] == values["b"] || values["b"] == values["c"] || values["a"] == values["c"] {
		t.Fatalf("backends share cookie values: %v", values)
	}
	errs := make(chan string, 3*100)
	done := make(chan struct{})
	for name, v := range values {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				r, err := tryGet(cl, lb.URL("/pinned"), "Cookie: other=1; "+defaultCookie+"="+v)
				switch {
				case err != nil:
					errs <- err.Error()
					return
				case r.Backend != name:
					errs <- fmt.Sprintf("request %d pinned to %s went to %s", i, name, r.Backend)
					return
				}
				if _, nv := cookieFrom(r.Header, defaultCookie); nv != "" && nv != v {
					errs <- "a pinned request to " + name + " was re-pinned to value " + nv
					return
				}
			}
		}()
	}
	for range values {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestStickyForgedCookie: an unknown or forged value gets a 200 from a
// fallback pick and a fresh valid cookie naming the backend that served.
func TestStickyForgedCookie(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "a"), newTestBackend(t, "b"), newTestBackend(t, "c")
	lb := startBalancer(t, lbConfig("sticky", "", backendsOf(a, b, c)...))
	values := stickyValues(t, lb, defaultCookie, "a", "b", "c")
	byValue := map[string]string{}
	for name, v := range values {
		byValue[v] = name
	}

	cl := client(t)
	for _, forged := range []string{
		"forged",
		strings.Repeat("0", len(values["a"])),
		strings.ToUpper(values["a"]),
		values["a"] + "00",
		"0", "1", "2", // list positions
		a.addr, "http://" + b.addr, // addresses
		"",
	} {
		r := get(t, cl, lb.URL("/forged"), "Cookie: "+defaultCookie+"="+forged)
		if r.Status != http.StatusOK {
			t.Errorf("cookie %q: status %d", forged, r.Status)
			continue
		}
		_, nv := cookieFrom(r.Header, defaultCookie)
		if nv == "" {
			t.Errorf("cookie %q (served by %s): no fresh cookie set", forged, r.Backend)
			continue
		}
		if byValue[nv] != r.Backend {
			t.Errorf("cookie %q: served by %s but the fresh cookie %q names %q", forged, r.Backend, nv, byValue[nv])
		}
	}
}

// TestStickyValueStable: the value names the backend by a keyed hash of its
// address: reordering or adding backends changes nothing, instances with
// the same secret (or both without one) agree and accept each other's
// cookies, and another secret gives other values.
func TestStickyValueStable(t *testing.T) {
	t.Parallel()
	a, b, c, d := newTestBackend(t, "a"), newTestBackend(t, "b"), newTestBackend(t, "c"), newTestBackend(t, "d")
	secret := "sticky:\n  secret: \"e2e shared secret\"\n"
	lb1 := startBalancer(t, lbConfig("sticky", secret, backendsOf(a, b, c)...))
	lb2 := startBalancer(t, lbConfig("sticky", secret, backendsOf(d, c, a, b)...))
	lb3 := startBalancer(t, lbConfig("sticky", "", backendsOf(a, b, c)...))
	lb4 := startBalancer(t, lbConfig("sticky", "", backendsOf(c, b, d, a)...))

	v1 := stickyValues(t, lb1, defaultCookie, "a", "b", "c")
	v2 := stickyValues(t, lb2, defaultCookie, "a", "b", "c", "d")
	v3 := stickyValues(t, lb3, defaultCookie, "a", "b", "c")
	v4 := stickyValues(t, lb4, defaultCookie, "a", "b", "c", "d")
	for _, n := range []string{"a", "b", "c"} {
		if v1[n] != v2[n] {
			t.Errorf("backend %s: value %q with order a,b,c but %q with order d,c,a,b (same secret)", n, v1[n], v2[n])
		}
		if v3[n] != v4[n] {
			t.Errorf("backend %s: value %q with order a,b,c but %q with order c,b,d,a (no secret)", n, v3[n], v4[n])
		}
		if v1[n] == v3[n] {
			t.Errorf("backend %s: the same value %q with and without a configured secret", n, v1[n])
		}
	}

	// A cookie from one instance pins on the other.
	cl := client(t)
	for _, n := range []string{"a", "b", "c"} {
		for i := range 5 {
			if got := get(t, cl, lb2.URL("/cross"), "Cookie: "+defaultCookie+"="+v1[n]).Backend; got != n {
				t.Errorf("lb2, request %d with lb1's cookie for %s went to %s", i, n, got)
			}
		}
	}
}

// TestStickyPinnedBackendDown: when the pinned backend dies, requests with
// its cookie still succeed on another backend, the response re-pins the
// client there, and the new pin holds.
func TestStickyPinnedBackendDown(t *testing.T) {
	t.Parallel()
	procs, backends := startDemoBackends(t, "B1", "B2", "B3")
	lb := startBalancer(t, lbConfig("sticky", "", backends...))
	cl := client(t)

	r := get(t, cl, lb.URL("/"))
	_, v := cookieFrom(r.Header, defaultCookie)
	pinned := r.Backend
	if v == "" || procs[pinned] == nil {
		t.Fatalf("first response: backend %q, Set-Cookie %q", pinned, r.Header.Values("Set-Cookie"))
	}
	for range 5 {
		if got := get(t, cl, lb.URL("/"), "Cookie: "+defaultCookie+"="+v).Backend; got != pinned {
			t.Fatalf("pinned to %s, request went to %s", pinned, got)
		}
	}

	kill(t, procs[pinned])

	r = get(t, cl, lb.URL("/after-kill"), "Cookie: "+defaultCookie+"="+v)
	if r.Status != http.StatusOK {
		t.Fatalf("with the pinned backend %s dead: status %d, body %q (want 200 from another backend)", pinned, r.Status, r.Body)
	}
	if r.Backend == pinned || r.Backend == "" {
		t.Fatalf("with %s dead the response came from %q", pinned, r.Backend)
	}
	_, nv := cookieFrom(r.Header, defaultCookie)
	if nv == "" || nv == v {
		t.Errorf("the first response after %s died was served by %s but does not re-pin: Set-Cookie %q (old value %s)",
			pinned, r.Backend, r.Header.Values("Set-Cookie"), v)
		// Keep going with the cookie a later response sets, to check
		// that a re-pin happens at all and then holds.
		for i := 0; nv == "" || nv == v; i++ {
			if i == 200 {
				t.Fatalf("200 requests with the dead backend's cookie got no new cookie")
			}
			r = get(t, cl, lb.URL("/after-kill"), "Cookie: "+defaultCookie+"="+v)
			_, nv = cookieFrom(r.Header, defaultCookie)
		}
		t.Logf("re-pinned to %s only after more requests", r.Backend)
	}
	repinned := r.Backend
	for i := range 20 {
		r := get(t, cl, lb.URL("/repinned"), "Cookie: "+defaultCookie+"="+nv)
		if r.Status != http.StatusOK || r.Backend != repinned {
			t.Fatalf("request %d with the new cookie: status %d from %s, want 200 from %s", i, r.Status, r.Backend, repinned)
		}
	}
}

// TestStickyCookieNamedInConnection: a request whose Connection field names
// Cookie (so the cookie is not sent on to the backend) is still pinned by
// it. With 6 fields or more the proxy builds the backend's header in the
// client's own (under the balancer's HTTP/1 server): the cookie must be
// read before it is taken out.
func TestStickyCookieNamedInConnection(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "a"), newTestBackend(t, "b"), newTestBackend(t, "c")
	lb := startBalancer(t, lbConfig("sticky", "", backendsOf(a, b, c)...))
	values := stickyValues(t, lb, defaultCookie, "a", "b", "c")
	cl := client(t)
	for name, v := range values {
		for i := range 3 {
			r, err := tryGet(cl, lb.URL("/pinned"), "Connection: keep-alive, Cookie", "Cookie: "+defaultCookie+"="+v,
				"User-Agent: e2e", "Accept: */*", "Accept-Language: en", "X-A: 1", "X-B: 2")
			if err != nil {
				t.Fatal(err)
			}
			if r.Backend != name {
				t.Errorf("request %d pinned to %s by a cookie its Connection field names went to %s", i, name, r.Backend)
			}
		}
	}
}
