package h1server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/lbproject/load_balancer/internal/linecache"
	"github.com/lbproject/load_balancer/internal/upstream/h1"
)

// The fast path. Most requests are of one plain kind: a common method, an
// origin-form target, HTTP/1.1 or 1.0, field lines in canonical syntax
// ending in CRLF, no body or a Content-Length one, the whole head in the
// read buffer. parseFast reads those in place, into maps and values the
// connection reuses, with no allocation when every line repeats the
// connection's last head, else one (a string of the lines that differ; a
// head of over 64 lines, two: see linecache), once the connection's line
// slots are made (on its first head). Anything else
// -- any doubt at all: a Transfer-Encoding, a repeated Content-Length, an
// obs-fold, a bare LF, a byte outside printable ASCII, a percent-escaped
// path, an Expect -- is left to net/http's http.ReadRequest, which parses the
// same bytes again. So what the fast path accepts, it must read exactly as
// net/http does; FuzzFastParse checks that on arbitrary input.

// fastHead is the result of parseFast.
type fastHead struct {
	method, target string
	minor          int
	path, query    string
	host           string
	hosts          int
	contentLength  int64 // 0 without a Content-Length
	close          bool
	size           int // bytes of the head, the empty line included
}

// fastMethods are the methods the fast path takes; others are rare enough
// for net/http's parser.
var fastMethods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}

// maxFastFields bounds the field lines the fast path takes (net/http has no
// count limit of its own, only the head's size).
const maxFastFields = 100

// parseFast parses the request head at the start of b into h, its fields
// into header (empty; the values share the array vals while it lasts), its
// strings made by cache (the connection's: a line that repeats the last
// head's costs no allocation). It reports false, with header possibly
// half-filled, for anything it does not take.
//
// memo, if not nil, is the connection's memo of how its last head's field
// lines were split: a line that repeats is not split and checked again (a
// browser repeats Host, User-Agent, Accept*, Cookie... in every request).
func parseFast(b []byte, h *fastHead, header http.Header, vals []string, cache *linecache.Cache, memo *fieldMemo) bool {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return false // not all in the buffer yet: the memo stays as it is
	}
	ok := parseFastInto(b, end, h, header, vals, cache, memo)
	if memo != nil {
		memo.End(ok && cache.Kept())
	}
	return ok
}

// fieldMemo keeps how a connection's last request head's field lines
// were split (see linecache.Memo).
type fieldMemo = linecache.Memo[field]

// field is a field line split into its canonical name and its value.
type field struct{ key, value string }

// errNotFast: a line the fast parser leaves to net/http's.
var errNotFast = errors.New("h1server: a field line for net/http's parser")

// splitToField is splitFastField for fieldMemo.Parse, with the name made
// canonical.
func splitToField(line string) (field, error) {
	name, value, ok := splitFastField(line)
	if !ok {
		return field{}, errNotFast
	}
	return field{textproto.CanonicalMIMEHeaderKey(name), value}, nil
}

// parseFastInto is parseFast for a head that ends (its empty line) at end.
func parseFastInto(b []byte, end int, h *fastHead, header http.Header, vals []string, cache *linecache.Cache, memo *fieldMemo) bool {
	h.size = end + 4
	// Every line with its CRLF; a bare LF ends a line without CR.
	lines, ok := cache.Lines(b[:end+2], 1+maxFastFields)
	if !ok || !crlf(lines[0]) || !parseRequestLine(lines[0][:len(lines[0])-1], h) {
		return false
	}
	var connection []string
	for i, line := range lines[1:] {
		if !crlf(line) {
			return false // a bare LF: net/http's business
		}
		f, err := memo.Parse(i, line[:len(line)-1], splitToField)
		if err != nil {
			return false
		}
		key, value := f.key, f.value
		switch key {
		case "Host":
			if h.hosts++; h.hosts > 1 {
				return false
			}
			h.host = value
			continue // net/http's ReadRequest keeps it in Request.Host only
		case "Content-Length":
			if _, dup := header[key]; dup {
				return false
			}
			n, ok := parseDigits(value)
			if !ok {
				return false
			}
			h.contentLength = n
		case "Connection":
			connection = append(connection, value)
		case "Transfer-Encoding", "Expect", "Trailer", "Pragma":
			// Framing, 100 Continue, trailers, and the Pragma that
			// net/http turns into Cache-Control: its parser's business.
			return false
		}
		if vv, ok := header[key]; ok {
			header[key] = append(vv, value)
		} else if len(vals) > 0 {
			vals[0] = value
			header[key] = vals[:1:1]
			vals = vals[1:]
		} else {
			header[key] = []string{value}
		}
	}
	for _, v := range connection {
		if strings.IndexByte(v, '"') >= 0 {
			return false // quoted tokens: leave them to net/http
		}
	}
	hasClose := h1.HasToken(connection, "close")
	if h.minor == 0 {
		h.close = hasClose || !h1.HasToken(connection, "keep-alive")
	} else {
		h.close = hasClose
	}
	return true
}

// crlf reports whether a line of the head ended in CRLF (its CR is
// still there).
func crlf(line string) bool { return line != "" && line[len(line)-1] == '\r' }

// parseRequestLine parses "METHOD /target HTTP/1.x".
func parseRequestLine(line string, h *fastHead) bool {
	sp := strings.IndexByte(line, ' ')
	if sp <= 0 {
		return false
	}
	method := line[:sp]
	h.method = ""
	for _, m := range fastMethods {
		if method == m {
			h.method = m
			break
		}
	}
	if h.method == "" {
		return false
	}
	rest := line[sp+1:]
	sp = strings.IndexByte(rest, ' ')
	if sp <= 0 {
		return false
	}
	target, version := rest[:sp], rest[sp+1:]
	switch version {
	case "HTTP/1.1":
		h.minor = 1
	case "HTTP/1.0":
		h.minor = 0
	default:
		return false
	}
	if target[0] != '/' {
		return false
	}
	q := -1
	for i := 0; i < len(target); i++ {
		switch c := target[i]; {
		case c <= ' ' || c >= 0x7f || c == '#':
			return false
		case c == '?' && q < 0:
			q = i
		case c == '%' && q < 0:
			return false // an escaped path: url.ParseRequestURI unescapes it
		}
	}
	h.target = target
	if q < 0 {
		h.path, h.query = target, ""
	} else {
		if q == len(target)-1 {
			return false // "/p?": net/url sets ForceQuery
		}
		h.path, h.query = target[:q], target[q+1:]
	}
	return true
}

// splitFastField splits "Name: value": a token name right before the
// colon, the value without surrounding spaces and tabs, made of printable
// ASCII and tabs only.
func splitFastField(line string) (name, value string, ok bool) {
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", false
	}
	name = line[:colon]
	for i := 0; i < len(name); i++ {
		if !h1.IsTokenChar(name[i]) {
			return "", "", false
		}
	}
	value = line[colon+1:]
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c >= 0x7f {
			return "", "", false
		}
	}
	return name, strings.Trim(value, " \t"), true
}

// parseDigits parses 1 to 18 decimal digits.
func parseDigits(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// fixedBody reads a request body of known length from the connection's
// buffer, as net/http's body does: a connection that ends early is
// io.ErrUnexpectedEOF.
type fixedBody struct {
	c *conn
	n int64
}

func (b *fixedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.c.br.Read(p)
	b.n -= int64(n)
	if b.n == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *fixedBody) Close() error { return nil }
