package h1server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fuzzEcho describes the request in the X-Echo field (HEAD responses
// included) and in the body; a target containing "flush" makes it stream
// the body (chunked, or close-delimited to HTTP/1.0 clients).
func fuzzEcho(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(http.ErrAbortHandler) // a truncated body: no response
	}
	e := echoOf(r.Method, r.RequestURI, r.Host, body)
	w.Header().Set("X-Echo", e)
	if strings.Contains(r.RequestURI, "flush") {
		io.WriteString(w, e[:len(e)/2])
		w.(http.Flusher).Flush()
		io.WriteString(w, e[len(e)/2:])
		return
	}
	io.WriteString(w, e)
}

func echoOf(method, target, host string, body []byte) string {
	return strconv.Quote(method) + " " + strconv.Quote(target) + " " + strconv.Quote(host) + " " + strconv.Quote(string(body))
}

// fuzzHeadLimit is the head limit of the fuzzed server.
const fuzzHeadLimit = 8192

// FuzzServer writes arbitrary bytes on a connection of h1server (default,
// then lean: see Server.LeanAbove) (then ends
// its side of it) and reads everything the server sends until it closes
// the connection. The server must not panic (a panic ends the process),
// must not hang (every read is bounded), and must answer with a well-formed
// sequence of responses: 200s from the handler, each for a request that
// http.ReadRequest also reads from the same bytes at the same place, with
// the same method, target, Host and body (h1server accepts a subset of what
// net/http's parser does), whose head is within the limit, optionally
// followed by one of the server's error replies, then nothing.
func FuzzServer(f *testing.F) {
	for _, tc := range diffCases {
		f.Add([]byte(tc.raw))
	}
	for _, s := range []string{
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
		"PUT * HTTP/1.1\r\nHost: a\r\n\r\n",
		"P / HTTP/1.1\nHost:\n\n",
		"HEAD /flush HTTP/1.1\r\nHost: a\r\n\r\nGET /flush HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		"GET /flush HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 1200) + "\r\n",
		"\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /" + strings.Repeat("a", fuzzHeadLimit) + " HTTP/1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	addr := serve(f, &Server{Handler: http.HandlerFunc(fuzzEcho), MaxHeaderBytes: fuzzHeadLimit})
	lean := serveLean(f, &Server{Handler: http.HandlerFunc(fuzzEcho), MaxHeaderBytes: fuzzHeadLimit})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 64<<10 {
			t.Skip()
		}
		for _, a := range []string{addr, lean} {
			out, reset := roundTripRaw(t, a, in)
			if err := checkResponses(in, out, reset); err != nil {
				if a == lean {
					t.Fatalf("lean server: %v", err)
				}
				t.Fatal(err)
			}
		}
	})
}

// roundTripRaw writes in on a new connection, closes the write side, and
// reads until the server closes. reset reports a connection reset (the
// server closed with unread input).
func roundTripRaw(t *testing.T, addr string, in []byte) (out []byte, reset bool) {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * ioTimeout))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if _, err := c.Write(in); err == nil {
			c.(*net.TCPConn).CloseWrite()
		}
	}()
	out, err = io.ReadAll(c)
	c.Close()
	<-wrote
	if isTimeout(err) {
		t.Fatalf("the server neither answered nor closed in %v; got %q for %q", 2*ioTimeout, out, in)
	}
	return out, err != nil
}

// reference is what http.ReadRequest reads from the same bytes.
type reference struct {
	method string
	echo   string
	head   int // bytes of the request head
}

func referenceParse(in []byte) []reference {
	var refs []reference
	src := bytes.NewReader(in)
	br := bufio.NewReader(src)
	consumed := func() int { return len(in) - src.Len() - br.Buffered() }
	for {
		if len(refs) > 0 && refs[len(refs)-1].method == http.MethodPost {
			// As net/http's server (and h1server): up to 4 CR or LF
			// after a POST are an old client's extra CRLF.
			peek, _ := br.Peek(4)
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			br.Discard(n)
		}
		start := consumed()
		req, err := http.ReadRequest(br)
		if err != nil {
			return refs
		}
		head := consumed() - start
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return refs
		}
		refs = append(refs, reference{req.Method, echoOf(req.Method, req.RequestURI, req.Host, body), head})
	}
}

