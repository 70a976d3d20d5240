package e2e

// Helpers of the protocol_* end-to-end tests: recording backends in the
// test process, balancers without background noise, random payloads, and
// parsing raw pipelined exchanges.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// startProtoBalancer starts the balancer over addrs with round-robin (so
// that which backend serves a request is predictable), active and passive
// health checking off (no probe connections at raw backends, no ejections
// that would change which backend a request reaches), plus extra YAML
// (top-level keys).
func startProtoBalancer(t *testing.T, extra string, addrs ...string) *balancer {
	t.Helper()
	quiet := "health_check:\n  enabled: false\npassive_health:\n  enabled: false\n"
	return startBalancer(t, lbConfig("round-robin", quiet+extra, backendsAt(addrs...)...))
}

// randomBytes returns n random bytes.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// sum is the hex SHA-256 of b.
func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// hashReader returns the hex SHA-256 and the length of everything r yields.
func hashReader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// recordedRequest is what a recording backend saw of one request.
type recordedRequest struct {
	Method     string
	URI        string // request target as received
	Proto      string
	Host       string
	Header     http.Header
	Trailer    http.Header
	Body       []byte
	BodyErr    error
	RemoteAddr string
}

// recordingBackend is a real net/http server on loopback that records every
// request (body read completely) and answers with respond.
type recordingBackend struct {
	srv  *httptest.Server
	Addr string
	mu   sync.Mutex
	reqs []recordedRequest
}

// newRecordingBackend starts a recording backend. respond may be nil: the
// answer is then 200 with body "ok <uri>" and X-Path set to the target.
func newRecordingBackend(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, rec recordedRequest)) *recordingBackend {
	t.Helper()
	b := &recordingBackend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		rec := recordedRequest{
			Method: r.Method, URI: r.RequestURI, Proto: r.Proto, Host: r.Host,
			Header: r.Header.Clone(), Trailer: r.Trailer.Clone(),
			Body: body, BodyErr: err, RemoteAddr: r.RemoteAddr,
		}
		b.mu.Lock()
		b.reqs = append(b.reqs, rec)
		b.mu.Unlock()
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if respond != nil {
			respond(w, r, rec)
			return
		}
		w.Header().Set("X-Path", r.RequestURI)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "ok %s", r.RequestURI)
	}))
	t.Cleanup(b.srv.Close)
	b.Addr = b.srv.Listener.Addr().String()
	return b
}

// Requests returns a copy of the requests seen so far.
func (b *recordingBackend) Requests() []recordedRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]recordedRequest(nil), b.reqs...)
}

// URIs returns the request targets seen so far, in order.
func (b *recordingBackend) URIs() []string {
	var out []string
	for _, r := range b.Requests() {
		out = append(out, r.URI)
	}
	return out
}

// Count is the number of requests seen so far.
func (b *recordingBackend) Count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reqs)
}

// readHead reads a message head (start line and header fields) up to and
// including the empty line, and returns it exactly as received.
func readHead(br *bufio.Reader) (string, error) {
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			return head.String(), err
		}
		if line == "\r\n" || line == "\n" {
			return head.String(), nil
		}
	}
}

// resetConn closes c with an RST instead of a FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// rawResponse is one response read from a raw exchange.
type rawResponse struct {
	Status int
	Header http.Header
	Body   string
}

// parseResponses parses every response in raw, in order; methods gives the
// request method of each (for HEAD), "" or missing meaning GET. It stops at
// the end of raw; trailing bytes that are not a whole response are an
// error.
func parseResponses(raw string, methods ...string) ([]rawResponse, error) {
	br := bufio.NewReader(strings.NewReader(raw))
	var out []rawResponse
	for i := 0; ; i++ {
		if _, err := br.Peek(1); err == io.EOF {
			return out, nil
		}
		method := http.MethodGet
		if i < len(methods) && methods[i] != "" {
			method = methods[i]
		}
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return out, fmt.Errorf("response %d: %w", i+1, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return out, fmt.Errorf("response %d body: %w", i+1, err)
		}
		out = append(out, rawResponse{Status: res.StatusCode, Header: res.Header, Body: string(body)})
	}
}

// statuses lists the status codes of rs.
func statuses(rs []rawResponse) []int {
	out := make([]int, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Status)
	}
	return out
}

// exchangeOne sends one raw request (which should carry Connection: close)
// and returns the single response.
func exchangeOne(t *testing.T, addr, req string) rawResponse {
	t.Helper()
	raw := rawExchange(t, addr, req, 15*time.Second)
	rs, err := parseResponses(raw)
	if err != nil || len(rs) != 1 {
		t.Fatalf("want one response, got %v (err %v); raw %q", statuses(rs), err, head(raw))
	}
	return rs[0]
}

// head returns the start of s, for error messages.
func head(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// leakMarkers are strings an error reply must never contain: addresses,
// Go error texts, internals.
var leakMarkers = []string{
	"127.0.0.1", "dial", "tcp", "refused", "EOF", "reset", "timeout awaiting",
	"malformed", "net/http", "http:", "goroutine", "panic", "i/o",
}

// assertCleanError checks that an error reply is small plain text that
// names no backend address and no Go error.
func assertCleanError(t *testing.T, header http.Header, body string, backendAddrs ...string) {
	t.Helper()
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("error reply Content-Type = %q, want text/plain", ct)
	}
	if len(body) > 200 {
		t.Errorf("error reply is %d bytes, want a short line: %q", len(body), body)
	}
	for _, m := range append(leakMarkers, backendAddrs...) {
		if m != "" && strings.Contains(strings.ToLower(body), strings.ToLower(m)) {
			t.Errorf("error reply %q leaks %q", body, m)
		}
	}
	for _, a := range backendAddrs {
		_, port, _ := net.SplitHostPort(a)
		if port != "" && strings.Contains(body, port) {
			t.Errorf("error reply %q contains backend port %s", body, port)
		}
	}
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// chunked encodes body in the chunked coding with chunks of at most size
// bytes, without the final chunk.
func chunked(body []byte, size int) []byte {
	var b bytes.Buffer
	for len(body) > 0 {
		n := min(size, len(body))
		fmt.Fprintf(&b, "%x\r\n", n)
		b.Write(body[:n])
		b.WriteString("\r\n")
		body = body[n:]
	}
	return b.Bytes()
}
