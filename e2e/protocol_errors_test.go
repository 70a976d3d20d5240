package e2e

// Backend failures: malformed responses, deaths mid-body, refused
// connections and retries, timeouts, clients that go away.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/testbackend"
)

// TestProtocolMalformedBackendResponse: a backend that answers something
// that is not a valid HTTP response head gets the client a short, clean
// 502.
func TestProtocolMalformedBackendResponse(t *testing.T) {
	t.Parallel()
	replies := map[string]string{
		"/letters-status":    "HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
		"/four-digit-status": "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
		"/bad-version":       "FOO/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"/garbage":           "this is not http\r\n\r\n",
		"/conflicting-cl":    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
		"/invalid-cl":        "HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\nok",
		"/huge-header":       "HTTP/1.1 200 OK\r\nX-Huge: " + strings.Repeat("x", 200<<10) + "\r\nContent-Length: 2\r\n\r\nok",
	}
	be := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.WriteString(c, replies[req.URL.Path])
		// Hold the connection open until the balancer gives up on it, so
		// that the reply, not a close, is what it judges.
		io.Copy(io.Discard, br)
	})
	lb := startProtoBalancer(t, "", be.Addr)
	c := client(t)
	for path := range replies {
		t.Run(path, func(t *testing.T) {
			r := get(t, c, lb.URL(path))
			if r.Status != http.StatusBadGateway {
				t.Fatalf("status %d body %q, want 502", r.Status, r.Body)
			}
			assertCleanError(t, r.Header, r.Body, be.Addr)
		})
	}
}

// TestProtocolBackendDiesMidBody: the backend closes (or resets) the
// connection in the middle of a body. The client must see the response as
// truncated (an error reading the body), never as a complete short one.
func TestProtocolBackendDiesMidBody(t *testing.T) {
	t.Parallel()
	part := randomBytes(t, 100<<10)
	be := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		switch strings.TrimPrefix(req.URL.Path, "/reset") {
		case "/length":
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", mib)
			c.Write(part)
		case "/chunked":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			c.Write(chunked(part, 16<<10))
		}
		if strings.HasPrefix(req.URL.Path, "/reset") {
			resetConn(c)
		}
	})
	lb := startProtoBalancer(t, "", be.Addr)

	for _, path := range []string{"/length", "/chunked", "/reset/length", "/reset/chunked"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			resp, err := client(t).Get(lb.URL(path))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil {
				t.Fatalf("client read %d bytes and a clean end of body; want a visibly truncated response", n)
			}
			if strings.HasSuffix(path, "/length") && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error %v, want io.ErrUnexpectedEOF", err)
			}
			if n > int64(len(part)) {
				t.Errorf("client read %d bytes, more than the %d the backend sent", n, len(part))
			}
		})
	}

	// The same as raw bytes: the chunked reply must not carry the final
	// chunk that would make it look complete.
	t.Run("raw chunked", func(t *testing.T) {
		t.Parallel()
		raw := rawExchange(t, lb.Addr, "GET /chunked HTTP/1.1\r\nHost: lb.test\r\n\r\n", 10*time.Second)
		if !strings.HasPrefix(raw, "HTTP/1.1 200") {
			t.Fatalf("reply %q", head(raw))
		}
		if strings.HasSuffix(raw, "\r\n0\r\n\r\n") {
			t.Fatal("truncated chunked response ends with the final chunk: it looks complete")
		}
	})
}

// TestProtocolRetryOnConnectionRefused: the first backend refuses
// connections, so requests that find it first are retried on the other;
// every request succeeds and the live backend counts them all, POST bodies
// intact.
func TestProtocolRetryOnConnectionRefused(t *testing.T) {
	t.Parallel()
	live := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, rec recordedRequest) {
		fmt.Fprintf(w, "%s %s", r.RequestURI, rec.Body)
	})
	dead := deadAddr(t)
	lb := startProtoBalancer(t, "", dead, live.Addr)
	c := client(t)
	const n = 6
	for i := range n {
		var resp *http.Response
		var err error
		if i%2 == 0 {
			resp, err = c.Get(lb.URL(fmt.Sprintf("/get-%d", i)))
		} else {
			resp, err = c.Post(lb.URL(fmt.Sprintf("/post-%d", i)), "text/plain", strings.NewReader(fmt.Sprintf("body-%d", i)))
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("/get-%d ", i)
		if i%2 == 1 {
			want = fmt.Sprintf("/post-%d body-%d", i, i)
		}
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("request %d: status %d body %q, want 200 %q", i, resp.StatusCode, body, want)
		}
	}
	if got := live.Count(); got != n {
		t.Errorf("live backend served %d requests, want %d", got, n)
	}
}

