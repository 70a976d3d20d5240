package h1server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/lbproject/load_balancer/internal/sockio"
)

// rawClient is a client connection driven byte by byte.
type rawClient struct {
	t       testing.TB
	c       net.Conn
	br      *bufio.Reader
	writers sync.WaitGroup
}

// newRaw dials addr. At the end of the test the connection is closed, which
// ends the writes of sendAsync, and those are waited for.
func newRaw(t testing.TB, addr string) *rawClient {
	r := &rawClient{t: t, c: dial(t, addr)}
	r.br = bufio.NewReader(r.c)
	t.Cleanup(func() {
		r.c.Close()
		r.writers.Wait()
	})
	return r
}

// sendAsync writes s beside the reads of the test, for requests the server
// may answer before it has read them whole.
func (r *rawClient) sendAsync(s string) {
	r.writers.Go(func() { _, _ = io.WriteString(r.c, s) })
}

func (r *rawClient) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// read reads one response (a 1xx included) to a request of method.
func (r *rawClient) read(method string) resp {
	r.t.Helper()
	res, err := readResp(r.br, method)
	if err != nil {
		r.t.Fatalf("reading a response: %v (so far %s)", err, res)
	}
	return res
}

// readBodies reads a 200 response to a GET per body in want, with that
// body.
func (r *rawClient) readBodies(want ...string) {
	r.t.Helper()
	for _, w := range want {
		if res := r.read("GET"); res.status != 200 || res.body != w {
			r.t.Fatalf("got %s, want 200 with %q", res, w)
		}
	}
}

// readLine reads one line of the response stream, without its line end.
func (r *rawClient) readLine() string {
	r.t.Helper()
	l, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("reading a line: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// expectClosed checks that the server closed the connection, with nothing
// more to read: the read returns at once (the server's close is the event).
func (r *rawClient) expectClosed() {
	r.t.Helper()
	b, err := r.br.ReadByte()
	switch {
	case err == nil:
		rest, _ := r.br.Peek(r.br.Buffered())
		r.t.Fatalf("connection open, read %q", append([]byte{b}, rest...))
	case isTimeout(err):
		r.t.Fatalf("connection still open after %v", ioTimeout)
	case !isClosed(err):
		r.t.Fatalf("read: %v, want end of stream", err)
	}
}

// expectOpen checks that the connection serves another request.
func (r *rawClient) expectOpen() {
	r.t.Helper()
	r.send(probe)
	if res := r.read("GET"); res.status != 200 || res.body != probeBody {
		r.t.Fatalf("probe got %s", res)
	}
}

// isClosed reports whether err means the peer closed the connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)
}

// readFinal reads a response to method, checks its status is want, and
// that the connection stays open after a 200 and is closed after anything
// else.
func (r *rawClient) readFinal(method string, want int) {
	r.t.Helper()
	if res := r.read(method); res.status != want {
		r.t.Fatalf("got %s, want %d", res, want)
	}
	if want == 200 {
		r.expectOpen()
	} else {
		r.expectClosed()
	}
}

// sendWithContinue sends head, which asks for 100 Continue, checks the
// 100, sends body, and returns the final response.
func (r *rawClient) sendWithContinue(method, head, body string) resp {
	r.t.Helper()
	r.send(head)
	if res := r.read(method); res.status != 100 {
		r.t.Fatalf("got %s, want 100 Continue", res)
	}
	r.send(body)
	return r.read(method)
}

// TestPlainConnectionsUseSockio: a client's plain TCP connection is read
// and written through a sockio.Socket where the system has one (Linux).
func TestPlainConnectionsUseSockio(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	c := newRaw(t, serve(t, s))
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	c.readBodies("ok")
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) != 1 {
		t.Fatalf("%d connections, want 1", len(s.conns))
	}
	for sc := range s.conns {
		if _, got := sc.sock.(*sockio.Socket); got != (runtime.GOOS == "linux") {
			t.Errorf("connection read through a sockio.Socket: %v on %s", got, runtime.GOOS)
		}
	}
}
