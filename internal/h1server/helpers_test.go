package h1server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine a test started (servers,
// connections, handlers, clients) is still running once all tests ended.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ioTimeout bounds every read and write of the tests: nothing here waits
// for it unless the server misbehaves.
const ioTimeout = 5 * time.Second

// serve runs s on a fresh loopback listener and returns its address. At the
// end of the test the server is closed and Serve must have returned
// http.ErrServerClosed; the test then waits until every connection of s has
// ended (s.conns empty), so that no connection goroutine outlives it.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	s.Handler = withProbe(s.Handler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
		waitNoConns(t, s)
	})
	return ln.Addr().String()
}

// serveLean is serve with idle connections waiting lean (no read buffer)
// as soon as two are open: it keeps one open, idle, for the test's.
func serveLean(t testing.TB, s *Server) string {
	t.Helper()
	s.LeanAbove = 1
	addr := serve(t, s)
	ballast := newRaw(t, addr)
	ballast.send(probe)
	ballast.read("GET")
	return addr
}

// waitNoConns waits until s tracks no connection (each removes itself when
// its goroutine ends).
func waitNoConns(t testing.TB, s *Server) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d connections still open %v after Close", n, ioTimeout)
			return
		}
		time.Sleep(time.Millisecond) // polled: the server exposes no event for it
	}
}

// serveStd runs net/http's server with the same handler, for differential
// tests.
func serveStd(t testing.TB, h http.Handler, maxHeaderBytes int) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(withProbe(h))
	ts.Config.MaxHeaderBytes = maxHeaderBytes
	ts.Config.ErrorLog = nil
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// dial opens a client connection bounded by ioTimeout.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// resp is what a raw exchange saw of one response.
type resp struct {
	status  int
	framing string // "length", "chunked", "close" (delimited by the close), "none"
	body    string
	header  http.Header // Connection: close is removed by the parser: see close
	trailer http.Header
	close   bool // the response announced the end of the connection
}

func (r resp) String() string { return fmt.Sprintf("%d/%s/%q", r.status, r.framing, r.body) }

// readResp reads one response (a 1xx included) to a request of method.
func readResp(br *bufio.Reader, method string) (resp, error) {
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	r := resp{status: res.StatusCode, header: res.Header, close: res.Close}
	switch {
	case res.StatusCode < 200 || res.StatusCode == 204 || res.StatusCode == 304 || method == "HEAD":
		r.framing = "none"
	case len(res.TransferEncoding) > 0 && res.TransferEncoding[0] == "chunked":
		r.framing = "chunked"
	case res.ContentLength >= 0:
		r.framing = "length"
	default:
		r.framing = "close"
	}
	b, err := io.ReadAll(res.Body)
	r.body = string(b)
	r.trailer = res.Trailer
	return r, err
}

// outcome is what a client saw of a connection: the responses, and whether
// the connection still served a request after them.
type outcome struct {
	resps []resp
	open  bool
	err   string // how reading stopped early, if it did
}

func (o outcome) String() string {
	s := make([]string, len(o.resps))
	for i, r := range o.resps {
		s[i] = r.String()
	}
	state := "closed"
	if o.open {
		state = "open"
	}
	return fmt.Sprintf("[%s] %s", strings.Join(s, " "), state)
}

// withProbe answers the probe requests of the tests and passes the others
// to h.
func withProbe(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/probe" {
			io.WriteString(w, probeBody)
			return
		}
		h.ServeHTTP(w, r)
	})
}

const probeBody = "probe answered"

// probe is the request that tells an open connection from a closed one.
const probe = "GET /probe HTTP/1.1\r\nHost: probe\r\n\r\n"

// exchange writes raw on a new connection to addr, reads one final response
// per entry of methods (1xx responses are recorded too) and then tells
// whether the connection is still open by sending another request on it:
// open means that request was answered with 200.
func exchange(t testing.TB, addr, raw string, methods []string) outcome {
	t.Helper()
	c := dial(t, addr)
	wrote := make(chan struct{})
	go func() { // beside the reads: the server may answer before it read all
		defer close(wrote)
		_, _ = io.WriteString(c, raw)
	}()
	defer func() { c.Close(); <-wrote }()
	var o outcome
	br := bufio.NewReader(c)
	for _, m := range methods {
		for {
			r, err := readResp(br, m)
			if err != nil {
				o.err = err.Error()
				if isTimeout(err) {
					t.Errorf("reading a response: %v (the server hangs)", err)
				}
				return o
			}
			o.resps = append(o.resps, r)
			if r.status >= 200 || r.status == 101 {
				break
			}
		}
		if o.resps[len(o.resps)-1].framing == "close" {
			return o
		}
	}
	<-wrote // the probe follows the whole of raw
	if _, err := io.WriteString(c, probe); err != nil {
		return o
	}
	r, err := readResp(br, "GET")
	if isTimeout(err) {
		t.Errorf("reading the probe's response: %v (the server hangs)", err)
	}
	o.open = err == nil && r.status == 200 && r.body == probeBody
	return o
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// echo answers with the method, target, Host and body of the request, and
// with a few special paths the differential tests use.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Content-Type", "text/plain") // no sniffing difference
	switch r.URL.Path {
	case "/204":
		w.WriteHeader(http.StatusNoContent)
		return
	case "/304":
		w.WriteHeader(http.StatusNotModified)
		return
	case "/close":
		w.Header().Set("Connection", "close")
	case "/stream":
		io.WriteString(w, "part1,")
		w.(http.Flusher).Flush()
	}
	fmt.Fprintf(w, "%s %s %s %q", r.Method, r.RequestURI, r.Host, body)
}
