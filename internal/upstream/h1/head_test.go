package h1

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/lbproject/load_balancer/internal/linecache"
)

func TestParseHeadValid(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		status     int
		minor      int
		cl         int64
		chunked    bool
		ambiguous  bool
		close      bool
		header     http.Header
		trailer    []string
	}{
		{name: "basic", head: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
			status: 200, minor: 1, cl: 5, header: http.Header{"Content-Length": {"5"}, "Content-Type": {"text/plain"}}},
		{name: "bare LF line ends", head: "HTTP/1.1 200 OK\nContent-Length: 5\n\n",
			status: 200, minor: 1, cl: 5, header: http.Header{"Content-Length": {"5"}}},
		{name: "no reason phrase, no space", head: "HTTP/1.1 204\r\n\r\n", status: 204, minor: 1, cl: -1, header: http.Header{}},
		{name: "empty reason phrase", head: "HTTP/1.1 204 \r\n\r\n", status: 204, minor: 1, cl: -1, header: http.Header{}},
		{name: "reason with obs-text and tab", head: "HTTP/1.1 404 Nicht\tGef\xfcnden\r\n\r\n", status: 404, minor: 1, cl: -1, header: http.Header{}},
		{name: "HTTP/1.0", head: "HTTP/1.0 200 OK\r\n\r\n", status: 200, minor: 0, cl: -1, header: http.Header{}},
		{name: "higher minor read as 1.1", head: "HTTP/1.2 200 OK\r\n\r\n", status: 200, minor: 1, cl: -1, header: http.Header{}},
		{name: "lower-case names canonicalized", head: "HTTP/1.1 200 OK\r\ncontent-type: a\r\nx-custom-thing: b\r\n\r\n",
			status: 200, minor: 1, cl: -1, header: http.Header{"Content-Type": {"a"}, "X-Custom-Thing": {"b"}}},
		{name: "OWS trimmed, inner kept", head: "HTTP/1.1 200 OK\r\nX-A: \t a  b \t\r\nX-Empty:\r\n\r\n",
			status: 200, minor: 1, cl: -1, header: http.Header{"X-A": {"a  b"}, "X-Empty": {""}}},
		{name: "repeated fields in order", head: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nVary: x\r\nSet-Cookie: b=2\r\n\r\n",
			status: 200, minor: 1, cl: -1, header: http.Header{"Set-Cookie": {"a=1", "b=2"}, "Vary": {"x"}}},
		{name: "identical Content-Length repeated", head: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
			status: 200, minor: 1, cl: 3, header: http.Header{"Content-Length": {"3"}}},
		{name: "identical Content-Length list", head: "HTTP/1.1 200 OK\r\nContent-Length: 42, 42\r\n\r\n",
			status: 200, minor: 1, cl: 42, header: http.Header{"Content-Length": {"42"}}},
		{name: "Content-Length leading zeros", head: "HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n",
			status: 200, minor: 1, cl: 7, header: http.Header{"Content-Length": {"7"}}},
		{name: "chunked", head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n",
			status: 200, minor: 1, cl: -1, chunked: true, header: http.Header{}},
		{name: "chunked and Content-Length: chunked wins, CL removed", head: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n",
			status: 200, minor: 1, cl: -1, chunked: true, ambiguous: true, header: http.Header{}},
		{name: "Connection close", head: "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\n\r\n",
			status: 200, minor: 1, cl: -1, close: true, header: http.Header{"Connection": {"keep-alive, Close"}}},
		{name: "Trailer announced", head: "HTTP/1.1 200 OK\r\nTrailer: x-checksum, X-Other, Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
			status: 200, minor: 1, cl: -1, chunked: true, header: http.Header{}, trailer: []string{"X-Checksum", "X-Other"}},
		{name: "status 599", head: "HTTP/1.1 599 Custom\r\n\r\n", status: 599, minor: 1, cl: -1, header: http.Header{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h head
			if err := parseHead([]byte(tc.head), &h); err != nil {
				t.Fatalf("parseHead: %v", err)
			}
			if h.status != tc.status || h.minor != tc.minor || h.contentLength != tc.cl || h.chunked != tc.chunked ||
				h.ambiguous != tc.ambiguous || h.connClose != tc.close {
				t.Errorf("got status %d minor %d cl %d chunked %v ambiguous %v close %v",
					h.status, h.minor, h.contentLength, h.chunked, h.ambiguous, h.connClose)
			}
			if !reflect.DeepEqual(h.header, tc.header) {
				t.Errorf("header %v, want %v", h.header, tc.header)
			}
			var trailer []string
			for k := range h.trailer {
				trailer = append(trailer, k)
			}
			if len(trailer) != len(tc.trailer) {
				t.Errorf("trailer %v, want %v", trailer, tc.trailer)
			}
			for _, k := range tc.trailer {
				if _, ok := h.trailer[k]; !ok {
					t.Errorf("trailer %v lacks %q", h.trailer, k)
				}
			}
		})
	}
}

