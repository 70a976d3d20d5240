package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/sockio"
	"github.com/lbproject/load_balancer/internal/testbackend"
)

func TestRequestHeadOnTheWire(t *testing.T) {
	heads := make(chan string, 1)
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		h, err := readHeadString(br)
		if err != nil {
			return
		}
		heads <- h
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		io.Copy(io.Discard, br)
	})
	tr := newTestTransport(t, s.Addr)
	_, _, err := do(t, tr, &Request{Method: "GET", Target: "/a?b=c", Host: "example.test",
		Header: http.Header{"X-One": {"1"}, "Content-Length": {"99"}, "Host": {"evil"}, "Transfer-Encoding": {"chunked"}}})
	if err != nil {
		t.Fatal(err)
	}
	h := <-heads
	if !strings.HasPrefix(h, "GET /a?b=c HTTP/1.1\r\nHost: example.test\r\n") {
		t.Errorf("head %q", h)
	}
	if !strings.Contains(h, "\r\nX-One: 1\r\n") {
		t.Errorf("head %q lacks X-One", h)
	}
	for _, bad := range []string{"99", "evil", "chunked"} {
		if strings.Contains(h, bad) {
			t.Errorf("head %q contains %q: framing fields come from the request, not its header", h, bad)
		}
	}
}

func TestInvalidRequestsAreNotSent(t *testing.T) {
	s := okServer(t)
	tr := newTestTransport(t, s.Addr)
	for name, req := range map[string]*Request{
		"CRLF in value":        {Header: http.Header{"X-A": {"a\r\nX-Injected: 1"}}},
		"LF in value":          {Header: http.Header{"X-A": {"a\nb"}}},
		"NUL in value":         {Header: http.Header{"X-A": {"a\x00b"}}},
		"space in name":        {Header: http.Header{"X A": {"a"}}},
		"space in target":      {Target: "/a b"},
		"CRLF in target":       {Target: "/a\r\nGET /b"},
		"CRLF in host":         {Host: "a\r\nX: y"},
		"space in method":      {Method: "GE T"},
		"absolute-form target": {Target: "http://other.test/"},
		"empty target":         {Target: "?x"},
		"empty header target":  {Target: "\x7f"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := do(t, tr, req)
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("err %v, want a RequestError", err)
			}
		})
	}
	if n := s.Accepted(); n != 0 {
		t.Errorf("%d connections opened for invalid requests", n)
	}
}

func TestConnectionReuse(t *testing.T) {
	s := okServer(t)
	tr := newTestTransport(t, s.Addr)
	for range 20 {
		if _, body := get(t, tr, "/"); body != "ok" {
			t.Fatalf("body %q", body)
		}
	}
	if n := s.Accepted(); n != 1 {
		t.Errorf("%d connections for 20 sequential requests, want 1", n)
	}
}

func TestResponseFramings(t *testing.T) {
	payload := make([]byte, 100<<10)
	rand.Read(payload)
	var chunkedPayload bytes.Buffer
	for off := 0; off < len(payload); off += 7000 {
		p := payload[off:min(off+7000, len(payload))]
		fmt.Fprintf(&chunkedPayload, "%x;ext=1\r\n%s\r\n", len(p), p)
	}
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch r.URL.Path {
			case "/length":
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(payload), payload)
			case "/chunked":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n")
				c.Write(chunkedPayload.Bytes())
				io.WriteString(c, "0\r\nX-Sum: abc\r\nX-Late: yes\r\nContent-Length: 1\r\n\r\n")
			case "/small-chunked":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
			case "/head":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n")
			case "/204":
				io.WriteString(c, "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n")
			case "/304":
				io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n")
			case "/empty":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			case "/eof":
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n\r\n%s", payload)
				return
			case "/http10":
				fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(payload), payload)
				return
			case "/http10-keepalive":
				io.WriteString(c, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok")
			case "/close":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
				return
			}
		}
	})
	tr := newTestTransport(t, s.Addr)
	for _, tc := range []struct {
		path, method string
		body         string
		cl           int64
		reuse        bool
	}{
		{"/length", "GET", string(payload), int64(len(payload)), true},
		{"/chunked", "GET", string(payload), -1, true},
		{"/small-chunked", "GET", "hello", -1, true},
		{"/head", "HEAD", "", 12345, true},
		{"/204", "GET", "", 0, true},
		{"/304", "GET", "", 0, true},
		{"/empty", "GET", "", 0, true},
		{"/http10-keepalive", "GET", "ok", 2, true},
		{"/eof", "GET", string(payload), -1, false},
		{"/http10", "GET", string(payload), int64(len(payload)), false},
		{"/close", "GET", "ok", 2, false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			tr.CloseIdleConnections()
			before := s.Accepted()
			for i := range 2 {
				res, body, err := do(t, tr, &Request{Method: tc.method, Target: tc.path})
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if res.StatusCode/100 != 2 && res.StatusCode != 304 || body != tc.body || res.ContentLength != tc.cl {
					t.Fatalf("request %d: status %d, %d bytes, ContentLength %d; want %d bytes, %d",
						i, res.StatusCode, len(body), res.ContentLength, len(tc.body), tc.cl)
				}
				if tc.path == "/chunked" {
					if res.Trailer.Get("X-Sum") != "abc" || res.Trailer.Get("X-Late") != "yes" || res.Trailer.Get("Content-Length") != "" {
						t.Errorf("trailers %v, want X-Sum and X-Late (Content-Length dropped)", res.Trailer)
					}
				}
			}
			opened := s.Accepted() - before
			if tc.reuse && opened > 1 || !tc.reuse && opened != 2 {
				t.Errorf("%d connections opened for 2 requests (reuse %v)", opened, tc.reuse)
			}
		})
	}
}

