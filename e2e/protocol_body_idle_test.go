package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestProtocolStalledRequestBody: a client that stops sending in the middle
// of its request body is cut off after timeouts.client_body_idle, so it
// cannot hold a backend connection for as long as it likes: the backend
// sees its request body end in an error, and the client gets an answer or
// a closed connection. A slow client that keeps sending within the bound
// is served.
func TestProtocolStalledRequestBody(t *testing.T) {
	t.Parallel()
	bodyErr := make(chan error, 4)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			bodyErr <- err
			return
		}
		io.WriteString(w, "got "+string(b))
	}))
	t.Cleanup(backend.Close)
	lb := startProtoBalancer(t, "timeouts:\n  client_body_idle: 300ms\n", strings.TrimPrefix(backend.URL, "http://"))

	t.Run("stalled mid-body, small body", func(t *testing.T) {
		// Small bodies travel with the request head, so the backend never
		// sees this request: the client alone gets its 400.
		reply := stalledUpload(t, lb.Addr, 10)
		if !strings.HasPrefix(reply, "HTTP/1.1 400 ") {
			t.Fatalf("client got %q, want 400", head(reply))
		}
	})
	t.Run("stalled mid-body, streamed body", func(t *testing.T) {
		// A large body is streamed: the backend has the head and waits; the
		// stall must end its wait too, freeing the backend connection.
		reply := stalledUpload(t, lb.Addr, 100000)
		select {
		case err := <-bodyErr:
			t.Logf("backend saw the body end with: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("the backend still waits for the stalled body")
		}
		if reply != "" && !strings.HasPrefix(reply, "HTTP/1.1 400 ") {
			t.Fatalf("client got %q, want a 400 or a closed connection", head(reply))
		}
	})
	t.Run("slow but steady", func(t *testing.T) {
		c, err := net.Dial("tcp", lb.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 4\r\nConnection: close\r\n\r\n")
		for _, part := range []string{"a", "b", "c", "d"} {
			time.Sleep(100 * time.Millisecond) // a client pacing its upload, under the bound
			io.WriteString(c, part)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		reply, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(reply), "HTTP/1.1 200 ") || !strings.HasSuffix(string(reply), "got abcd") {
			t.Fatalf("client got %q, want 200 got abcd", head(string(reply)))
		}
	})
}

// stalledUpload announces a body of length bytes, sends 3 of them, stops,
// and returns what the balancer answers within 10 s (a stalled client must
// get its answer, or a closed connection, long before that).
func stalledUpload(t *testing.T, addr string, length int) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: %d\r\n\r\nabc", length)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("no answer and no close 10 s after the client stalled (client_body_idle is 300ms); got %q", head(string(reply)))
	}
	return string(reply)
}
