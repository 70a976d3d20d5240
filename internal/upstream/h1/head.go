package h1

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"github.com/lbproject/load_balancer/internal/linecache"
)

// maxFields bounds the field lines of one response head or trailer section.
const maxFields = 1000

// head is a parsed response head (RFC 9112 §4, §5).
type head struct {
	status int
	minor  int // HTTP/1.minor; 0 or 1 (higher minors are read as 1)
	header http.Header

	contentLength int64 // -1: no Content-Length
	chunked       bool  // Transfer-Encoding: chunked
	ambiguous     bool  // both Transfer-Encoding and Content-Length: close after
	connClose     bool  // Connection: close
	connKeepAlive bool  // Connection: keep-alive (HTTP/1.0)
	connUpgrade   bool  // Connection: upgrade
	trailer       http.Header

	// Set by the caller before parsing:
	dst   http.Header // if not nil, a final response's fields go here (it is empty)
	vals  []string    // if long enough, a final response's values are kept here
	strip bool        // leave out hop-by-hop fields (but of a 101) and those Connection names

	connOther []string // Connection values naming other fields, when strip

	// lines, if not nil, is the connection's cache of the last head's
	// lines: the strings of the lines that repeat are reused.
	lines *linecache.Cache
	// memo, if not nil, is how the connection's last head's field lines
	// were split: a line that repeats is not split and checked again.
	memo *fieldMemo
}

// fieldMemo is how the first field lines of a connection's last head were
// split (splitField), so that a line that repeats the one at its position
// in the last head (the same string, see linecache.Memo) reuses the name
// and value instead of being split and checked again. A backend repeats
// most lines (Server, Content-Type, Content-Length, Connection).
type fieldMemo = linecache.Memo[field]

// field is a field line split into its canonical name and its value.
type field struct{ key, value string }

// splitToField is splitField for fieldMemo.Parse.
func splitToField(line string) (field, error) {
	key, value, err := splitField(line)
	return field{key, value}, err
}

// parseHead parses a complete response head b: the status line, the field
// lines and the empty line that ends them, each line ending in CRLF or a
// bare LF (RFC 9112 §2.2). Anything that is not valid HTTP/1.1 is an error:
// the response is not forwarded and its connection is closed.
//
// The field names and values of h.header are substrings of strings made
// from b, or, where a line repeats one of the connection's last head (in
// h.lines), of that head's strings: b may be reused afterwards.
func parseHead(b []byte, h *head) error {
	err := parseHeadInto(b, h)
	if err != nil && h.dst != nil {
		clear(h.dst) // left empty, as it was given
	}
	if h.lines != nil {
		h.lines.Release() // a pooled connection keeps no large head
	}
	if h.memo != nil {
		h.memo.End(err == nil && h.lines != nil && h.lines.Kept())
	}
	return err
}