// TestSmallResponseFreesConnectionAtOnce: a small response, chunked or
// not, returns io.EOF with its data, and the connection is pooled before
// the caller reads again.
func TestSmallResponseFreesConnectionAtOnce(t *testing.T) {
	s := testbackend.Raw(t, serveResponses(func(r *http.Request, _ []byte) string {
		if r.URL.Path == "/chunked" {
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	}))
	tr := newTestTransport(t, s.Addr)
	for _, path := range []string{"/length", "/chunked"} {
		res, err := tr.Do(&Request{Target: path, Header: http.Header{}})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := res.Body.Read(buf)
		if n != 5 || err != io.EOF {
			t.Errorf("%s: first Read = %d, %v; want 5, EOF", path, n, err)
		}
		tr.mu.Lock()
		idle := len(tr.idle)
		tr.mu.Unlock()
		if idle != 1 {
			t.Errorf("%s: %d idle connections after the body's end, want 1", path, idle)
		}
		res.Body.Close()
	}
}

func TestMalformedResponses(t *testing.T) {
	replies := map[string]string{
		"/letters-status":    "HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
		"/conflicting-cl":    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
		"/obs-fold":          "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"/huge-header":       "HTTP/1.1 200 OK\r\nX-Huge: " + strings.Repeat("x", 100<<10) + "\r\nContent-Length: 2\r\n\r\nok",
		"/many-big-lines":    "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Line: "+strings.Repeat("y", 1000)+"\r\n", 70) + "\r\n",
		"/gzip-te":           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"/101-unasked":       "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
		"/empty-first-line":  "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"/too-many-1xx":      strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", maxInformational+1) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"/bad-chunk-size":    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
		"/chunk-bare-lf":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
		"/chunk-no-crlf":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
		"/chunk-bad-trailer": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-A : b\r\n\r\n",
	}
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.WriteString(c, replies[r.URL.Path])
		io.Copy(io.Discard, br)
	})
	tr := newTestTransport(t, s.Addr)
	for path := range replies {
		t.Run(path, func(t *testing.T) {
			res, body, err := do(t, tr, &Request{Target: path})
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v %q err %v, want a ProtocolError", res, body, err)
			}
		})
	}
	eventually(t, "every connection closed", func() bool { return s.Closed() == int64(len(replies)) })
}

