package e2e

// Protocol upgrades (WebSocket) tunnelled through the balancer, and
// streams (server-sent events, chunked) flushed as they arrive.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/testbackend"
)

// TestProtocolWebSocketUpgrade: a raw backend answers an Upgrade request
// with 101, greets, then echoes. Bytes flow both ways through the balancer,
// and closing the client ends the backend's side of the tunnel.
func TestProtocolWebSocketUpgrade(t *testing.T) {
	t.Parallel()
	type seen struct {
		connection, upgrade, key string
	}
	heads := make(chan seen, 1)
	echoDone := make(chan int64, 1)
	be := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		select {
		case heads <- seen{req.Header.Get("Connection"), req.Header.Get("Upgrade"), req.Header.Get("Sec-WebSocket-Key")}:
		default:
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: test-accept\r\n\r\nhello from backend\n")
		n, _ := io.Copy(c, br) // echo until the tunnel closes
		select {
		case echoDone <- n:
		default:
		}
	})
	lb := startProtoBalancer(t, "", be.Addr)

	c, br := dialBalancer(t, lb.Addr, 20*time.Second)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: lb.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", res.StatusCode)
	}
	if !strings.EqualFold(res.Header.Get("Upgrade"), "websocket") || !headerHasTokenE2E(res.Header, "Connection", "upgrade") {
		t.Errorf("101 lacks Connection: Upgrade / Upgrade: websocket: %v", res.Header)
	}
	if res.Header.Get("Sec-WebSocket-Accept") != "test-accept" {
		t.Errorf("Sec-WebSocket-Accept lost: %v", res.Header)
	}
	h := <-heads
	if !strings.EqualFold(h.upgrade, "websocket") || !strings.Contains(strings.ToLower(h.connection), "upgrade") || h.key == "" {
		t.Errorf("backend got Connection %q Upgrade %q Key %q; want the upgrade request", h.connection, h.upgrade, h.key)
	}

	// Backend → client without the client sending anything first.
	line, err := br.ReadString('\n')
	if err != nil || line != "hello from backend\n" {
		t.Fatalf("greeting %q err %v", line, err)
	}
	// Client → backend → client, a small message and then 256 KiB written
	// while reading concurrently (the tunnel must not need either side to
	// stop to make progress).
	io.WriteString(c, "ping\n")
	if line, err = br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo %q err %v", line, err)
	}
	big := randomBytes(t, 256<<10)
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() { _, werr = c.Write(big) })
	got := make([]byte, len(big))
	_, rerr := io.ReadFull(br, got)
	wg.Wait()
	if werr != nil || rerr != nil {
		t.Fatalf("write err %v, read err %v", werr, rerr)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("256 KiB echoed through the tunnel differ")
	}

	// Closing the client ends the tunnel: the backend sees EOF.
	c.Close()
	select {
	case n := <-echoDone:
		if want := int64(len("ping\n") + len(big)); n != want {
			t.Errorf("backend echoed %d bytes, want %d", n, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend side of the tunnel still open 10s after the client closed")
	}
}

// headerHasTokenE2E reports whether the list header name of h contains
// token (case-insensitive).
func headerHasTokenE2E(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, e := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(e), token) {
				return true
			}
		}
	}
	return false
}

// TestProtocolStreamingFlushed: a backend sends event 1 and does not send
// event 2 until the test has received event 1 through the balancer. A
// balancer that buffers instead of flushing deadlocks this until the
// deadline. Server-sent events (with and without Content-Length) and a
// plain chunked stream.
func TestProtocolStreamingFlushed(t *testing.T) {
	t.Parallel()
	type stream struct {
		got1, got2 chan struct{}
	}
	var mu sync.Mutex
	streams := map[string]*stream{}
	streamFor := func(name string) *stream {
		mu.Lock()
		defer mu.Unlock()
		if streams[name] == nil {
			streams[name] = &stream{make(chan struct{}), make(chan struct{})}
		}
		return streams[name]
	}
	ev1, ev2 := "id: 1\ndata: one\n\n", "id: 2\ndata: two\n\n"
	be := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, _ recordedRequest) {
		s := streamFor(r.URL.Query().Get("name"))
		switch r.URL.Path {
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
		case "/sse-length":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(ev1)+len(ev2)))
		case "/chunked":
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		rc := http.NewResponseController(w)
		io.WriteString(w, ev1)
		rc.Flush()
		select {
		case <-s.got1:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, ev2)
		rc.Flush()
		select {
		case <-s.got2:
		case <-r.Context().Done():
		}
	})
	lb := startProtoBalancer(t, "", be.Addr)

	for _, path := range []string{"/sse", "/sse-length", "/chunked"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			s := streamFor(path)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, lb.URL(path+"?name="+path), nil)
			resp, err := client(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			r := bufio.NewReader(resp.Body)
			readEvent := func(n int) {
				t.Helper()
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						t.Fatalf("waiting for event %d: %v (a buffering balancer holds it back)", n, err)
					}
					if line == fmt.Sprintf("id: %d\n", n) {
						return
					}
				}
			}
			readEvent(1)
			close(s.got1)
			readEvent(2)
			close(s.got2)
			if rest, err := io.ReadAll(r); err != nil {
				t.Fatalf("end of stream: %v (rest %q)", err, rest)
			}
		})
	}
}
