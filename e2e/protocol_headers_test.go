package e2e

// Header handling: hop-by-hop headers removed in both directions, the
// forwarding headers (X-Forwarded-For/-Proto/-Host, Via), Host passed
// through.

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/testbackend"
)

// onlyRequest returns the backend's only request, failing unless there is
// exactly one.
func onlyRequest(t *testing.T, be *recordingBackend) recordedRequest {
	t.Helper()
	rs := be.Requests()
	if len(rs) != 1 {
		t.Fatalf("backend saw %d requests %v, want 1", len(rs), be.URIs())
	}
	return rs[0]
}

// TestProtocolRequestHopByHopHeaders sends hop-by-hop headers, including
// one named in Connection, and checks that none reaches the backend while
// end-to-end headers and Host do.
func TestProtocolRequestHopByHopHeaders(t *testing.T) {
	t.Parallel()
	be := newRecordingBackend(t, nil)
	lb := startProtoBalancer(t, "", be.Addr)

	res := exchangeOne(t, lb.Addr, "GET /hop?x=1 HTTP/1.1\r\n"+
		"Host: original.example:8080\r\n"+
		"Connection: close, X-Secret\r\n"+
		"X-Secret: s3cret\r\n"+
		"Keep-Alive: timeout=300\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"+
		"Upgrade: websocket\r\n"+ // without "Connection: upgrade": no upgrade, just a hop-by-hop field
		"TE: gzip\r\n"+
		"X-End-To-End: kept\r\n"+
		"Authorization: Bearer token\r\n"+
		"\r\n")
	if res.Status != http.StatusOK {
		t.Fatalf("status %d", res.Status)
	}
	r := onlyRequest(t, be)
	for _, name := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Upgrade", "Te"} {
		if v, ok := r.Header[name]; ok {
			t.Errorf("hop-by-hop %s: %q reached the backend", name, v)
		}
	}
	if c := strings.ToLower(strings.Join(r.Header["Connection"], ",")); strings.Contains(c, "x-secret") || strings.Contains(c, "upgrade") {
		t.Errorf("client's Connection header reached the backend: %q", c)
	}
	if r.Header.Get("X-End-To-End") != "kept" || r.Header.Get("Authorization") != "Bearer token" {
		t.Errorf("end-to-end headers lost: %v", r.Header)
	}
	if r.Host != "original.example:8080" {
		t.Errorf("backend saw Host %q, want the client's original.example:8080", r.Host)
	}
	if r.URI != "/hop?x=1" {
		t.Errorf("backend saw target %q, want /hop?x=1", r.URI)
	}

	// TE: trailers is the one TE value a proxy passes on; others go.
	res = exchangeOne(t, lb.Addr, "GET /te HTTP/1.1\r\nHost: lb.test\r\nTE: gzip, trailers\r\nConnection: TE, close\r\n\r\n")
	if res.Status != http.StatusOK {
		t.Fatalf("status %d", res.Status)
	}
	rs := be.Requests()
	if te := rs[len(rs)-1].Header.Values("Te"); len(te) > 0 && (len(te) != 1 || !strings.EqualFold(te[0], "trailers")) {
		t.Errorf("backend got TE %q, want nothing or exactly \"trailers\"", te)
	}
}

// TestProtocolResponseHopByHopHeaders: a backend's response carries
// hop-by-hop headers, one named in its Connection header; the client sees
// none of them, but does see the end-to-end ones and the balancer's Via.
func TestProtocolResponseHopByHopHeaders(t *testing.T) {
	t.Parallel()
	be := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\n"+
				"Content-Length: 2\r\n"+
				"Connection: X-Internal, keep-alive\r\n"+
				"X-Internal: 1\r\n"+
				"Keep-Alive: timeout=5, max=100\r\n"+
				"Proxy-Connection: keep-alive\r\n"+
				"Proxy-Authenticate: Basic realm=\"inner\"\r\n"+
				"Upgrade: h2c\r\n"+
				"X-End-To-End: kept\r\n"+
				"Cache-Control: no-store\r\n"+
				"\r\nok")
		}
	})
	lb := startProtoBalancer(t, "", be.Addr)

	resp, err := client(t).Get(lb.URL("/"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	for _, name := range []string{"X-Internal", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Upgrade"} {
		if v, ok := resp.Header[name]; ok {
			t.Errorf("backend's hop-by-hop %s: %q reached the client", name, v)
		}
	}
	if c := strings.ToLower(strings.Join(resp.Header["Connection"], ",")); strings.Contains(c, "x-internal") {
		t.Errorf("backend's Connection header reached the client: %q", c)
	}
	if resp.Header.Get("X-End-To-End") != "kept" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("end-to-end headers lost: %v", resp.Header)
	}
	if via := resp.Header.Get("Via"); !strings.Contains(via, "1.1 load_balancer") {
		t.Errorf("response Via %q, want it to contain %q", via, "1.1 load_balancer")
	}
}