// TestBigResponseHead: a head larger than the read buffer, but within
// the limit, is read line by line.
func TestBigResponseHead(t *testing.T) {
	big := strings.Repeat("X-Line: "+strings.Repeat("y", 1000)+"\r\n", 30) // 30 KiB
	long := "X-Long: " + strings.Repeat("z", 20<<10) + "\r\n"              // one line longer than the buffer
	s := testbackend.Raw(t, serveResponses(func(r *http.Request, _ []byte) string {
		return "HTTP/1.1 200 OK\r\n" + big + long + "Content-Length: 2\r\n\r\nok"
	}))
	tr := newTestTransport(t, s.Addr)
	for range 2 {
		res, body := get(t, tr, "/")
		if body != "ok" || len(res.Header["X-Line"]) != 30 || len(res.Header.Get("X-Long")) != 20<<10 {
			t.Fatalf("body %q, %d X-Line, X-Long of %d bytes", body, len(res.Header["X-Line"]), len(res.Header.Get("X-Long")))
		}
	}
	if n := s.Accepted(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestMidBodyDeaths(t *testing.T) {
	part := strings.Repeat("p", 50<<10)
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		switch strings.TrimPrefix(r.URL.Path, "/reset") {
		case "/length":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"+part)
		case "/chunked":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+fmt.Sprintf("%x\r\n%s\r\n", len(part), part))
		case "/chunk-cut":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+fmt.Sprintf("%x\r\n%s", len(part)*2, part))
		case "/trailer-cut":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-A: b\r\n")
		case "/head-cut":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
		}
		if strings.HasPrefix(r.URL.Path, "/reset") {
			time.Sleep(50 * time.Millisecond) // let the client read what was sent
			c.(*net.TCPConn).SetLinger(0)
		}
	})
	tr := newTestTransport(t, s.Addr)
	for _, path := range []string{"/length", "/chunked", "/chunk-cut", "/trailer-cut", "/head-cut", "/reset/length", "/reset/chunked"} {
		t.Run(path, func(t *testing.T) {
			res, body, err := do(t, tr, &Request{Target: path})
			if err == nil {
				t.Fatalf("status %d, %d bytes and no error: a truncated response looks complete", res.StatusCode, len(body))
			}
			if strings.HasSuffix(path, "/length") && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("err %v, want io.ErrUnexpectedEOF or ECONNRESET", err)
			}
			if path == "/head-cut" && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("err %v, want io.ErrUnexpectedEOF", err)
			}
			if len(body) > len(part) {
				t.Errorf("read %d bytes, more than the %d sent", len(body), len(part))
			}
		})
	}
}

// TestExtraBytesAfterResponse: a backend that sends more than its response
// is out of step; its connection is not reused.
func TestExtraBytesAfterResponse(t *testing.T) {
	s := testbackend.Raw(t, serveResponses(func(*http.Request, []byte) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra"
	}))
	tr := newTestTransport(t, s.Addr)
	for range 3 {
		if _, body := get(t, tr, "/"); body != "ok" {
			t.Fatalf("body %q", body)
		}
	}
	if n := s.Accepted(); n != 3 {
		t.Errorf("%d connections for 3 requests, want 3 (none reused)", n)
	}
}

func TestInformationalResponses(t *testing.T) {
	s := testbackend.Raw(t, serveResponses(func(*http.Request, []byte) string {
		return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" +
			"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}))
	tr := newTestTransport(t, s.Addr)
	var got []string
	res, body, err := do(t, tr, &Request{Target: "/", Got1xx: func(code int, h http.Header) error {
		got = append(got, fmt.Sprint(code, " ", h.Get("Link")))
		return nil
	}})
	if err != nil || res.StatusCode != 200 || body != "ok" {
		t.Fatalf("status %v body %q err %v", res, body, err)
	}
	if want := []string{"103 </style.css>; rel=preload", "102 "}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Got1xx saw %q, want %q", got, want)
	}
}

func TestRequestBodies(t *testing.T) {
	type seen struct {
		te, cl, trailer, sum string
		n                    int
		trailers             http.Header
	}
	reqs := make(chan seen, 10)
	s := testbackend.Raw(t, serveResponses(func(r *http.Request, body []byte) string {
		reqs <- seen{strings.Join(r.TransferEncoding, ","), r.Header.Get("Content-Length"), r.Header.Get("Trailer"),
			fmt.Sprintf("%x", sha256.Sum256(body)), len(body), r.Trailer}
		return okReply
	}))
	tr := newTestTransport(t, s.Addr)
	big := make([]byte, 1<<20)
	rand.Read(big)
	sum := func(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

	t.Run("small, with the head", func(t *testing.T) {
		b := []byte("hello")
		if _, _, err := do(t, tr, &Request{Method: "POST", Body: bytes.NewReader(b), ContentLength: 5}); err != nil {
			t.Fatal(err)
		}
		if r := <-reqs; r.cl != "5" || r.te != "" || r.sum != sum(b) {
			t.Errorf("backend saw %+v", r)
		}
	})
	t.Run("large, streamed", func(t *testing.T) {
		if _, _, err := do(t, tr, &Request{Method: "PUT", Body: bytes.NewReader(big), ContentLength: int64(len(big))}); err != nil {
			t.Fatal(err)
		}
		if r := <-reqs; r.cl != strconv.Itoa(len(big)) || r.te != "" || r.sum != sum(big) {
			t.Errorf("backend saw %+v", r)
		}
	})
	t.Run("chunked with trailers", func(t *testing.T) {
		trailer := http.Header{"X-Sum": nil}
		rd := &trailerSetter{r: bytes.NewReader(big), set: func() { trailer["X-Sum"] = []string{sum(big)} }}
		if _, _, err := do(t, tr, &Request{Method: "POST", Body: rd, ContentLength: -1, Trailer: &trailer}); err != nil {
			t.Fatal(err)
		}
		r := <-reqs
		if r.te != "chunked" || r.n != len(big) || r.sum != sum(big) || r.trailers.Get("X-Sum") != sum(big) {
			t.Errorf("backend saw %+v", r)
		}
	})
	t.Run("POST without body says Content-Length: 0", func(t *testing.T) {
		if _, _, err := do(t, tr, &Request{Method: "POST"}); err != nil {
			t.Fatal(err)
		}
		if r := <-reqs; r.cl != "0" || r.n != 0 {
			t.Errorf("backend saw %+v", r)
		}
	})
	t.Run("client body cut", func(t *testing.T) {
		for _, n := range []int{5, 1 << 20} {
			_, _, err := do(t, tr, &Request{Method: "POST", Body: io.LimitReader(bytes.NewReader(big), int64(n-1)), ContentLength: int64(n)})
			if err == nil {
				t.Errorf("body of %d bytes announced as %d: no error", n-1, n)
			}
		}
	})
	if n := s.Accepted(); n > 3 {
		t.Errorf("%d connections: bodies should not cost connections", n)
	}
}

// trailerSetter calls set when r ends, as net/http's server fills the
// request's trailers at the end of its body.
type trailerSetter struct {
	r   io.Reader
	set func()
}

func (t *trailerSetter) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		t.set()
	}
	return n, err
}

// TestFullDuplex: a backend that echoes the body as it reads it, before
// the request is complete. Writing the whole body before reading would
// deadlock once the socket buffers fill.
func TestFullDuplex(t *testing.T) {
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		buf := make([]byte, 16<<10)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				fmt.Fprintf(c, "%x\r\n%s\r\n", n, buf[:n])
			}
			if err != nil {
				break
			}
		}
		io.WriteString(c, "0\r\n\r\n")
	})
	tr := newTestTransport(t, s.Addr)
	payload := make([]byte, 16<<20) // far beyond socket buffers
	rand.Read(payload)
	res, err := tr.Do(&Request{Ctx: ctxTimeout(t, 20*time.Second), Method: "POST", Target: "/", Header: http.Header{},
		Body: bytes.NewReader(payload), ContentLength: -1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo: %d bytes, err %v", len(got), err)
	}
}