func TestParseHeadInvalid(t *testing.T) {
	for name, raw := range map[string]string{
		"empty line first":                "\r\nHTTP/1.1 200 OK\r\n\r\n",
		"letters in status":               "HTTP/1.1 abc OK\r\n\r\n",
		"four-digit status":               "HTTP/1.1 2000 OK\r\n\r\n",
		"two-digit status":                "HTTP/1.1 20 OK\r\n\r\n",
		"status below 100":                "HTTP/1.1 099 Odd\r\n\r\n",
		"status above 599":                "HTTP/1.1 600 Odd\r\n\r\n",
		"bad version":                     "FOO/1.1 200 OK\r\n\r\n",
		"lower-case version":              "http/1.1 200 OK\r\n\r\n",
		"HTTP/2":                          "HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/0.9":                        "HTTP/0.9 200 OK\r\n\r\n",
		"no space after version":          "HTTP/1.1200 OK\r\n\r\n",
		"two spaces after version":        "HTTP/1.1  200 OK\r\n\r\n",
		"no space before reason":          "HTTP/1.1 200OK\r\n\r\n",
		"CTL in reason":                   "HTTP/1.1 200 O\x01K\r\n\r\n",
		"bare CR in reason":               "HTTP/1.1 200 O\rK\r\n\r\n",
		"garbage":                         "this is not http\r\n\r\n",
		"obs-fold":                        "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n",
		"obs-fold with tab":               "HTTP/1.1 200 OK\r\nX-A: a\r\n\tb\r\n\r\n",
		"space before first field":        "HTTP/1.1 200 OK\r\n X-A: a\r\n\r\n",
		"space before colon":              "HTTP/1.1 200 OK\r\nX-A : a\r\n\r\n",
		"tab before colon":                "HTTP/1.1 200 OK\r\nX-A\t: a\r\n\r\n",
		"no colon":                        "HTTP/1.1 200 OK\r\nX-A a\r\n\r\n",
		"empty name":                      "HTTP/1.1 200 OK\r\n: a\r\n\r\n",
		"non-token name":                  "HTTP/1.1 200 OK\r\nX(A): a\r\n\r\n",
		"NUL in value":                    "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n",
		"bare CR in value":                "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
		"CR as line end":                  "HTTP/1.1 200 OK\r\nX-A: a\r\r\n\r\n",
		"DEL in value":                    "HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\n\r\n",
		"ESC in value":                    "HTTP/1.1 200 OK\r\nX-A: a\x1bb\r\n\r\n",
		"conflicting Content-Length":      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
		"conflicting Content-Length list": "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n",
		"Content-Length word":             "HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\n",
		"Content-Length negative":         "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"Content-Length plus":             "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
		"Content-Length empty":            "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
		"Content-Length inner space":      "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
		"Content-Length hex":              "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
		"Content-Length empty element":    "HTTP/1.1 200 OK\r\nContent-Length: 1,,1\r\n\r\n",
		"Content-Length overflow":         "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"Transfer-Encoding gzip":          "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"Transfer-Encoding gzip, chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"chunked twice":                   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		"chunked in HTTP/1.0":             "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"Transfer-Encoding identity":      "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
		"invalid Trailer name":            "HTTP/1.1 200 OK\r\nTrailer: a b\r\n\r\n",
		"no end of head":                  "HTTP/1.1 200 OK\r\nX-A: a\r\n",
		"no end of head, a CR last":       "HTTP/1.1 200 OK\r\nX-A: a\r\n\r",
		"bytes after head":                "HTTP/1.1 200 OK\r\n\r\nX",
		"too many fields":                 "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: a\r\n", maxFields+1) + "\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			var h head
			err := parseHead([]byte(raw), &h)
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("parseHead(%q) = %v, want a ProtocolError", raw, err)
			}
		})
	}
}

func TestHeadEnd(t *testing.T) {
	for _, tc := range []struct {
		b    string
		want int
	}{
		{"HTTP/1.1 200 OK\r\n\r\nbody", 19},
		{"HTTP/1.1 200 OK\n\nbody", 17},
		{"HTTP/1.1 200 OK\r\nA: b\r\n\r\n", 25},
		{"HTTP/1.1 200 OK\r\nA: b\r\n", 0},
		{"HTTP/1.1 200 OK\r\nA: b\r\n\r", 0},
		{"\r\nHTTP", 2},
		{"\nHTTP", 1},
		{"", 0},
	} {
		if got := headEnd([]byte(tc.b), 0); got != tc.want {
			t.Errorf("headEnd(%q) = %d, want %d", tc.b, got, tc.want)
		}
	}
}