// TestProtocolForwardingHeaders checks X-Forwarded-For/-Proto/-Host and Via
// for a client that is not a trusted proxy (its forwarding headers are
// replaced) and one that is (kept, and appended to).
func TestProtocolForwardingHeaders(t *testing.T) {
	t.Parallel()
	forged := "GET /fwd HTTP/1.1\r\n" +
		"Host: shop.example\r\n" +
		"X-Forwarded-For: 203.0.113.7\r\n" +
		"X-Forwarded-For: 198.51.100.2\r\n" +
		"X-Forwarded-Proto: https\r\n" +
		"X-Forwarded-Host: public.example\r\n" +
		"Via: 1.1 edge\r\n" +
		"Connection: close\r\n\r\n"
	// forward sends req through a balancer (with extra config) to a fresh
	// recording backend and returns the response, which must be a 200, and
	// what the backend received.
	forward := func(t *testing.T, extra, req string) (rawResponse, recordedRequest) {
		t.Helper()
		be := newRecordingBackend(t, nil)
		lb := startProtoBalancer(t, extra, be.Addr)
		res := exchangeOne(t, lb.Addr, req)
		if res.Status != 200 {
			t.Fatalf("status %d body %q", res.Status, res.Body)
		}
		return res, onlyRequest(t, be)
	}

	t.Run("untrusted client", func(t *testing.T) {
		t.Parallel()
		_, r := forward(t, "", forged)
		if got := r.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q, want just the real client [127.0.0.1]", got)
		}
		if got := r.Header.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != "http" {
			t.Errorf("X-Forwarded-Proto %q, want [http]", got)
		}
		if got := r.Header.Values("X-Forwarded-Host"); len(got) != 1 || got[0] != "shop.example" {
			t.Errorf("X-Forwarded-Host %q, want [shop.example] (the original Host)", got)
		}
		if r.Host != "shop.example" {
			t.Errorf("Host %q, want shop.example", r.Host)
		}
		via := strings.Join(r.Header.Values("Via"), ", ")
		if !strings.Contains(via, "1.1 load_balancer") {
			t.Errorf("Via %q, want it to contain %q", via, "1.1 load_balancer")
		}
	})

	t.Run("trusted proxy", func(t *testing.T) {
		t.Parallel()
		_, r := forward(t, "trusted_proxies: [\"127.0.0.1\"]\n", forged)
		xff := strings.Join(r.Header.Values("X-Forwarded-For"), ", ")
		if xff != "203.0.113.7, 198.51.100.2, 127.0.0.1" {
			t.Errorf("X-Forwarded-For %q, want %q", xff, "203.0.113.7, 198.51.100.2, 127.0.0.1")
		}
		if got := r.Header.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("X-Forwarded-Proto %q, want the proxy's https", got)
		}
		if got := r.Header.Get("X-Forwarded-Host"); got != "public.example" {
			t.Errorf("X-Forwarded-Host %q, want the proxy's public.example", got)
		}
		via := strings.Join(r.Header.Values("Via"), ", ")
		if !strings.HasPrefix(via, "1.1 edge") || !strings.HasSuffix(via, "1.1 load_balancer") {
			t.Errorf("Via %q, want %q followed by %q", via, "1.1 edge", "1.1 load_balancer")
		}
	})

	t.Run("HTTP/1.0 client", func(t *testing.T) {
		t.Parallel()
		res, r := forward(t, "", "GET /old HTTP/1.0\r\nHost: old.example\r\n\r\n")
		if res.Body != "ok /old" {
			t.Fatalf("body %q, want %q", res.Body, "ok /old")
		}
		if via := r.Header.Get("Via"); !strings.Contains(via, "1.0 load_balancer") {
			t.Errorf("Via %q for an HTTP/1.0 request, want %q", via, "1.0 load_balancer")
		}
		if r.Host != "old.example" {
			t.Errorf("Host %q, want old.example", r.Host)
		}
	})
}

// TestProtocolAbsoluteFormTarget: a request in absolute form reaches the
// backend in origin form, with the target's authority as Host (RFC 9112
// §3.2.2: it wins over a Host header).
func TestProtocolAbsoluteFormTarget(t *testing.T) {
	t.Parallel()
	heads := make(chan string, 4)
	be := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			h, err := readHead(br)
			if err != nil {
				return
			}
			select {
			case heads <- h:
			default:
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	lb := startProtoBalancer(t, "", be.Addr)

	for _, tc := range []struct{ name, host string }{
		{"matching Host", "example.com"},
		{"different Host", "other.example"},
	} {
		res := exchangeOne(t, lb.Addr, "GET http://example.com/path?q HTTP/1.1\r\nHost: "+tc.host+"\r\nConnection: close\r\n\r\n")
		if res.Status != 200 {
			t.Fatalf("%s: status %d", tc.name, res.Status)
		}
		var h string
		select {
		case h = <-heads:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no request at the backend", tc.name)
		}
		line, _, _ := strings.Cut(h, "\r\n")
		if line != "GET /path?q HTTP/1.1" {
			t.Errorf("%s: backend got request line %q, want %q", tc.name, line, "GET /path?q HTTP/1.1")
		}
		hosts := 0
		for _, l := range strings.Split(h, "\r\n") {
			if name, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(name, "Host") {
				hosts++
				if strings.TrimSpace(v) != "example.com" {
					t.Errorf("%s: backend got Host %q, want example.com", tc.name, strings.TrimSpace(v))
				}
			}
		}
		if hosts != 1 {
			t.Errorf("%s: backend got %d Host headers:\n%s", tc.name, hosts, h)
		}
	}
}