func TestExpectContinue(t *testing.T) {
	type result struct{ bodyBytes int }
	mode := make(chan string, 1)
	got := make(chan result, 1)
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch <-mode {
			case "continue":
				io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
				b, _ := io.ReadAll(r.Body)
				got <- result{len(b)}
				io.WriteString(c, okReply)
			case "refuse":
				io.WriteString(c, "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 6\r\n\r\ndenied")
				// Whatever comes now must not be the body.
				c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				n, _ := io.Copy(io.Discard, br)
				got <- result{int(n)}
				return
			case "silent":
				b, _ := io.ReadAll(r.Body)
				got <- result{len(b)}
				io.WriteString(c, okReply)
			case "hints, then silent":
				// A 103 is not the 100 Continue: the wait for it still
				// ends after the expect timeout, then the body comes.
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
				b, _ := io.ReadAll(r.Body)
				got <- result{len(b)}
				io.WriteString(c, okReply)
			}
		}
	})
	tr := newTestTransport(t, s.Addr, func(o *Options) { o.ExpectContinueTimeout = 200 * time.Millisecond })
	body := strings.Repeat("b", 1000)
	send := func() (*http.Response, string, error) {
		return do(t, tr, &Request{Method: "PUT", Header: http.Header{"Expect": {"100-continue"}},
			Body: strings.NewReader(body), ContentLength: int64(len(body))})
	}

	mode <- "continue"
	res, b, err := send()
	if err != nil || res.StatusCode != 200 || b != "ok" || (<-got).bodyBytes != len(body) {
		t.Fatalf("continue: %v %q %v", res, b, err)
	}
	mode <- "refuse"
	res, b, err = send()
	if err != nil || res.StatusCode != 417 || b != "denied" || !res.Close {
		t.Fatalf("refuse: %v %q %v", res, b, err)
	}
	if r := <-got; r.bodyBytes != 0 {
		t.Errorf("refused: the backend received %d bytes of body", r.bodyBytes)
	}
	mode <- "silent"
	start := time.Now()
	res, b, err = send()
	if err != nil || res.StatusCode != 200 || b != "ok" || (<-got).bodyBytes != len(body) {
		t.Fatalf("silent: %v %q %v", res, b, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("silent backend: body sent after %s, before the expect timeout", d)
	}
	mode <- "hints, then silent"
	res, b, err = send()
	if err != nil || res.StatusCode != 200 || b != "ok" || (<-got).bodyBytes != len(body) {
		t.Fatalf("hints, then silent: %v %q %v", res, b, err)
	}
}

