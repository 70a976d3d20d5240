package e2e

// Expect: 100-continue through the balancer.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/testbackend"
)

// TestProtocolExpectContinue: the client sends headers with Expect:
// 100-continue and waits; the balancer passes the expectation on and sends
// 100 Continue only once the backend has; then the body reaches the backend.
func TestProtocolExpectContinue(t *testing.T) {
	t.Parallel()
	payload := randomBytes(t, 256<<10)
	arrived := make(chan string, 1) // the Expect header the backend received
	proceed := make(chan struct{})
	ctx := t.Context()
	be := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		select {
		case arrived <- req.Header.Get("Expect"):
		case <-ctx.Done():
			return
		}
		select {
		case <-proceed:
		case <-ctx.Done():
			return
		}
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		reply := fmt.Sprintf("%d %s", len(body), sum(body))
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(reply), reply)
	})
	lb := startProtoBalancer(t, "", be.Addr)

	c, br := dialBalancer(t, lb.Addr, 15*time.Second)
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(payload))

	select {
	case expect := <-arrived:
		if !strings.EqualFold(expect, "100-continue") {
			t.Fatalf("backend got Expect %q, want 100-continue", expect)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request head never reached the backend")
	}
	// The backend has not agreed yet: the client must not have a 100 (nor
	// anything else). Absence can only be checked over a window; it is
	// kept well below the balancer's 1 s expect-continue timeout.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if b, err := br.Peek(1); err == nil || !isTimeout(err) {
		t.Fatalf("client got %q (err %v) before the backend sent 100 Continue", b, err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	close(proceed)

	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusContinue {
		t.Fatalf("first response %d, want 100 Continue", res.StatusCode)
	}
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	res, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %s", len(payload), sum(payload)); res.StatusCode != 200 || string(body) != want {
		t.Fatalf("status %d, backend says %q, want 200 %q", res.StatusCode, body, want)
	}
}

// TestProtocolExpectRejected: a backend answers a request with Expect:
// 100-continue directly with a final status, without reading the body. The
// client must get that status without a 100 Continue first (a 100 would
// make it upload a body the backend refused). The backend either closes
// the connection after its answer or keeps it open (RFC 9110 §10.1.1
// allows both); five requests each, since what the balancer does
// concurrently with relaying the answer may vary between runs.
func TestProtocolExpectRejected(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		extra  string
	}{
		{http.StatusExpectationFailed, ""},
		{http.StatusUnauthorized, "WWW-Authenticate: Basic realm=\"test\"\r\n"},
		{http.StatusExpectationFailed, "Connection: close\r\n"},
		{http.StatusUnauthorized, "WWW-Authenticate: Basic realm=\"test\"\r\nConnection: close\r\n"},
	} {
		name := fmt.Sprint(tc.status)
		if strings.Contains(tc.extra, "close") {
			name += " backend closes"
		} else {
			name += " backend keeps alive"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			be := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 %d %s\r\n%sContent-Length: 6\r\n\r\ndenied", tc.status, http.StatusText(tc.status), tc.extra)
				if strings.Contains(tc.extra, "close") {
					return
				}
				// Keep the connection until the balancer closes it; any body
				// it sends is read and dropped.
				io.Copy(io.Discard, br)
			})
			lb := startProtoBalancer(t, "", be.Addr)

			for i := range 5 {
				c, br := dialBalancer(t, lb.Addr, 10*time.Second)
				io.WriteString(c, "PUT /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
				res, err := http.ReadResponse(br, &http.Request{Method: http.MethodPut})
				if err != nil {
					t.Fatal(err)
				}
				if res.StatusCode != tc.status {
					t.Fatalf("request %d: first response %d, want %d directly (no 100 Continue: the backend refused the body)", i, res.StatusCode, tc.status)
				}
				body, err := io.ReadAll(res.Body)
				if err != nil || string(body) != "denied" {
					t.Fatalf("request %d: body %q err %v, want the backend's %q", i, body, err, "denied")
				}
				if tc.status == http.StatusUnauthorized && res.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("request %d: WWW-Authenticate lost: %v", i, res.Header)
				}
				c.Close()
			}
		})
	}
}
