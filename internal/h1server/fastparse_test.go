package h1server

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/lbproject/load_balancer/internal/linecache"
	"golang.org/x/net/http/httpguts"
)

// fastParseSeeds are request heads of the kinds the fast path takes and of
// the kinds it must leave to net/http.
var fastParseSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /p/q?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n",
	"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: \"close\"\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: a\r\nx-custom_header: v\r\ncookie: a=1\r\ncookie: b=2\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Tabs:\t v \t\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n1234567",
	"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	// Left to net/http:
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET /%41 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /p? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
	"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"FOO / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
}

// FuzzFastParse: whatever parseFast accepts, net/http's http.ReadRequest
// accepts too and reads the same way (method, target, URL, version, Host,
// header fields, Content-Length, Close, where the head ends).
func FuzzFastParse(f *testing.F) {
	for _, s := range fastParseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastParse(t, data)
	})
}

func checkFastParse(t *testing.T, data []byte) (accepted bool) {
	t.Helper()
	// Three times with one line cache and field memo, as a connection
	// reads its heads: alone, after another head, and after itself (its
	// lines' strings and splits reused); each must read the same.
	cache, memo := new(linecache.Cache), new(fieldMemo)
	for pass := range 3 {
		if pass == 1 {
			other := []byte("GET /o HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\nAccept: */*\r\nCookie: c=1\r\n\r\n")
			parseFast(other, new(fastHead), make(http.Header), nil, cache, memo)
		}
		var h fastHead
		header := make(http.Header)
		vals := make([]string, 4) // short, so that both ways of storing a value run
		ok := parseFast(data, &h, header, vals, cache, memo)
		for i := range memo.Len() {
			if line, f := memo.At(i); !cache.Holds(line) || !cache.Holds(f.value) {
				t.Fatalf("after %q the memo holds line %d %q, which the line cache does not", data, i, line)
			}
		}
		if pass == 0 {
			accepted = ok
		} else if ok != accepted {
			t.Fatalf("fast path took %q: %v, then (pass %d) with its lines cached: %v", data, accepted, pass, ok)
		}
		if !ok {
			return false
		}
		br := bufio.NewReaderSize(bytes.NewReader(data), len(data)+16)
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("fast path accepted what net/http refuses (%v): %q", err, data)
		}
		got := []any{h.method, h.target, h.path, h.query, h.minor, h.host, h.contentLength, h.close, header}
		want := []any{req.Method, req.RequestURI, req.URL.Path, req.URL.RawQuery, req.ProtoMinor, req.Host, req.ContentLength, req.Close, req.Header}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast path read %q as\n%#v\nnet/http as\n%#v", data, got, want)
		}
		// checkRequest trusts what the fast path took: valid names and
		// values, no Expect.
		for k, vv := range header {
			if !httpguts.ValidHeaderFieldName(k) {
				t.Fatalf("fast path took %q with the invalid field name %q", data, k)
			}
			for _, v := range vv {
				if !httpguts.ValidHeaderFieldValue(v) {
					t.Fatalf("fast path took %q with the invalid field value %q", data, v)
				}
			}
		}
		if _, ok := header["Expect"]; ok {
			t.Fatalf("fast path took %q with an Expect field", data)
		}
		if rest := len(data) - h.size; br.Buffered() != rest {
			t.Fatalf("fast path ends the head of %q %d bytes before the end, net/http %d", data, rest, br.Buffered())
		}
	}
	return true
}

// TestFastParseSeeds: the seeds the fast path must take are taken (the
// point of the fast path), the others are left to net/http, and what is
// taken is read as net/http reads it.
func TestFastParseSeeds(t *testing.T) {
	const taken = 11 // the first seeds, up to "Left to net/http"
	for i, s := range fastParseSeeds {
		accepted := checkFastParse(t, []byte(s))
		if want := i < taken && !strings.Contains(s, `"close"`); accepted != want {
			t.Errorf("seed %d %q: fast path took it: %v, want %v", i, s, accepted, want)
		}
	}
}

// TestFixedBody: a body of known length ends with io.EOF after exactly its
// bytes, and a connection that ends early is io.ErrUnexpectedEOF.
func TestFixedBody(t *testing.T) {
	for _, tc := range []struct {
		input string
		n     int64
		want  string
		err   error
	}{
		{"hello, next request", 5, "hello", nil},
		{"hel", 5, "hel", io.ErrUnexpectedEOF},
	} {
		c := &conn{br: bufio.NewReader(strings.NewReader(tc.input))}
		got, err := io.ReadAll(&fixedBody{c: c, n: tc.n})
		if string(got) != tc.want || err != tc.err {
			t.Errorf("%q, length %d: read %q, %v; want %q, %v", tc.input, tc.n, got, err, tc.want, tc.err)
		}
	}
}

// TestFastParseMemo: a field line that repeats the one at its position in
// the connection's last head takes the memo's split, and after a head the
// line cache does not keep, the memo holds nothing.
func TestFastParseMemo(t *testing.T) {
	cache, memo := new(linecache.Cache), new(fieldMemo)
	parse := func(raw string) http.Header {
		t.Helper()
		header := make(http.Header)
		if !parseFast([]byte(raw), new(fastHead), header, nil, cache, memo) {
			t.Fatalf("fast path did not take %q", raw)
		}
		return header
	}
	parse("GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: u1\r\nAccept: */*\r\n\r\n")
	if memo.Len() != 3 {
		t.Fatalf("after a head of 3 fields the memo holds %d", memo.Len())
	}
	// A value planted (a part of the line, as the memo's values are)
	// shows that the memo is used.
	line, f := memo.At(2)
	memo.Put(2, line, field{f.key, line[:len("Accept")]})
	h := parse("GET /2 HTTP/1.1\r\nHost: a\r\nUser-Agent: u2\r\nAccept: */*\r\n\r\n")
	if h.Get("Accept") != "Accept" || h.Get("User-Agent") != "u2" {
		t.Errorf("read as %v; want Accept from the memo, User-Agent u2", h)
	}
	parse("GET / HTTP/1.1\r\nHost: a\r\nCookie: " + strings.Repeat("c", linecache.MaxKept) + "\r\n\r\n")
	if memo.Len() != 0 {
		t.Errorf("after a head the line cache does not keep, the memo holds %d lines", memo.Len())
	}
}