func TestUpgrade(t *testing.T) {
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello\n")
		io.Copy(c, br)
	})
	tr := newTestTransport(t, s.Addr)
	res, err := tr.Do(&Request{Target: "/ws", Header: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"echo"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 101 {
		t.Fatalf("status %d", res.StatusCode)
	}
	rwc, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("body %T is not an io.ReadWriteCloser", res.Body)
	}
	br := bufio.NewReader(rwc)
	if line, err := br.ReadString('\n'); line != "hello\n" || err != nil {
		t.Fatalf("greeting %q %v", line, err)
	}
	io.WriteString(rwc, "ping\n")
	if line, err := br.ReadString('\n'); line != "ping\n" || err != nil {
		t.Fatalf("echo %q %v", line, err)
	}
	rwc.Close()
	eventually(t, "the backend to see the tunnel close", func() bool { return s.Closed() == 1 })
}

// TestStaleConnectionRetry: the backend closes a keep-alive connection
// after each response without saying so. A replayable request that finds
// the closed connection is sent again on a new one; one that is not
// replayable is not, but the closed connection is noticed before it is
// written, when it can be.
func TestStaleConnectionRetry(t *testing.T) {
	s, seen := oneShotBackend(t)
	tr := newTestTransport(t, s.Addr)
	get(t, tr, "/first")
	eventually(t, "the backend to close", func() bool { return s.Closed() == 1 })

	// GET on the stale connection: written, then EOF before any response
	// byte; retried once on a fresh connection.
	if _, body := get(t, tr, "/get"); body != "ok" {
		t.Fatalf("body %q", body)
	}
	eventually(t, "the backend to close", func() bool { return s.Closed() == 2 })

	// POST with a streamed body: not replayable, so the pooled connection
	// is checked before use and found closed.
	payload := strings.Repeat("x", 100<<10)
	res, body, err := do(t, tr, &Request{Method: "POST", Target: "/post", Body: strings.NewReader(payload), ContentLength: int64(len(payload))})
	if err != nil || res.StatusCode != 200 || body != "ok" {
		t.Fatalf("POST: %v %q %v", res, body, err)
	}
	if got, want := fmt.Sprint(seen()), "[GET /first GET /get POST /post]"; got != want {
		t.Errorf("backend saw %v, want %s", got, want)
	}
}

// TestNoRetryAfterResponseStarted and for non-idempotent requests: a
// reused connection the backend resets after reading the request.
func TestStaleRetryOnlyWhenSafe(t *testing.T) {
	// The second request on a connection is read, then the connection
	// closed unanswered.
	s, seen := recordingBackend(t, func(n int) (string, bool) {
		if n == 1 {
			return "", false
		}
		return okReply, true
	})
	tr := newTestTransport(t, s.Addr)
	get(t, tr, "/a")
	// A POST with a small body is complete in the buffer but not
	// idempotent: it must not be sent twice.
	_, _, err := do(t, tr, &Request{Method: "POST", Target: "/post", Body: strings.NewReader("x"), ContentLength: 1})
	if err == nil || !errors.Is(err, io.EOF) {
		t.Fatalf("POST on a connection closed unanswered: err %v, want io.EOF", err)
	}
	get(t, tr, "/b")
	// A PUT with a small body is idempotent and complete in the buffer.
	if _, body, err := do(t, tr, &Request{Method: "PUT", Target: "/put", Body: strings.NewReader("x"), ContentLength: 1}); err != nil || body != "ok" {
		t.Fatalf("PUT: %q %v", body, err)
	}
	if got, want := fmt.Sprint(seen()), "[GET /a POST /post GET /b PUT /put PUT /put]"; got != want {
		t.Errorf("backend saw %v, want %s", got, want)
	}
}

