//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestEvloopProxies checks that the spike does what its measurements
// assume: it forwards each request to the backends in turn, adds
// X-Forwarded-For, and carries the response back (short, longer than its
// buffer, chunked) on a kept-alive client connection, reusing its backend
// connections.
func TestEvloopProxies(t *testing.T) { checkEvloopProxies(t, 0) }

// TestEvloopSpin: with EVLOOP_SPIN's busy wait it proxies the same, and
// each request takes at least the wait.
func TestEvloopSpin(t *testing.T) { checkEvloopProxies(t, 20*time.Millisecond) }

// TestParseSpin: EVLOOP_SPIN takes a duration, none when empty, and
// refuses what is not one or is negative.
func TestParseSpin(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 0, "2.5us": 2500 * time.Nanosecond, "0": 0} {
		if got, err := parseSpin(v); got != want || err != nil {
			t.Errorf("parseSpin(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"-1us", "fast", "5"} {
		if _, err := parseSpin(v); err == nil {
			t.Errorf("parseSpin(%q): no error", v)
		}
	}
}

func checkEvloopProxies(t *testing.T, spin time.Duration) {
	var backends []netip.AddrPort
	var conns [2]atomic.Int32 // connections each backend accepted
	for i := range 2 {
		ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			prefix := fmt.Sprintf("backend %d path %s xff %s", i, r.URL.Path, r.Header.Get("X-Forwarded-For"))
			if r.URL.Path == "/large" { // a body many times the spike's buffer, framed by its length
				w.Header().Set("Content-Length", fmt.Sprint(len(prefix)+50000))
			}
			io.WriteString(w, prefix)
			switch r.URL.Path {
			case "/large":
				w.Write(bytes.Repeat([]byte("x"), 50000))
			case "/chunked": // no length: net/http frames it chunked
				for range 3 {
					w.(http.Flusher).Flush()
					w.Write(bytes.Repeat([]byte("y"), 3000))
				}
			}
		}))
		ts.Config.ConnState = func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns[i].Add(1)
			}
		}
		ts.Start()
		t.Cleanup(ts.Close)
		backends = append(backends, netip.MustParseAddrPort(strings.TrimPrefix(ts.URL, "http://")))
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	p, err := newProxy(ln.(*net.TCPListener), backends)
	if err != nil {
		t.Fatal(err)
	}
	p.spin = spin
	done := make(chan error)
	go func() { done <- p.serve() }()
	t.Cleanup(func() {
		p.close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	paths := []string{"/a", "/b", "/large", "/chunked", "/c", "/large", "/chunked", "/d"}
	for i, path := range paths {
		start := time.Now()
		res, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < spin {
			t.Errorf("request %d took %v, less than the busy wait of %v", i, took, spin)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("backend %d path %s xff 127.0.0.1", i%2, path)
		switch path {
		case "/large":
			want += strings.Repeat("x", 50000)
			if res.ContentLength != int64(len(want)) {
				t.Errorf("request %d: %s framed by %d, want Content-Length %d", i, path, res.ContentLength, len(want))
			}
		case "/chunked":
			want += strings.Repeat("y", 9000)
			if len(res.TransferEncoding) == 0 {
				t.Errorf("request %d: %s not chunked", i, path)
			}
		}
		if string(body) != want {
			t.Errorf("request %d: %d bytes %.60q, want %d bytes %.60q", i, len(body), body, len(want), want)
		}
	}
	for i := range conns {
		if n := conns[i].Load(); n != 1 {
			t.Errorf("backend %d: %d connections from evloop, want 1 (kept alive)", i, n)
		}
	}
}

// TestChunkScanner: the end of a chunked body is found however the body is
// cut into pieces, with extensions, whitespace before them, and trailers.
func TestChunkScanner(t *testing.T) {
	for _, body := range []string{
		"0\r\n\r\n",
		"5\r\nhello\r\n0\r\n\r\n",
		"5 ;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n",
		"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
		"1a\r\n" + strings.Repeat("z", 26) + "\r\n0\r\n\r\n",
	} {
		for cut := 0; cut <= len(body); cut++ {
			var s chunkScanner
			end := -1
			if i := s.end([]byte(body[:cut])); i >= 0 {
				end = i
			} else if i := s.end([]byte(body[cut:] + "NEXT")); i >= 0 {
				end = cut + i
			}
			if end != len(body) {
				t.Fatalf("%q cut at %d: end %d, want %d", body, cut, end, len(body))
			}
		}
	}
}