func TestParseChunkLine(t *testing.T) {
	for line, want := range map[string]int64{
		"0":                       0,
		"a":                       10,
		"A":                       10,
		"00ff":                    255,
		"10;name=value":           16,
		"10 ; name = value":       16,
		"10;a;b=c;d=\"q \\\" s\"": 16,
		"1;ext":                   1,
		"fffffffffffffff":         0xfffffffffffffff,
	} {
		got, err := parseChunkLine([]byte(line))
		if err != nil || got != want {
			t.Errorf("parseChunkLine(%q) = %d, %v; want %d", line, got, err, want)
		}
	}
	for _, line := range []string{
		"", " 1", "1 ", "g", "-1", "+1", "0x10", "1;", "1;=v", "1;a=", "1;a=\"open", "1 junk",
		"1;a=b c", "1\x00", "1\r", "1;a=\"\x01\"", "1000000000000000", "ffffffffffffffffff",
	} {
		if n, err := parseChunkLine([]byte(line)); err == nil {
			t.Errorf("parseChunkLine(%q) = %d, nil; want an error", line, n)
		}
	}
}

func TestCanonicalKey(t *testing.T) {
	for in, want := range map[string]string{
		"content-type":           "Content-Type",
		"CONTENT-LENGTH":         "Content-Length",
		"x-a_b":                  "X-A_b",
		"Etag":                   "Etag",
		"etag":                   "Etag",
		"a":                      "A",
		"x--y":                   "X--Y",
		strings.Repeat("ab", 40): http.CanonicalHeaderKey(strings.Repeat("ab", 40)),
	} {
		if got := canonicalKey(in); got != want || got != http.CanonicalHeaderKey(in) {
			t.Errorf("canonicalKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTokenKey: a field name is checked and canonicalised in one pass,
// whether it is canonical already or not, and wherever a bad byte is.
func TestTokenKey(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Content-Type", "Content-Type", true},
		{"content-type", "Content-Type", true},
		{"X-A_b", "X-A_b", true},
		{"etag", "Etag", true},
		{"a", "A", true},
		{"", "", false},
		{"Bad Name", "", false}, // a space, in a canonical name
		{"Ab@", "", false},      // a bad byte after the canonical part
		{"aB@c", "", false},     // after the first non-canonical byte
		{"content\x01", "", false},
		{"Content-\x7f", "", false},
		{"Content-\xe9", "", false}, // not ASCII
		{strings.Repeat("ab", 40), canonicalKey(strings.Repeat("ab", 40)), true}, // longer than canonicalKey's buffer
	} {
		got, ok := tokenKey(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("tokenKey(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok != isToken(tc.in) || ok && got != canonicalKey(tc.in) {
			t.Errorf("tokenKey(%q) = %q, %v: not isToken's and canonicalKey's answer", tc.in, got, ok)
		}
	}
}

// FuzzTokenKey: tokenKey answers as isToken and canonicalKey together.
func FuzzTokenKey(f *testing.F) {
	for _, s := range []string{"Content-Type", "content-type", "X-A_b", "aB@c", "", strings.Repeat("ab", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		key, ok := tokenKey(name)
		if ok != isToken(name) {
			t.Fatalf("tokenKey(%q) ok = %v, isToken = %v", name, ok, !ok)
		}
		if ok && key != canonicalKey(name) {
			t.Fatalf("tokenKey(%q) = %q, canonicalKey = %q", name, key, canonicalKey(name))
		}
	})
}

// TestParseHeadReuse: heads parsed one after the other with one line
// cache and field memo, as a backend connection does, read as each does
// alone, whichever lines repeat the last head's.
func TestParseHeadReuse(t *testing.T) {
	cache, memo := new(linecache.Cache), new(fieldMemo)
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\nServer: s\r\nDate: d1\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nServer: s\r\nDate: d2\r\nContent-Length: 7\r\n\r\n",
		"HTTP/1.1 200 OK\r\nServer: s\r\nDate: d2\r\nContent-Length: 7\r\n\r\n",
		"HTTP/1.1 200 OK\nServer: s\nDate: d2\nContent-Length: 7\n\n",
		"HTTP/1.1 204 No Content\r\nServer: s\r\n\r\n",
		"HTTP/1.1 200 OK\r\nServer: s\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nServer: s\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nServer: s\r\nDate: d2\r\nContent-Length: 7\r\n\r\n",
		"HTTP/1.1 200 OK\r\nServer: s\r\nDate: d2\r\nContent-Length: 7\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nServer: s\r\nDate: d2\r\nContent-Length: 7\r\nConnection: X-A\r\nX-A: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nserver: s\r\nDate: d2\r\nContent-Length: 7\r\nConnection: X-A\r\nX-A: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nServer: s\r\nDate: d2\r\nContent-Length: 7\r\nConnection: X-A\r\nX-A : 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nServer: s\r\nDate: d2\r\nContent-Length: 7\r\nConnection: X-A\r\nX-A: 1\r\n\r\n",
	} {
		alone, reused := head{}, head{lines: cache, memo: memo}
		errAlone, errReused := parseHead([]byte(raw), &alone), parseHead([]byte(raw), &reused)
		if fmt.Sprint(errAlone) != fmt.Sprint(errReused) || !reflect.DeepEqual(alone.header, reused.header) ||
			alone.contentLength != reused.contentLength || alone.chunked != reused.chunked {
			t.Errorf("%q: alone %v %v, with the last heads' lines %v %v", raw, errAlone, alone.header, errReused, reused.header)
		}
	}
}

// TestFieldMemo: a field line that repeats the one at its position in the
// last head takes the memo's split instead of being split again, and the
// memo holds only strings the line cache holds.
func TestFieldMemo(t *testing.T) {
	cache, memo := new(linecache.Cache), new(fieldMemo)
	parse := func(raw string) http.Header {
		t.Helper()
		h := head{lines: cache, memo: memo}
		if err := parseHead([]byte(raw), &h); err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		checkMemoHeld(t, memo, cache)
		return h.header
	}
	parse("HTTP/1.1 200 OK\r\nServer: a\r\nX-Id: 1\r\nContent-Length: 3\r\n\r\n")
	if memo.Len() != 3 {
		t.Fatalf("after a head of 3 fields the memo holds %d", memo.Len())
	}
	// What the memo holds for a line is what that line reads as: a value
	// planted here (a part of the line, as the memo's values are) shows
	// that it is used.
	line, f := memo.At(0)
	memo.Put(0, line, field{f.key, line[:len("Server")]})
	h := parse("HTTP/1.1 200 OK\r\nServer: a\r\nX-Id: 2\r\nContent-Length: 3\r\nX-New: y\r\n\r\n")
	if got := h.Get("Server"); got != "Server" {
		t.Errorf("repeated line read as %q, not from the memo", got)
	}
	if h.Get("X-Id") != "2" || h.Get("X-New") != "y" {
		t.Errorf("changed and new lines read as %v", h)
	}
	// Heads whose changing lines make the cache copy repeated lines anew,
	// and one the cache does not keep.
	for i := range 6 {
		parse(fmt.Sprintf("HTTP/1.1 200 OK\r\nServer: a\r\nDate: d%d\r\nX-Id: %d\r\nContent-Length: 3\r\n\r\n", i, i/2))
	}
	parse("HTTP/1.1 200 OK\r\nServer: a\r\nX-Big: " + strings.Repeat("b", linecache.MaxKept) + "\r\n\r\n")
	if memo.Len() != 0 {
		t.Errorf("after a head the line cache does not keep, the memo holds %d lines", memo.Len())
	}
}

// checkMemoHeld fails if the memo holds a line or value the line cache
// does not hold.
func checkMemoHeld(t testing.TB, memo *fieldMemo, cache *linecache.Cache) {
	t.Helper()
	for i := range memo.Len() {
		if line, f := memo.At(i); !cache.Holds(line) || !cache.Holds(f.value) {
			t.Fatalf("memo line %d %q is not one the line cache holds", i, line)
		}
	}
}

// FuzzHeadEnd checks headEnd, which jumps from line end to line end,
// against a byte-by-byte scan.
func FuzzHeadEnd(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"), 0)
	f.Add([]byte("HTTP/1.1 200 OK\nA: b\n\n"), 5)
	f.Fuzz(func(t *testing.T, b []byte, from int) {
		if from < 0 || from > len(b) {
			return
		}
		want := 0
		switch {
		case len(b) > 0 && b[0] == '\n':
			want = 1
		case len(b) > 1 && b[0] == '\r' && b[1] == '\n':
			want = 2
		default:
			for i := from; i < len(b) && want == 0; i++ {
				switch {
				case b[i] != '\n':
				case i+1 < len(b) && b[i+1] == '\n':
					want = i + 2
				case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
					want = i + 3
				}
			}
		}
		if got := headEnd(b, from); got != want {
			t.Fatalf("headEnd(%q, %d) = %d, want %d", b, from, got, want)
		}
	})
}