func TestIdleTimeout(t *testing.T) {
	s := okServer(t)
	tr := newTestTransport(t, s.Addr, func(o *Options) { o.IdleConnTimeout = 100 * time.Millisecond })
	get(t, tr, "/")
	eventually(t, "the idle connection to be closed", func() bool { return s.Closed() == 1 })
	tr.mu.Lock()
	idle, open := len(tr.idle), tr.open
	tr.mu.Unlock()
	if idle != 0 || open != 0 {
		t.Errorf("%d idle, %d open after the idle timeout", idle, open)
	}
	get(t, tr, "/")
	if n := s.Accepted(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestMaxIdleConns(t *testing.T) {
	wait, release := gate()
	defer release()
	s := testbackend.Raw(t, serveResponses(func(*http.Request, []byte) string {
		wait()
		return okReply
	}))
	tr := newTestTransport(t, s.Addr, func(o *Options) { o.MaxIdleConns = 2 })
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { get(t, tr, "/") })
	}
	eventually(t, "5 connections", func() bool { return s.Accepted() == 5 })
	release()
	wg.Wait()
	eventually(t, "3 connections closed", func() bool { return s.Closed() == 3 })
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.idle) != 2 || tr.open != 2 {
		t.Errorf("%d idle, %d open; want 2, 2", len(tr.idle), tr.open)
	}
}

func TestMaxConns(t *testing.T) {
	wait, release := gate()
	defer release()
	s := testbackend.Raw(t, serveResponses(func(r *http.Request, _ []byte) string {
		if r.URL.Path == "/slow" {
			wait()
		}
		return okReply
	}))
	tr := newTestTransport(t, s.Addr, func(o *Options) { o.MaxConns = 2; o.DialTimeout = 300 * time.Millisecond })
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { get(t, tr, "/slow") })
	}
	eventually(t, "2 connections", func() bool { return s.Accepted() == 2 })

	// A third request waits for a connection, at most the dial timeout.
	_, _, err := do(t, tr, &Request{Target: "/fast"})
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || !op.Timeout() {
		t.Fatalf("err %v, want a dial error that is a timeout", err)
	}
	// One that waits while a connection frees up gets it.
	done := make(chan string)
	go func() { _, body := get(t, tr, "/fast"); done <- body }()
	time.Sleep(50 * time.Millisecond)
	release()
	if body := <-done; body != "ok" {
		t.Fatalf("body %q", body)
	}
	wg.Wait()
	if n := s.Accepted(); n != 2 {
		t.Errorf("%d connections with MaxConns 2", n)
	}
	// A waiting request whose context ends leaves the queue.
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.waiters) != 0 || tr.open != 2 {
		t.Errorf("%d waiters, %d open", len(tr.waiters), tr.open)
	}
}

func TestDialErrors(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	tr := newTestTransport(t, addr)
	_, _, err := do(t, tr, &Request{Target: "/"})
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err %v, want a dial *net.OpError with ECONNREFUSED", err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.open != 0 {
		t.Errorf("%d open after a failed dial", tr.open)
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		http.ReadRequest(br)
		io.Copy(io.Discard, br) // never answers
	})
	tr := newTestTransport(t, s.Addr, func(o *Options) { o.ResponseHeaderTimeout = 100 * time.Millisecond })
	start := time.Now()
	_, _, err := do(t, tr, &Request{Target: "/"})
	var te interface{ Timeout() bool }
	if !errors.As(err, &te) || !te.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timed out after %s", d)
	}
	eventually(t, "the connection to be closed", func() bool { return s.Closed() == 1 })
}

// TestResponseHeaderTimeoutStartsAfterBody: a slow upload is not cut by
// the response header timeout, which starts once the body is written:
// streamed (chunked), or small enough to go with the head (read whole
// before the write, and then a Start given by the caller is too old).
func TestResponseHeaderTimeoutStartsAfterBody(t *testing.T) {
	s := testbackend.Raw(t, serveResponses(func(_ *http.Request, body []byte) string {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(strconv.Itoa(len(body))), strconv.Itoa(len(body)))
	}))
	tr := newTestTransport(t, s.Addr, func(o *Options) { o.ResponseHeaderTimeout = 200 * time.Millisecond })
	for _, length := range []int64{-1, 3} {
		slow := &slowReader{parts: 3, delay: 100 * time.Millisecond}
		res, body, err := do(t, tr, &Request{Method: "POST", Body: slow, ContentLength: length, Start: time.Now()})
		if err != nil || res.StatusCode != 200 || body != "3" {
			t.Fatalf("slow upload, length %d: %v %q %v", length, res, body, err)
		}
	}
}

type slowReader struct {
	parts int
	delay time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.parts == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.delay)
	r.parts--
	p[0] = 'x'
	return 1, nil
}