// TestProtocolNoBackendAnswers: when every backend refuses, the client gets
// 502 (backends were tried: statusAfter gives 502 for connect failures
// outside panic mode); when health checks have marked them all down, 503.
// Either way the reply is short and clean.
func TestProtocolNoBackendAnswers(t *testing.T) {
	t.Parallel()
	// With retries.attempts at the default (3, more than the backends) and
	// at 2 (as many as the backends): the status must not depend on it.
	for name, extra := range map[string]string{
		"all refuse, default attempts": "",
		"all refuse, attempts 2":       "retries:\n  attempts: 2\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d1, d2 := deadAddr(t), deadAddr(t)
			lb := startProtoBalancer(t, extra, d1, d2)
			r := get(t, client(t), lb.URL("/"))
			if r.Status != http.StatusBadGateway {
				t.Errorf("status %d body %q, want 502 (healthy backends tried and refused: statusAfter outside panic mode)", r.Status, r.Body)
			}
			assertCleanError(t, r.Header, r.Body, d1, d2)
		})
	}
	t.Run("all marked down", func(t *testing.T) {
		// One attempt per request, so that only the health checker's
		// verdict (panic mode: the down backends are still tried, and
		// refuse) can turn the 502 into a 503.
		t.Parallel()
		d1, d2 := deadAddr(t), deadAddr(t)
		lb := startBalancer(t, lbConfig("round-robin",
			"health_check:\n  interval: 200ms\n  timeout: 100ms\n  fall: 1\n"+
				"retries:\n  attempts: 1\n",
			backendsAt(d1, d2)...))
		c := client(t)
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := get(t, c, lb.URL("/"))
			if r.Status == http.StatusServiceUnavailable {
				assertCleanError(t, r.Header, r.Body, d1, d2)
				if !strings.Contains(lb.Output(), "backend down") {
					t.Error("503 before the health checker marked a backend down")
				}
				return
			}
			if r.Status != http.StatusBadGateway {
				t.Fatalf("status %d body %q, want 502 until marked down, then 503", r.Status, r.Body)
			}
			if time.Now().After(deadline) {
				t.Fatal("still 502 after 10s of failing health checks, want 503")
			}
			time.Sleep(50 * time.Millisecond) // polling for the health checker, not an assertion
		}
	})
}

// TestProtocolResponseHeaderTimeout: a backend slower than
// timeouts.response_header gets the client a 504, and the backend's
// request is cancelled.
func TestProtocolResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	gaveUp := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	be := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, _ recordedRequest) {
		select {
		case <-r.Context().Done():
			gaveUp <- struct{}{}
		case <-release:
		}
	})
	lb := startProtoBalancer(t, "timeouts:\n  response_header: 300ms\n", be.Addr)

	start := time.Now()
	r := get(t, client(t), lb.URL("/slow"))
	took := time.Since(start)
	if r.Status != http.StatusGatewayTimeout {
		t.Fatalf("status %d body %q after %s, want 504", r.Status, r.Body, took)
	}
	if took > 5*time.Second {
		t.Errorf("504 took %s with a 300ms response_header timeout", took)
	}
	assertCleanError(t, r.Header, r.Body, be.Addr)
	select {
	case <-gaveUp:
	case <-time.After(10 * time.Second):
		t.Error("the backend's request was not cancelled after the timeout")
	}
	if n := be.Count(); n != 1 {
		t.Errorf("backend saw %d requests, want 1 (a timeout is not retried)", n)
	}
}

// TestProtocolClientGoneCancelsBackend: when the client goes away, the
// backend's request context is cancelled: while waiting for the response
// head, and while streaming the body.
func TestProtocolClientGoneCancelsBackend(t *testing.T) {
	t.Parallel()
	started := make(chan string, 2)
	cancelled := make(chan string, 2)
	be := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, _ recordedRequest) {
		if r.URL.Path == "/streaming" {
			w.Header().Set("Content-Type", "application/octet-stream")
			io.WriteString(w, "first part\n")
			http.NewResponseController(w).Flush()
		}
		started <- r.URL.Path
		select {
		case <-r.Context().Done():
			cancelled <- r.URL.Path
		case <-time.After(20 * time.Second):
		}
	})
	lb := startProtoBalancer(t, "", be.Addr)

	for _, path := range []string{"/waiting", "/streaming"} {
		c, br := dialBalancer(t, lb.Addr, 20*time.Second)
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: lb.test\r\n\r\n")
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: request never reached the backend", path)
		}
		if path == "/streaming" {
			// Wait until the first part is through, then leave mid-body.
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if line, err := bufio.NewReader(res.Body).ReadString('\n'); err != nil || line != "first part\n" {
				t.Fatalf("%s: first part %q err %v", path, line, err)
			}
		}
		c.Close()
		select {
		case p := <-cancelled:
			if p != path {
				t.Fatalf("cancelled %s, want %s", p, path)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: backend request not cancelled 10s after the client left", path)
		}
	}
}

