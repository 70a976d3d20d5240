package h1server

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// The head limits of the differential servers: h1server counts the head
// exactly; net/http lets a connection read MaxHeaderBytes+4096 bytes for
// the head (its bufio slack), so it gets 4096 less to match.
const (
	diffHeadLimit    = 8192
	diffStdHeadLimit = diffHeadLimit - 4096
)

// diffCase is a raw request (or several, pipelined) with what h1server must
// answer. The same bytes go to net/http's server with the same handler,
// which must answer the same, unless std says otherwise (each such
// exception is a deliberate difference, explained in why).
type diffCase struct {
	name    string
	raw     string
	methods []string // one per expected final response; default one GET
	want    string   // statuses of the responses, then "open" or "closed"
	std     string   // net/http's answer where it deliberately differs
	why     string
}

var diffCases = []diffCase{
	// Host rules (RFC 9112 §3.2).
	{name: "missing Host on 1.1", raw: "GET / HTTP/1.1\r\n\r\n", want: "400 closed"},
	{name: "two Host fields", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", want: "400 closed"},
	{name: "two Host fields, same value, other case", raw: "GET / HTTP/1.1\r\nHost: a\r\nhOsT: a\r\n\r\n", want: "400 closed"},
	{name: "Host with invalid characters", raw: "GET / HTTP/1.1\r\nHost: a<b>\r\n\r\n", want: "400 closed"},
	{name: "Host with a space", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", want: "400 closed"},
	{name: "empty Host", raw: "GET / HTTP/1.1\r\nHost:\r\n\r\n", want: "200 open"},
	{name: "HTTP/1.0 without Host", raw: "GET / HTTP/1.0\r\n\r\n", want: "200 closed"},
	{name: "CONNECT without Host", raw: "CONNECT example.com:443 HTTP/1.1\r\n\r\n", methods: []string{"CONNECT"}, want: "200 open"},
	{name: "absolute-form target", raw: "GET http://example.com/x?y=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", want: "200 open"},
	{name: "absolute-form target, other Host", raw: "GET http://example.com/x HTTP/1.1\r\nHost: other.example\r\n\r\n", want: "200 open"},
	// net/http validates the Host field even when the target carries the
	// authority; h1server validates only the authority used (Request.Host).
	{name: "absolute-form target, invalid Host field", raw: "GET http://example.com/ HTTP/1.1\r\nHost: a<b>\r\n\r\n", want: "400 closed"},

	// Field syntax (RFC 9112 §5).
	{name: "obs-fold", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", want: "200 open"},
	{name: "obs-fold first field", raw: "GET / HTTP/1.1\r\n X-A: 1\r\nHost: a\r\n\r\n", want: "400 closed"},
	{name: "space before colon in Host", raw: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", want: "400 closed"},
	{name: "space before colon", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n", want: "400 closed"},
	{name: "NUL in a value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", want: "400 closed"},
	{name: "CR in a value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n", want: "400 closed"},
	{name: "invalid field name", raw: "GET / HTTP/1.1\r\nHost: a\r\nX<A: 1\r\n\r\n", want: "400 closed"},
	{name: "LF line ends", raw: "GET / HTTP/1.1\nHost: a\n\n", want: "200 open"},
	{name: "invalid method", raw: "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", want: "400 closed"},
	{name: "HTTP/0.9 request line", raw: "GET /\r\n\r\n", want: "400 closed"},
	{name: "leading empty line", raw: "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", want: "400 closed"},
	// RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a
	// request line; net/http does after a POST (for clients that end a
	// body with an extra CRLF).
	{name: "empty line after a POST body", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", methods: []string{"POST", "GET"}, want: "200 200 open"},

	// Versions.
	{name: "HTTP/2.0 request line", raw: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", want: "505 closed"},
	{name: "HTTP/3.0 request line", raw: "GET / HTTP/3.0\r\nHost: a\r\n\r\n", want: "505 closed"},
	{name: "HTTP/1.2 request line", raw: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", want: "200 open"},
	{name: "HTTP/1.0 keep-alive", raw: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", want: "200 open"},
	{name: "HTTP/1.0 keep-alive, streamed response", raw: "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", want: "200 closed"},

	// Framing of request bodies (RFC 9112 §6).
	{name: "Content-Length body", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", methods: []string{"POST"}, want: "200 open"},
	{name: "chunked body with trailer", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", methods: []string{"POST"}, want: "200 open"},
	// Transfer-Encoding wins (RFC 9112 §6.1). That section also says the
	// server MUST close the connection after such a request; net/http does
	// not, and neither does h1server, which keeps its parser's rules.
	{name: "CL and TE", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", methods: []string{"POST"}, want: "200 open"},
	{name: "two different Content-Lengths", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", methods: []string{"POST"}, want: "400 closed"},
	{name: "two equal Content-Lengths", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", methods: []string{"POST"}, want: "200 open"},
	{name: "signed Content-Length", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", methods: []string{"POST"}, want: "400 closed"},
	{name: "TE gzip", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", methods: []string{"POST"}, want: "501 closed"},
	{name: "TE unknown", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: whatever\r\n\r\n", methods: []string{"POST"}, want: "501 closed"},
	{name: "TE gzip, chunked", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", methods: []string{"POST"}, want: "501 closed"},
	{name: "two TE fields", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", methods: []string{"POST"}, want: "501 closed"},
	{name: "TE on HTTP/1.0 ignored", raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", methods: []string{"POST"}, want: "200 closed"},
	{name: "malformed chunk size", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", methods: []string{"POST"}, want: "closed"},

	// Expect (RFC 9110 §10.1.1).
	{name: "Expect 100-continue", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc", methods: []string{"POST"}, want: "100 200 open"},
	{name: "Expect 100-continue without body", raw: "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", want: "200 open"},
	// A 1xx must not go to an HTTP/1.0 client (RFC 9110 §15.2), which
	// cannot wait for one anyway (§10.1.1: the server MUST ignore it).
	{name: "Expect 100-continue on HTTP/1.0", raw: "POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc", methods: []string{"POST"}, want: "200 closed"},
	{name: "Expect unknown", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 200-ok\r\n\r\nabc", methods: []string{"POST"}, want: "417 closed"},

	// Connection management.
	{name: "pipelined", raw: "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nxPOST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\ny\r\n0\r\n\r\nGET /4 HTTP/1.1\r\nHost: a\r\n\r\n", methods: []string{"GET", "POST", "POST", "GET"}, want: "200 200 200 200 open"},
	{name: "pipelined after an error", raw: "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", methods: []string{"GET", "GET"}, want: "400 closed"},
	{name: "HEAD", raw: "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", methods: []string{"HEAD"}, want: "200 open"},
	{name: "204", raw: "GET /204 HTTP/1.1\r\nHost: a\r\n\r\n", want: "204 open"},
	{name: "304", raw: "GET /304 HTTP/1.1\r\nHost: a\r\n\r\n", want: "304 open"},
	{name: "Connection: close", raw: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", want: "200 closed"},
	{name: "Connection: keep-alive, close", raw: "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n", want: "200 closed"},
	{name: "handler sets Connection: close", raw: "GET /close HTTP/1.1\r\nHost: a\r\n\r\n", want: "200 closed"},
	{name: "streamed response", raw: "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n", want: "200 open"},

	// Limits.
	{name: "head over the limit", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 3*diffHeadLimit) + "\r\n\r\n", want: "431 closed"},
	{name: "request line over the limit", raw: "GET /" + strings.Repeat("a", 3*diffHeadLimit) + " HTTP/1.1\r\nHost: a\r\n\r\n", want: "414 closed",
		std: "431 closed", why: "h1server answers 414 when the request line alone exceeds the head limit; net/http does not tell it from a long field"},
}

// TestDifferential sends each raw request to h1server and to net/http's
// server running the same handler, and checks the statuses, the framing and
// body of the handler's responses, and whether the connection stayed open.
// Differences not listed above: error replies' bodies and framing; h1server
// does not sniff a Content-Type (the handler sets one); its head limit is
// exact (see diffStdHeadLimit).
//
// The h1server side runs twice: as configured by default, and lean (idle
// connections wait without a read buffer, see Server.LeanAbove).
func TestDifferential(t *testing.T) {
	std := serveStd(t, http.HandlerFunc(echo), diffStdHeadLimit)
	for _, lean := range []bool{false, true} {
		s := &Server{Handler: http.HandlerFunc(echo), MaxHeaderBytes: diffHeadLimit}
		var h1 string
		if lean {
			h1 = serveLean(t, s)
		} else {
			h1 = serve(t, s)
		}
		t.Run(map[bool]string{false: "default", true: "lean"}[lean], func(t *testing.T) {
			testDifferential(t, h1, std)
		})
	}
}

func testDifferential(t *testing.T, h1, std string) {
	for _, tc := range diffCases {
		t.Run(tc.name, func(t *testing.T) {
			methods := tc.methods
			if methods == nil {
				methods = []string{"GET"}
			}
			got := exchange(t, h1, tc.raw, methods)
			if s := summary(got); s != tc.want {
				t.Errorf("h1server: %s (%s), want %s", s, got, tc.want)
			}
			ref := exchange(t, std, tc.raw, methods)
			wantStd := tc.want
			if tc.std != "" {
				wantStd = tc.std
			}
			if s := summary(ref); s != wantStd {
				t.Errorf("net/http: %s (%s), want %s", s, ref, wantStd)
			}
			if tc.std == "" && diffKey(got) != diffKey(ref) {
				t.Errorf("h1server and net/http differ:\nh1server: %s\nnet/http: %s", got, ref)
			}
		})
	}
}

// summary is the statuses of o's responses and whether the connection
// stayed open, as in diffCase.want.
func summary(o outcome) string {
	var b strings.Builder
	for _, r := range o.resps {
		b.WriteString(strconv.Itoa(r.status))
		b.WriteByte(' ')
	}
	if o.open {
		b.WriteString("open")
	} else {
		b.WriteString("closed")
	}
	return b.String()
}

// diffKey is what must agree between the two servers: every status, and
// the framing and body of the handler's responses (error replies differ in
// text and framing).
func diffKey(o outcome) string {
	var b strings.Builder
	for _, r := range o.resps {
		if r.status >= 400 {
			b.WriteString(strconv.Itoa(r.status))
		} else {
			b.WriteString(r.String())
		}
		b.WriteByte(' ')
	}
	if o.open {
		b.WriteString("open")
	}
	return b.String()
}

// TestNoSniff pins a deliberate difference: net/http's server guesses a
// Content-Type from the body when the handler sets none; h1server sends
// none (the proxy passes on the backend's, or its absence).
func TestNoSniff(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html><body>hi</body></html>")
	})
	for _, tc := range []struct {
		name, addr, want string
	}{
		{"h1server", serve(t, &Server{Handler: h}), ""},
		{"net/http", serveStd(t, h, 0), "text/html; charset=utf-8"},
	} {
		c := newRaw(t, tc.addr)
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if got := c.read("GET").header.Get("Content-Type"); got != tc.want {
			t.Errorf("%s: Content-Type %q, want %q", tc.name, got, tc.want)
		}
	}
}