func TestContextCancel(t *testing.T) {
	started := make(chan string, 2)
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if r.URL.Path == "/streaming" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst")
		}
		started <- r.URL.Path
		io.Copy(io.Discard, br) // until the client closes
	})
	tr := newTestTransport(t, s.Addr)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, _, err := do(t, tr, &Request{Ctx: ctx, Target: "/waiting"}); errc <- err }()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("waiting: err %v, want context.Canceled", err)
	}
	eventually(t, "the backend to see the close", func() bool { return s.Closed() == 1 })

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	res, err := tr.Do(&Request{Ctx: ctx, Target: "/streaming", Header: http.Header{}})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	buf := make([]byte, 5)
	if _, err := io.ReadFull(res.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(res.Body); !errors.Is(err, context.Canceled) {
		t.Errorf("streaming: err %v, want context.Canceled", err)
	}
	eventually(t, "the backend to see the close", func() bool { return s.Closed() == 2 })
}

// TestTLS talks to an httptest TLS server, and fails to connect to one
// whose certificate is not trusted.
func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "secure "+r.Host)
	}))
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted client's handshake failure
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	tc := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tr := newTestTransport(t, addr, func(o *Options) { o.TLS = tc })
	for range 3 {
		if _, body := get(t, tr, "/"); body != "secure "+addr {
			t.Fatalf("body %q", body)
		}
	}
	// A request that cannot be replayed checks the pooled connection
	// first: a TLS connection with nothing pending passes.
	for range 2 {
		_, body, err := do(t, tr, &Request{Method: "POST", Body: strings.NewReader(strings.Repeat("x", 50<<10)), ContentLength: 50 << 10})
		if err != nil || body != "secure "+addr {
			t.Fatalf("POST: %q %v", body, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d TLS connections, want 1", n)
	}
	untrusted := newTestTransport(t, addr, func(o *Options) { o.TLS = tlsConfigWithoutRoots() })
	_, _, err := do(t, untrusted, &Request{Target: "/"})
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("untrusted certificate: err %v, want a dial error", err)
	}
}

// TestRoundTripper uses the Transport as an http.Client's.
func TestRoundTripper(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		fmt.Fprintf(w, "%s %s %s", r.URL.RequestURI(), b, r.Header.Get("X-A"))
	}))
	defer srv.Close()
	tr := newTestTransport(t, srv.Listener.Addr().String())
	c := &http.Client{Transport: tr}
	res, err := c.Post(srv.URL+"/p?q=1", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "/p?q=1 body " || res.Header.Get("X-Method") != "POST" || res.Request == nil {
		t.Errorf("got %q %v", b, res.Header)
	}
}

// TestConcurrentUse hammers one Transport from many goroutines, with a
// backend that sometimes closes connections, under the race detector.
func TestConcurrentUse(t *testing.T) {
	var n sync.Map
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		for i := 0; ; i++ {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(r.Body)
			n.Store(r.URL.Path, true)
			if i == 7 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+string(body))
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body)
		}
	})
	tr := newTestTransport(t, s.Addr, func(o *Options) { o.MaxIdleConns = 4 })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				want := fmt.Sprintf("g%d-%d", g, i)
				_, body, err := do(t, tr, &Request{Method: "POST", Target: "/" + want, Body: strings.NewReader(want), ContentLength: int64(len(want))})
				if err != nil || body != want {
					t.Errorf("%s: %q %v", want, body, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestUnsolicitedResponseOnIdleConnection: a backend that sends a 408 on
// a connection idle in the pool, then closes it. The next request, even a
// replayable one, must not take that 408 for its answer: this one, a GET
// on a connection reused within idleCheckAfter, is not checked first; it
// takes the 408 on a reused connection for the backend timing it out, and
// is sent again on a new connection.
func TestUnsolicitedResponseOnIdleConnection(t *testing.T) {
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, okReply)
		time.Sleep(100 * time.Millisecond)
		io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		time.Sleep(50 * time.Millisecond)
	})
	tr := newTestTransport(t, s.Addr)
	get(t, tr, "/")
	eventually(t, "the 408 and the close", func() bool { return s.Closed() == 1 })
	res, body := get(t, tr, "/")
	if res.StatusCode != 200 || body != "ok" {
		t.Fatalf("status %d body %q: the unsolicited 408 was taken for the answer", res.StatusCode, body)
	}
}

// TestClose: a retired Transport closes its idle connections, and those in
// use when their exchange ends.
func TestClose(t *testing.T) {
	wait, release := gate()
	defer release()
	s := testbackend.Raw(t, serveResponses(func(r *http.Request, _ []byte) string {
		if r.URL.Path == "/slow" {
			wait()
		}
		return okReply
	}))
	tr := newTestTransport(t, s.Addr)
	done := make(chan struct{})
	go func() { get(t, tr, "/slow"); close(done) }()
	eventually(t, "1 connection", func() bool { return s.Accepted() == 1 })
	get(t, tr, "/") // on a second connection, then idle
	tr.Close()
	eventually(t, "the idle one closed", func() bool { return s.Closed() == 1 })
	release()
	<-done
	eventually(t, "the busy one closed after its exchange", func() bool { return s.Closed() == 2 })
}