// TestProtocolRetrySafety: a backend that reads the whole request and then
// resets the connection. A POST whose body reached it is not retried (the
// client gets 502, the other backend never sees it); a GET without a body is
// retried on the other backend.
func TestProtocolRetrySafety(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var atResetter []string
	resetter := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		mu.Lock()
		atResetter = append(atResetter, req.URL.Path+" "+string(body))
		mu.Unlock()
		resetConn(c)
	})
	good := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, rec recordedRequest) {
		fmt.Fprintf(w, "%s %s", r.URL.Path, rec.Body)
	})
	lb := startProtoBalancer(t, "", resetter.Addr, good.Addr)
	c := client(t)

	do := func(method, path, body string) (int, string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequestWithContext(ctxFor(t, 10*time.Second), method, lb.URL(path), rd)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}

	// POSTs first: without retries in between, round-robin alternates, so
	// some find the resetting backend first.
	var failedPosts []string
	for i := range 4 {
		path, body := fmt.Sprintf("/post-%d", i), fmt.Sprintf("body-%d", i)
		status, reply := do(http.MethodPost, path, body)
		switch status {
		case http.StatusOK:
			if reply != path+" "+body {
				t.Errorf("%s: reply %q", path, reply)
			}
		case http.StatusBadGateway:
			failedPosts = append(failedPosts, path+" "+body)
		default:
			t.Errorf("%s: status %d %q, want 200 or 502", path, status, reply)
		}
	}
	for i := range 4 {
		path := fmt.Sprintf("/get-%d", i)
		if status, reply := do(http.MethodGet, path, ""); status != 200 || reply != path+" " {
			t.Errorf("%s: status %d %q, want 200 (retried on the good backend)", path, status, reply)
		}
	}

	mu.Lock()
	reset := slices.Clone(atResetter)
	mu.Unlock()
	var resetPosts, resetGets int
	for _, r := range reset {
		if strings.HasPrefix(r, "/post-") {
			resetPosts++
		} else {
			resetGets++
		}
	}
	if resetPosts == 0 || resetGets == 0 {
		t.Fatalf("the resetting backend saw %q: the test needs at least one POST and one GET there", reset)
	}
	slices.Sort(failedPosts)
	var resetPostList []string
	for _, r := range reset {
		if strings.HasPrefix(r, "/post-") {
			resetPostList = append(resetPostList, r)
		}
	}
	slices.Sort(resetPostList)
	if !slices.Equal(failedPosts, resetPostList) {
		t.Errorf("POSTs that got 502: %q; POSTs whose body reached the resetting backend: %q; want the same", failedPosts, resetPostList)
	}
	for _, r := range good.Requests() {
		if slices.Contains(resetPostList, r.URI+" "+string(r.Body)) {
			t.Errorf("POST %s was retried on the good backend after its body reached the first", r.URI)
		}
	}
	if n := good.Count(); n != 8-len(resetPostList) {
		t.Errorf("good backend served %d requests, want %d", n, 8-len(resetPostList))
	}
}

// TestProtocolClientBodyErrorNotBlamedOnBackend: a client whose chunked
// body is malformed gets 400 (its own fault), and the backend is not
// counted as failing: passive health checking must not eject a healthy
// backend because of bad clients.
func TestProtocolClientBodyErrorNotBlamedOnBackend(t *testing.T) {
	t.Parallel()
	be := newRecordingBackend(t, nil)
	lb := startBalancer(t, lbConfig("round-robin",
		"health_check:\n  enabled: false\n"+
			"passive_health:\n  consecutive_failures: 2\n",
		backendsAt(be.Addr)...))
	for i := range 3 {
		res := exchangeOne(t, lb.Addr, "POST /bad-body HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
		if res.Status != http.StatusBadRequest {
			t.Errorf("request %d: status %d, want 400 for a malformed request body", i, res.Status)
		}
	}
	if r := get(t, client(t), lb.URL("/after")); r.Status != 200 {
		t.Errorf("status %d after the bad requests", r.Status)
	}
	// Ejections are logged synchronously when the outcome is observed,
	// before the reply is sent.
	if out := lb.Output(); strings.Contains(out, "backend down") {
		t.Errorf("the backend was marked down because of malformed client bodies:\n%s", out)
	}
}
