package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/linecache"
)

// Fuzz targets of every parser in the package. Run one with, e.g.:
//
//	go test ./internal/upstream/h1 -run '^$' -fuzz '^FuzzResponse$' -fuzztime 60s
//
// Without -fuzz, the seeds below run as ordinary tests.

var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-A\r\n\r\n5;a=b\r\nhello\r\n3\r\nabc\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"HTTP/1.0 200 OK\r\n\r\nuntil the end",
	"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A : a\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"\r\nHTTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
}

// FuzzResponse reads whole responses (heads, 1xx, every body framing) and
// compares what it accepts with net/http's reading of the same bytes: when
// both read a final response completely, status and body must agree, so
// that the two can never frame a message differently.
func FuzzResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		status, body, trailer, informational, err := readResponseBytes(data, method)
		if err != nil {
			return
		}
		if status < 100 || status > 599 {
			t.Fatalf("accepted status %d", status)
		}
		for k, vv := range trailer {
			if !isToken(k) || forbiddenTrailer(k) {
				t.Fatalf("trailer field %q", k)
			}
			for _, v := range vv {
				if !validValue(v) {
					t.Fatalf("trailer value %q", v)
				}
			}
		}
		if informational > 0 {
			return // net/http's ReadResponse returns the 1xx itself
		}
		res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), &http.Request{Method: method})
		if err != nil {
			return
		}
		goBody, err := io.ReadAll(res.Body)
		if err != nil {
			return
		}
		if res.StatusCode != status || !bytes.Equal(goBody, body) {
			t.Fatalf("net/http reads status %d body %q; h1 reads %d %q", res.StatusCode, goBody, status, body)
		}
		for k, vv := range trailer {
			if strings.Join(res.Trailer[k], "\x00") != strings.Join(vv, "\x00") {
				t.Fatalf("trailer %s: net/http %q, h1 %q", k, res.Trailer[k], vv)
			}
		}
	})
}

// readResponseBytes reads one response from data as the Transport reads
// a response to a request with method (without a body), and its body.
func readResponseBytes(data []byte, method string) (status int, body []byte, trailer http.Header, informational int, err error) {
	tr := New(Options{Addr: "fuzz.test:80"})
	c := newConn(tr, &memConn{r: bytes.NewReader(data)})
	tr.open = 1
	c.attach()
	var h head
	for {
		if _, err := c.br.Peek(1); err != nil {
			return 0, nil, nil, 0, err
		}
		h = head{}
		if err := c.readHead(&h); err != nil {
			return 0, nil, nil, 0, err
		}
		if h.status >= 200 || h.status == http.StatusSwitchingProtocols {
			break
		}
		if informational++; informational > maxInformational {
			return 0, nil, nil, 0, protoErr("too many informational responses")
		}
	}
	for k, vv := range h.header {
		if !isToken(k) || k != http.CanonicalHeaderKey(k) {
			return 0, nil, nil, 0, errors.New("bad key " + strconv.Quote(k))
		}
		for _, v := range vv {
			if !validValue(v) || v != trimOWS(v) {
				return 0, nil, nil, 0, errors.New("bad value " + strconv.Quote(v))
			}
		}
	}
	if h.chunked && h.contentLength >= 0 {
		return 0, nil, nil, 0, errors.New("both chunked and Content-Length")
	}
	res, err := c.response(context.Background(), new(ResponseSpace), method, false, &h, framing{})
	if err != nil {
		return 0, nil, nil, 0, err
	}
	body, err = io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	if res.ContentLength >= 0 && method != http.MethodHead && int64(len(body)) != res.ContentLength {
		panic("body length differs from Content-Length")
	}
	return res.StatusCode, body, res.Trailer, informational, nil
}

// memConn is a net.Conn that reads from r and discards writes.
type memConn struct{ r io.Reader }