// TestLateBytesAfterResponseNeverReachTheNextRequest: a backend answers
// HEAD with a Content-Length and then, wrongly, sends a body (here a whole
// forged response) a moment later, after the connection went back to the
// pool. The next request on that connection must not take those bytes for
// its answer: a connection is checked before its reuse after a HEAD (it is
// suspect; see also TestLateBytesNeverReachTheNextRequest).
func TestLateBytesAfterResponseNeverReachTheNextRequest(t *testing.T) {
	sent := make(chan struct{})
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.Method == "HEAD" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n")
				time.Sleep(50 * time.Millisecond) // after the pool took the connection back
				io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Evil: 1\r\nContent-Length: 5\r\n\r\nevil!")
				close(sent)
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
		}
	})
	tr := newTestTransport(t, s.Addr)
	if _, _, err := do(t, tr, &Request{Method: "HEAD", Target: "/"}); err != nil {
		t.Fatal(err)
	}
	<-sent
	res, body := get(t, tr, "/")
	if res.Header.Get("X-Evil") != "" || body != "good" {
		t.Fatalf("the next request got the late bytes: X-Evil %q, body %q", res.Header.Get("X-Evil"), body)
	}
}

// TestResponseHeaderTimeoutStartsAfterTheWrite: time spent waiting for a
// free connection (the backend at MaxConns) is not the backend being slow,
// even when the caller gave the exchange's Start.
// The second request waits ~250ms for the connection, then is answered
// 100ms after it was sent: well within a 300ms response-header timeout
// counted from the write, though not from the start of the exchange.
func TestResponseHeaderTimeoutStartsAfterTheWrite(t *testing.T) {
	started := make(chan struct{}, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A backend this slow: 250ms for /hold, 100ms for the rest.
		if r.URL.Path == "/hold" {
			started <- struct{}{}
			time.Sleep(250 * time.Millisecond)
		} else {
			time.Sleep(100 * time.Millisecond)
		}
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	tr := newTestTransport(t, strings.TrimPrefix(backend.URL, "http://"), func(o *Options) {
		o.MaxConns = 1
		o.ResponseHeaderTimeout = 300 * time.Millisecond
	})
	held := make(chan error, 1)
	go func() {
		_, _, err := do(t, tr, &Request{Method: "GET", Target: "/hold"})
		held <- err
	}()
	<-started // /hold has the only connection
	// Start, as the proxy gives it: too old once the request has waited.
	if _, body, err := do(t, tr, &Request{Method: "GET", Target: "/quick", Start: time.Now()}); err != nil || body != "ok" {
		t.Fatalf("request that waited for the connection: %q, %v", body, err)
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
}

// TestResponseValuesInCallersSpace: given room enough in ResponseValues,
// the values of the final response's fields are kept there (the proxy
// passes the ResponseWriter's per-connection array: no allocation for
// them); without it they are not.
func TestResponseValuesInCallersSpace(t *testing.T) {
	s := okServer(t)
	tr := newTestTransport(t, s.Addr)
	for _, room := range []int{4, 0} {
		var vals [4]string
		dst := make(http.Header)
		res, err := tr.Do(&Request{Method: "GET", Target: "/", Host: "a", Space: new(ResponseSpace),
			ResponseHeader: dst, ResponseValues: vals[:room]})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(res.Body); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		v := dst["Content-Length"]
		if len(v) != 1 || v[0] != "2" {
			t.Fatalf("room %d: Content-Length %q, want [2]", room, v)
		}
		if inRoom := &v[0] == &vals[0]; inRoom != (room > 0) {
			t.Errorf("room %d: value kept in ResponseValues: %v", room, inRoom)
		}
	}
}

// TestPlainConnectionsUseSockio: a plain TCP connection to a backend is
// read and written through a sockio.Socket where the system has one (Linux).
func TestPlainConnectionsUseSockio(t *testing.T) {
	s := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readHeadString(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tr := newTestTransport(t, s.Addr)
	if _, _, err := do(t, tr, &Request{Method: "GET", Target: "/", Host: "b.test"}); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.idle) != 1 {
		t.Fatalf("%d idle connections, want 1", len(tr.idle))
	}
	if _, got := tr.idle[0].sock.(*sockio.Socket); got != (runtime.GOOS == "linux") {
		t.Errorf("connection read through a sockio.Socket: %v on %s", got, runtime.GOOS)
	}
}