func parseHeadInto(b []byte, h *head) error {
	nl := indexByte(b, '\n')
	if nl < 0 {
		return protoErr("no end of status line")
	}
	line := b[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if err := parseStatusLine(line, h); err != nil {
		return err
	}
	fields := b[nl+1:]
	n := bytes.Count(fields, []byte{'\n'}) // vectorised: a loop was 17 % of parsing
	if n == 0 {
		return protoErr("no end of head")
	}
	n-- // the empty line
	if n > maxFields {
		return protoErr("too many header fields")
	}
	if h.dst != nil && h.status >= 200 {
		h.header = h.dst
	} else {
		h.header = make(http.Header, n)
	}
	h.strip = h.strip && h.status != 101
	h.contentLength = -1
	var fp fieldParser
	if h.status >= 200 && n <= len(h.vals) {
		fp.vals = h.vals[:n]
	} else {
		fp.vals = make([]string, n)
	}
	cache := h.lines
	if cache == nil {
		cache = new(linecache.Cache)
	}
	// n+1 lines at most (the fields, the empty line, what follows): the
	// limit given is never reached.
	lines, _ := cache.Lines(fields, n+2)
	done := false // the empty line came
	for i, line := range lines {
		last := i == len(lines)-1
		if last && fields[len(fields)-1] != '\n' { // n > 0: not empty
			break // a line without its end
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if line == "" {
			if !last {
				return protoErr("bytes after the end of head")
			}
			done = true
			break
		}
		if err := fp.parse(line, h); err != nil {
			return err
		}
	}
	if !done {
		return protoErr("no end of head")
	}
	for _, v := range h.connOther {
		// RFC 9110 §7.6.1: the fields Connection names are for this hop.
		for elem := range strings.SplitSeq(v, ",") {
			if elem = trimOWS(elem); elem != "" {
				delete(h.header, http.CanonicalHeaderKey(elem))
			}
		}
	}
	if h.chunked {
		if h.minor == 0 {
			// RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message
			// means faulty framing.
			return protoErr("Transfer-Encoding in an HTTP/1.0 response")
		}
		if h.contentLength >= 0 {
			// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length,
			// which an intermediary must remove before forwarding. Such a
			// message may be an attack: its connection is not reused.
			delete(h.header, "Content-Length")
			h.contentLength = -1
			h.ambiguous = true
		}
	}
	return nil
}

// parseStatusLine parses "HTTP/1.x NNN reason" (RFC 9112 §4).
func parseStatusLine(line []byte, h *head) error {
	// HTTP-version SP status-code SP [ reason-phrase ]; the SP before an
	// empty reason is commonly left out, and accepted.
	if len(line) < len("HTTP/1.1 200") || string(line[:5]) != "HTTP/" ||
		!isDigit(line[5]) || line[6] != '.' || !isDigit(line[7]) || line[8] != ' ' {
		return protoErr("malformed status line")
	}
	if line[5] != '1' {
		return protoErr("unsupported HTTP version")
	}
	h.minor = 1
	if line[7] == '0' {
		h.minor = 0
	}
	if !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) {
		return protoErr("malformed status code")
	}
	h.status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if h.status < 100 || h.status > 599 {
		// RFC 9110 §15: only 100..599 are valid.
		return protoErr("invalid status code")
	}
	if len(line) > 12 {
		if line[12] != ' ' {
			return protoErr("malformed status line")
		}
		for _, c := range line[13:] {
			if !isFieldVChar(c) && c != ' ' && c != '\t' {
				return protoErr("invalid byte in reason phrase")
			}
		}
	}
	return nil
}

// fieldParser parses field lines into a header, with one []string array
// shared by the fields' values.
type fieldParser struct {
	vals   []string // unused part of the shared value array
	fields int
}

// parse adds one field line (without its line end) to h. The special
// fields (Content-Length, Transfer-Encoding, Connection, Trailer) are
// checked and recorded in h.
func (fp *fieldParser) parse(line string, h *head) error {
	if fp.fields++; fp.fields > maxFields {
		return protoErr("too many header fields")
	}
	f, err := h.memo.Parse(fp.fields-1, line, splitToField)
	if err != nil {
		return err
	}
	key, value := f.key, f.value
	switch key {
	case "Content-Length":
		n, err := parseContentLength(value)
		if err != nil {
			return err
		}
		if h.contentLength >= 0 {
			if n != h.contentLength {
				return protoErr("conflicting Content-Length")
			}
			return nil // a repeated identical value is kept once
		}
		h.contentLength = n
		if strings.IndexByte(value, ',') >= 0 || len(value) > 1 && value[0] == '0' {
			value = strconv.FormatInt(n, 10) // "42, 42" or "042": one canonical value
		}
	case "Transfer-Encoding":
		// Only "chunked", once, is understood (as by net/http and nginx);
		// a coding the proxy cannot undo cannot be forwarded.
		for elem := range strings.SplitSeq(value, ",") {
			elem = trimOWS(elem)
			if elem == "" {
				continue
			}
			if !strings.EqualFold(elem, "chunked") || h.chunked {
				return protoErr("unsupported Transfer-Encoding")
			}
			h.chunked = true
		}
		return nil // framing, not passed on: the proxy re-frames the body
	case "Connection":
		other := false
		for elem := range strings.SplitSeq(value, ",") {
			switch elem = trimOWS(elem); {
			case strings.EqualFold(elem, "close"):
				h.connClose = true
			case strings.EqualFold(elem, "keep-alive"):
				h.connKeepAlive = true
			case strings.EqualFold(elem, "upgrade"):
				h.connUpgrade = true
			case elem != "":
				other = true
			}
		}
		if h.strip {
			if other {
				h.connOther = append(h.connOther, value)
			}
			return nil
		}
	case "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Upgrade":
		if h.strip {
			return nil // hop-by-hop (RFC 9110 §7.6.1)
		}
	case "Trailer":
		for elem := range strings.SplitSeq(value, ",") {
			if elem = trimOWS(elem); elem == "" {
				continue
			}
			if !isToken(elem) {
				return protoErr("invalid Trailer field name")
			}
			key := canonicalKey(elem)
			if forbiddenTrailer(key) {
				continue // never forwarded as a trailer, so not announced
			}
			if h.trailer == nil {
				h.trailer = make(http.Header)
			}
			h.trailer[key] = nil
		}
		return nil // announced in Response.Trailer, as net/http does
	}
	fp.add(h.header, key, value)
	return nil
}

// add appends value to h[key], taking a fresh key's one-element slice from
// the shared array (capacity 1, so that appends copy).
func (fp *fieldParser) add(h http.Header, key, value string) {
	if vv, ok := h[key]; ok {
		h[key] = append(vv, value)
		return
	}
	if len(fp.vals) == 0 {
		h[key] = []string{value}
		return
	}
	vv := fp.vals[:1:1]
	fp.vals = fp.vals[1:]
	vv[0] = value
	h[key] = vv
}

// splitField splits a field line "name: value" (RFC 9112 §5) and checks
// both parts: the name is a token with no whitespace before the colon, the
// value has no CR, LF, NUL or other control character but HTAB. A line
// beginning with whitespace is obs-fold (or whitespace before the first
// field), which a proxy must reject or unfold; it is rejected. The name is
// returned in its canonical form (canonicalKey).
func splitField(line string) (key, value string, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", protoErr("obs-fold or leading whitespace in field line")
	}
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", protoErr("field line without a name and colon")
	}
	key, ok := tokenKey(line[:colon])
	if !ok {
		return "", "", protoErr("invalid field name")
	}
	value = trimOWS(line[colon+1:])
	if !validValue(value) { // the rule of a request's values, eight bytes at a time
		return "", "", protoErr("invalid byte in field value")
	}
	return key, value, nil
}