// serverErrors are the statuses of h1server's own replies.
var serverErrors = map[int]bool{400: true, 414: true, 417: true, 431: true, 501: true, 505: true}

// checkResponses checks the server's output out for the input in (see
// FuzzServer).
func checkResponses(in, out []byte, reset bool) error {
	refs := referenceParse(in)
	br := bufio.NewReader(bytes.NewReader(out))
	served := 0
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return nil
		}
		method := "GET"
		if served < len(refs) {
			method = refs[served].method
		}
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			if reset {
				return nil // the connection's end may have cut the output short
			}
			return fmt.Errorf("malformed response stream after %d responses: %v\ninput %q\noutput %q", served, err, in, out)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil && !reset {
			return fmt.Errorf("response %d: body: %v\ninput %q\noutput %q", served, err, in, out)
		}
		switch {
		case res.StatusCode == 100:
		case res.StatusCode == 200:
			if served >= len(refs) {
				return fmt.Errorf("response %d is a 200, but http.ReadRequest reads only %d requests\ninput %q\noutput %q", served, len(refs), in, out)
			}
			ref := refs[served]
			if got := res.Header.Get("X-Echo"); got != ref.echo {
				return fmt.Errorf("request %d: h1server read %s, http.ReadRequest %s\ninput %q", served, got, ref.echo, in)
			}
			if ref.head > fuzzHeadLimit {
				return fmt.Errorf("request %d: head of %d bytes accepted, limit %d\ninput %q", served, ref.head, fuzzHeadLimit, in)
			}
			if method != "HEAD" && string(body) != ref.echo && err == nil {
				return fmt.Errorf("request %d: body %q, want %q\ninput %q", served, body, ref.echo, in)
			}
			served++
		case serverErrors[res.StatusCode]:
			rest, _ := io.ReadAll(br)
			if method == "HEAD" && int64(len(rest)) == res.ContentLength {
				// The server's replies carry their text even to HEAD (as
				// net/http's do), just before closing the connection.
				rest = nil
			}
			if len(rest) > 0 {
				return fmt.Errorf("bytes after the error reply %d: %q\ninput %q", res.StatusCode, rest, in)
			}
			return nil
		default:
			return fmt.Errorf("unexpected status %d\ninput %q\noutput %q", res.StatusCode, in, out)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
	}
}

// TestFuzzChecker: the checks of FuzzServer catch what they are for.
func TestFuzzChecker(t *testing.T) {
	get := "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
	ok := func(echo string) string {
		body := echo
		return "HTTP/1.1 200 OK\r\nX-Echo: " + echo + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	good := echoOf("GET", "/x", "a", nil)
	for _, tc := range []struct {
		name, in, out string
		wantErr       bool
	}{
		{"served as parsed", get, ok(good), false},
		{"rejected", get, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false},
		{"read otherwise", get, ok(echoOf("GET", "/y", "a", nil)), true},
		{"accepted what http.ReadRequest rejects", "GET /x HTTP/1.1 extra\r\nHost: a\r\n\r\n", ok(good), true},
		{"one response too many", get, ok(good) + ok(good), true},
		{"bytes after an error reply", get, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n", true},
		{"malformed stream", get, ok(good) + "garbage\r\n\r\n", true},
		{"head over the limit", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("x", fuzzHeadLimit) + "\r\n\r\n", ok(echoOf("GET", "/", "a", nil)), true},
	} {
		err := checkResponses([]byte(tc.in), []byte(tc.out), false)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: %v, want error %v", tc.name, err, tc.wantErr)
		}
	}
}
