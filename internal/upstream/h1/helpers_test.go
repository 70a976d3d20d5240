package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/testbackend"
)

// serveResponses answers every request on the connection with reply(req),
// reading the request body first, until the client closes.
func serveResponses(reply func(r *http.Request, body []byte) string) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, reply(r, body)); err != nil {
				return
			}
		}
	}
}

// okServer answers every request with 200 and body "ok".
func okServer(t *testing.T) *testbackend.RawServer {
	return testbackend.Raw(t, serveResponses(func(*http.Request, []byte) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}))
}

func newTestTransport(t testing.TB, addr string, edit ...func(*Options)) *Transport {
	t.Helper()
	opt := Options{
		Addr:                  addr,
		DialTimeout:           2 * time.Second,
		ResponseHeaderTimeout: 5 * time.Second,
		IdleConnTimeout:       time.Minute,
	}
	for _, e := range edit {
		e(&opt)
	}
	tr := New(opt)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// do sends a request and reads the whole response body.
func do(t testing.TB, tr *Transport, req *Request) (*http.Response, string, error) {
	t.Helper()
	if req.Target == "" {
		req.Target = "/"
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	res, err := tr.Do(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b), err
}

// get sends GET target and expects a complete response.
func get(t testing.TB, tr *Transport, target string) (*http.Response, string) {
	t.Helper()
	res, body, err := do(t, tr, &Request{Method: "GET", Target: target})
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return res, body
}

// eventually waits until cond holds, at most 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// readHeadString reads a request head as a string.
func readHeadString(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

// tlsConfigWithoutRoots trusts the system roots only, which do not include
// httptest's certificate.
func tlsConfigWithoutRoots() *tls.Config { return &tls.Config{} }

// gate returns wait, which blocks until release is called. Tests defer
// release, so that a failing test leaves no server goroutine blocked (test
// cleanups, which wait for them, run after deferred calls).
func gate() (wait, release func()) {
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	return func() { <-ch }, release
}

// okReply is the answer of the recording backends.
const okReply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// recordingBackend reads the requests of each connection and answers the
// n-th one (from 0) with answer(n): a response to write ("" for none) and
// whether the connection goes on after it; it closes without saying so
// otherwise. seen returns "METHOD /path" of the requests read since its
// last call.
func recordingBackend(t *testing.T, answer func(n int) (reply string, goOn bool)) (*testbackend.RawServer, func() []string) {
	var mu sync.Mutex
	var seen []string
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		for n := 0; ; n++ {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.ReadAll(r.Body)
			mu.Lock()
			seen = append(seen, r.Method+" "+r.URL.Path)
			mu.Unlock()
			reply, goOn := answer(n)
			io.WriteString(c, reply)
			if !goOn {
				return
			}
		}
	})
	return s, func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := seen
		seen = nil
		return out
	}
}

// oneShotBackend answers the first request of every connection with a 200
// "ok" and closes the connection without saying so (the client learns it
// when it reuses the connection).
func oneShotBackend(t *testing.T) (*testbackend.RawServer, func() []string) {
	return recordingBackend(t, func(int) (string, bool) { return okReply, false })
}