// parseContentLength parses a Content-Length value: 1*DIGIT, or a list of
// identical such values (RFC 9110 §8.6).
func parseContentLength(v string) (int64, error) {
	n := int64(-1)
	for elem := range strings.SplitSeq(v, ",") {
		elem = trimOWS(elem)
		if elem == "" {
			return 0, protoErr("invalid Content-Length")
		}
		var m int64
		for i := 0; i < len(elem); i++ {
			c := elem[i]
			if !isDigit(c) {
				return 0, protoErr("invalid Content-Length")
			}
			if m > (1<<63-1-9)/10 {
				return 0, protoErr("Content-Length too large")
			}
			m = m*10 + int64(c-'0')
		}
		if n >= 0 && m != n {
			return 0, protoErr("conflicting Content-Length")
		}
		n = m
	}
	return n, nil
}

// trimOWS trims optional whitespace (SP, HTAB) from both ends of s.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isFieldVChar reports whether c may appear in a field value or reason
// phrase besides SP and HTAB: VCHAR or obs-text.
func isFieldVChar(c byte) bool { return c > ' ' && c != 0x7f }

// tchar is the token alphabet of RFC 9110 §5.6.2.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// IsTokenChar reports whether c belongs to the token alphabet (field
// names, methods): the front end's request parser uses the same table.
func IsTokenChar(c byte) bool { return tchar[c] }

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// tokenKey reports whether name is a token (RFC 9110 §5.1) and returns its
// canonical form (canonicalKey), looking at each byte once while the name
// is already canonical, as backends' names nearly always are.
func tokenKey(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !tchar[c] {
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			// Not canonical: check the rest, then canonicalise.
			if !isToken(name[i:]) {
				return "", false
			}
			return canonicalKey(name), true
		}
		upper = c == '-'
	}
	return name, true
}

// canonicalKey returns the canonical form of the field name s (a token),
// as http.CanonicalHeaderKey does: s itself when it is canonical already
// (no allocation), an interned string for common names, else a new string.
func canonicalKey(s string) string {
	upper := true
	canonical := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
			break
		}
		upper = c == '-'
	}
	if canonical {
		return s
	}
	var buf [64]byte
	if len(s) > len(buf) {
		return http.CanonicalHeaderKey(s)
	}
	b := buf[:len(s)]
	upper = true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	return string(b)
}

// commonKeys interns the canonical names of common response fields, for
// backends that send them in lower case.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Origin", "Age", "Cache-Control",
		"Connection", "Content-Disposition", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Range", "Content-Security-Policy", "Content-Type",
		"Date", "Etag", "Expires", "Keep-Alive", "Last-Modified", "Link", "Location",
		"Server", "Set-Cookie", "Strict-Transport-Security", "Trailer",
		"Transfer-Encoding", "Upgrade", "Vary", "Via", "Www-Authenticate",
		"X-Content-Type-Options", "X-Frame-Options", "X-Request-Id",
	} {
		m[k] = k
	}
	return m
}()
