package balancer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/upstream"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// requestWithCookie returns a GET request carrying the given Cookie header
// fields.
func requestWithCookie(lines ...string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, "http://lb.example/", nil)
	for _, l := range lines {
		req.Header.Add("Cookie", l)
	}
	return req
}

func TestStickyValue(t *testing.T) {
	pool, bs := newPool(1, 1)
	s := NewStickyCookies(pool, "ZZZ_BACKEND_ID", testSecret, 0)
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte("http://127.0.0.1:9001"))
	if want := hex.EncodeToString(mac.Sum(nil)[:16]); s.Value(bs[0]) != want {
		t.Errorf("Value = %q, want truncated HMAC %q", s.Value(bs[0]), want)
	}
	if s.Value(bs[0]) == s.Value(bs[1]) {
		t.Error("two backends share a value")
	}
	other := upstream.NewBackend(upstream.Address{Scheme: "https", Host: "10.0.0.9", Port: 443}, nil)
	if v := s.Value(other); len(v) != 32 || v == s.Value(bs[0]) {
		t.Errorf("Value of a non-member = %q", v)
	}
}

// TestStickyStableAcrossReorder checks that values follow the address, not
// the position: reordering and adding backends moves no session.
func TestStickyStableAcrossReorder(t *testing.T) {
	pool, bs := newPool(1, 1, 1)
	before := NewStickyCookies(pool, "sid", testSecret, 0)

	newcomer := upstream.NewBackend(upstream.Address{Scheme: "http", Host: "127.0.0.1", Port: 8000}, nil)
	reordered := &upstream.Pool{Members: []upstream.Member{
		{Backend: newcomer, Weight: 1},
		{Backend: bs[2], Weight: 3},
		{Backend: bs[0], Weight: 1},
		{Backend: bs[1], Weight: 2},
	}}
	after := NewStickyCookies(reordered, "sid", testSecret, 0)
	for _, b := range bs {
		if before.Value(b) != after.Value(b) {
			t.Errorf("%v: value changed from %q to %q", b, before.Value(b), after.Value(b))
		}
		if got := after.Lookup(requestWithCookie("sid=" + before.Value(b))); got != b {
			t.Errorf("old cookie for %v now looks up %v", b, got)
		}
	}
}

// TestStickyInstancesAgree checks that two balancers with the same secret
// (and separately built Backend objects for the same addresses) map values
// the same way, and that another secret gives other values.
func TestStickyInstancesAgree(t *testing.T) {
	poolA, bsA := newPool(1, 1, 1)
	poolB, bsB := newPool(1, 1, 1)
	a := NewStickyCookies(poolA, "sid", testSecret, 0)
	b := NewStickyCookies(poolB, "sid", testSecret, time.Hour)
	c := NewStickyCookies(poolA, "sid", []byte("another secret"), 0)
	for i := range bsA {
		if a.Value(bsA[i]) != b.Value(bsB[i]) {
			t.Errorf("instances disagree on %v: %q vs %q", bsA[i], a.Value(bsA[i]), b.Value(bsB[i]))
		}
		if got := b.Lookup(requestWithCookie("sid=" + a.Value(bsA[i]))); got != bsB[i] {
			t.Errorf("instance B looks up A's cookie for %v as %v", bsA[i], got)
		}
		if a.Value(bsA[i]) == c.Value(bsA[i]) {
			t.Errorf("different secrets give the same value for %v", bsA[i])
		}
		if got := c.Lookup(requestWithCookie("sid=" + a.Value(bsA[i]))); got != nil {
			t.Errorf("a value made with another secret looks up %v", got)
		}
	}
}

func TestStickyLookup(t *testing.T) {
	pool, bs := newPool(1, 1, 0)
	s := NewStickyCookies(pool, "sid", testSecret, 0)
	v0, v1 := s.Value(bs[0]), s.Value(bs[1])
	outsider := upstream.NewBackend(upstream.Address{Scheme: "http", Host: "10.1.1.1", Port: 80}, nil)
	for _, tc := range []struct {
		name  string
		lines []string
		want  *upstream.Backend
	}{
		{"no cookie", nil, nil},
		{"plain", []string{"sid=" + v1}, bs[1]},
		{"among others", []string{"a=1; sid=" + v0 + "; b=2"}, bs[0]},
		{"spaces and tab", []string{"a=1;  \tsid=" + v1 + " ;b=2"}, bs[1]},
		{"quoted", []string{`sid="` + v0 + `"`}, bs[0]},
		{"second header field", []string{"a=1", "sid=" + v1}, bs[1]},
		{"first known value wins", []string{"sid=stale; sid=" + v1 + "; sid=" + v0}, bs[1]},
		{"other cookie name", []string{"SID=" + v0 + "; sid2=" + v0}, nil},
		{"forged", []string{"sid=" + strings.Repeat("0", 32)}, nil},
		{"truncated", []string{"sid=" + v0[:31]}, nil},
		{"upper case", []string{"sid=" + strings.ToUpper(v0)}, nil},
		{"position instead of value", []string{"sid=0"}, nil},
		{"empty", []string{"sid="}, nil},
		{"weight-0 member", []string{"sid=" + s.Value(bs[2])}, nil},
		{"not a member", []string{"sid=" + s.Value(outsider)}, nil},
	} {
		if got := s.Lookup(requestWithCookie(tc.lines...)); got != tc.want {
			t.Errorf("%s: Lookup(%q) = %v, want %v", tc.name, tc.lines, got, tc.want)
		}
	}
	if got := s.Lookup(nil); got != nil {
		t.Errorf("Lookup(nil) = %v", got)
	}
	if got := NewStickyCookies(nil, "sid", testSecret, 0).Lookup(requestWithCookie("sid=" + v0)); got != nil {
		t.Errorf("Lookup over a nil pool = %v", got)
	}
}