func (c *memConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return tcpAddr("local:1") }
func (c *memConn) RemoteAddr() net.Addr             { return tcpAddr("remote:1") }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzParseHead checks the invariants of accepted response heads.
func FuzzParseHead(f *testing.F) {
	typical := "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n"
	for _, s := range responseSeeds {
		if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
			f.Add([]byte(typical), []byte(s[:i+4]))
			f.Add([]byte(s[:i+4]), []byte(typical))
		}
	}
	f.Fuzz(func(t *testing.T, prev, data []byte) {
		// data read alone, then after prev and again after itself with
		// one line cache and field memo (as a connection reads its
		// heads): the later parses reuse strings and split lines, and
		// must read the same.
		h := head{}
		err := parseHead(data, &h)
		cache, memo := new(linecache.Cache), new(fieldMemo)
		parseHead(prev, &head{lines: cache, memo: memo})
		for _, when := range []string{"after prev", "twice"} {
			again := head{lines: cache, memo: memo}
			err2 := parseHead(data, &again)
			if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(h.header, again.header) ||
				h.status != again.status || h.contentLength != again.contentLength || h.chunked != again.chunked ||
				h.connClose != again.connClose || !reflect.DeepEqual(h.trailer, again.trailer) {
				t.Fatalf("%q read %s: %v %v, then %v %v", data, when, err, h.header, err2, again.header)
			}
			if !cache.Kept() && memo.Len() != 0 {
				t.Fatalf("memo holds %d lines with the line cache keeping none", memo.Len())
			}
			checkMemoHeld(t, memo, cache)
		}
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ProtocolError", err)
			}
			return
		}
		if h.status < 100 || h.status > 599 || h.minor > 1 {
			t.Fatalf("status %d minor %d", h.status, h.minor)
		}
		if h.chunked && h.contentLength >= 0 {
			t.Fatal("chunked with a Content-Length")
		}
		if cl := h.header["Content-Length"]; len(cl) > 1 || len(cl) == 1 && cl[0] != strconv.FormatInt(h.contentLength, 10) {
			t.Fatalf("Content-Length %q, parsed %d", cl, h.contentLength)
		}
		for _, k := range []string{"Transfer-Encoding", "Trailer"} {
			if _, ok := h.header[k]; ok {
				t.Fatalf("%s left in the header", k)
			}
		}
		for k, vv := range h.header {
			if !isToken(k) || k != http.CanonicalHeaderKey(k) {
				t.Fatalf("key %q", k)
			}
			for _, v := range vv {
				if !validValue(v) || v != trimOWS(v) {
					t.Fatalf("value %q", v)
				}
			}
		}
	})
}

// FuzzChunkLine checks the chunk-size line parser against strconv.
func FuzzChunkLine(f *testing.F) {
	for _, s := range []string{"0", "5", "00ff", "a;x=y", "1 ; x = \"q\\\"\"", "ffffffffffffffff", "1;", " 1", "1 junk"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		n, err := parseChunkLine(line)
		if err != nil {
			return
		}
		i := 0
		for i < len(line) && unhex(line[i]) >= 0 {
			i++
		}
		want, perr := strconv.ParseInt(string(line[:i]), 16, 64)
		if perr != nil || want != n || n < 0 {
			t.Fatalf("parseChunkLine(%q) = %d; strconv says %d, %v", line, n, want, perr)
		}
		for _, c := range line {
			if c < ' ' && c != '\t' || c == 0x7f {
				t.Fatalf("accepted control byte %#x in %q", c, line)
			}
		}
	})
}

// FuzzRequestHead writes request heads from arbitrary parts: a head that
// is written must read back with net/http as exactly one request with the
// same fields; nothing can be smuggled through a value.
func FuzzRequestHead(f *testing.F) {
	f.Add("GET", "/a?b", "example.test", "X-A", "value", int64(-2))
	f.Add("POST", "/", "h", "X-A", "a\r\nX-B: b", int64(5))
	f.Add("PUT", "*", "h:80", "X A", "v", int64(-1))
	f.Add("GET", "/\r\nGET /x", "h", "X", "v", int64(-2))
	f.Fuzz(func(t *testing.T, method, target, host, name, value string, length int64) {
		r := &Request{Method: method, Target: target, Host: host, Header: http.Header{name: {value}}}
		if length > -2 {
			r.Body = strings.NewReader("")
			r.ContentLength = max(length, -1)
		}
		b, err := appendHead(nil, r, "default.test", requestFraming(r))
		if err != nil {
			return
		}
		br := bufio.NewReader(bytes.NewReader(b))
		got, err := http.ReadRequest(br)
		if err != nil {
			// net/http is stricter about some targets and methods; what
			// matters is that a head it reads is the one written.
			return
		}
		if br.Buffered() != 0 {
			t.Fatalf("%q: %d bytes after the request head", b, br.Buffered())
		}
		if target != "*" && target[0] != '/' {
			t.Fatalf("%q: target %q is not in origin form", b, target)
		}
		if got.Method != r.method() || got.RequestURI != target || got.Host != host && host != "" {
			t.Fatalf("%q read back as %s %s %s", b, got.Method, got.RequestURI, got.Host)
		}
		if skipped := name == "Host" || http.CanonicalHeaderKey(name) == "Content-Length" ||
			http.CanonicalHeaderKey(name) == "Transfer-Encoding" || http.CanonicalHeaderKey(name) == "Trailer" ||
			http.CanonicalHeaderKey(name) == "Host"; !skipped {
			if vv := got.Header[http.CanonicalHeaderKey(name)]; len(vv) == 0 || vv[len(vv)-1] != strings.Trim(value, " \t") {
				t.Fatalf("%q: field %s read back as %q, want %q", b, name, vv, value)
			}
		}
	})
}

// FuzzValidValue checks validValue, which looks at eight bytes at a time,
// against the byte-by-byte rule.
func FuzzValidValue(f *testing.F) {
	for _, s := range []string{"", "text/html", "a\tb", "0123456789abcdef\x7f", "xxxxxxxx\r\nyyyy", "é€ obs-text \xff\x80", "\x1f2345678", "12345678\x00", "abc\x7fdefgh", "abcdefg\x00ijklmnop"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := validValue(v), validValueBytes(v); got != want {
			t.Fatalf("validValue(%q) = %v, byte by byte %v", v, got, want)
		}
	})
}