func TestStickyCookieAttributes(t *testing.T) {
	pool, bs := newPool(1, 1)
	for _, tc := range []struct {
		maxAge     time.Duration
		secure     bool
		wantMaxAge int
	}{
		{0, false, 0},
		{0, true, 0},
		{time.Hour, false, 3600},
		{time.Hour, true, 3600},
		{1500 * time.Millisecond, false, 2}, // rounded up, never 0 (which deletes)
		{-time.Second, false, 0},
	} {
		s := NewStickyCookies(pool, "ZZZ_BACKEND_ID", testSecret, tc.maxAge)
		header := s.Cookie(bs[1], tc.secure)
		c, err := http.ParseSetCookie(header)
		if err != nil {
			t.Fatalf("Cookie = %q: %v", header, err)
		}
		if c.Name != "ZZZ_BACKEND_ID" || c.Value != s.Value(bs[1]) || c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("Cookie = %q, parsed %+v", header, c)
		}
		if c.Secure != tc.secure {
			t.Errorf("Cookie(secure=%v) = %q", tc.secure, header)
		}
		if c.MaxAge != tc.wantMaxAge || strings.Contains(header, "Max-Age") != (tc.wantMaxAge > 0) {
			t.Errorf("maxAge %v: Cookie = %q, want Max-Age %d", tc.maxAge, header, tc.wantMaxAge)
		}
		if c.Domain != "" || !c.Expires.IsZero() {
			t.Errorf("Cookie = %q sets Domain or Expires", header)
		}
		// Round trip: what the browser sends back finds the backend.
		req := requestWithCookie()
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		if got := s.Lookup(req); got != bs[1] {
			t.Errorf("round trip of %q looked up %v", header, got)
		}
	}
	s := NewStickyCookies(pool, "sid", testSecret, 0)
	if got, want := s.Cookie(bs[0], true), "sid="+s.Value(bs[0])+"; Path=/; HttpOnly; SameSite=Lax; Secure"; got != want {
		t.Errorf("Cookie = %q, want %q", got, want)
	}
}

func TestDeriveSecret(t *testing.T) {
	if string(DeriveSecret("a")) != string(DeriveSecret("a")) {
		t.Error("DeriveSecret is not deterministic")
	}
	if string(DeriveSecret("a")) == string(DeriveSecret("b")) {
		t.Error("DeriveSecret ignores the cookie name")
	}
	pool, bs := newPool(1)
	implicit := NewStickyCookies(pool, "sid", nil, 0)
	explicit := NewStickyCookies(pool, "sid", DeriveSecret("sid"), 0)
	if implicit.Value(bs[0]) != explicit.Value(bs[0]) {
		t.Error("an empty secret does not default to DeriveSecret(cookieName)")
	}
}

func TestStickyZeroAllocs(t *testing.T) {
	pool, bs := newPool(1, 1, 1, 1)
	s := NewStickyCookies(pool, "sid", testSecret, time.Hour)
	req := requestWithCookie("_ga=GA1.2.3; theme=dark; sid=" + s.Value(bs[2]) + "; lang=en")
	if n := testing.AllocsPerRun(100, func() {
		if s.Lookup(req) != bs[2] {
			t.Fatal("lookup failed")
		}
	}); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = s.Cookie(bs[1], true) }); n != 0 {
		t.Errorf("Cookie allocates %v times", n)
	}
}

func TestStickySecretCopied(t *testing.T) {
	pool, bs := newPool(1)
	secret := []byte("mutable secret")
	s := NewStickyCookies(pool, "sid", secret, 0)
	v := s.Value(bs[0])
	secret[0] = 'X'
	outsider := upstream.NewBackend(upstream.Address{Scheme: "http", Host: "127.0.0.1", Port: 9001}, nil)
	if s.Value(outsider) != v {
		t.Error("changing the caller's secret slice changed the values")
	}
}
