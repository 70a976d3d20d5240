package h1

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request is one request to a backend. The Transport reads it during Do and,
// for a streamed body, until the body is written; the caller must not change
// it meanwhile.
type Request struct {
	// Ctx, if not nil, aborts the exchange when done: the connection is
	// closed, also while the response body is being read.
	Ctx context.Context

	Method string // a token; "" means GET
	Target string // request-target in origin form ("/path?query") or "*"; nothing else is sent
	Host   string // Host field; "" means the backend's address

	// Header holds the end-to-end fields to send. Host, Content-Length,
	// Transfer-Encoding and Trailer are ignored: the Transport writes them
	// from the other fields. Names and values are checked.
	Header http.Header

	// Body is the request content; nil means none. ContentLength is its
	// length, or -1 if unknown, in which case it is sent chunked.
	Body          io.Reader
	ContentLength int64

	// Trailer, if not nil, points to the trailer fields sent after a
	// chunked body; it is read once Body returned io.EOF. The names it
	// holds when the head is written are announced in a Trailer field, and
	// make the body chunked.
	Trailer *http.Header

	// Close asks the backend to close the connection after its response.
	Close bool

	// ResponseHeader, if not nil, is an empty map that receives the fields
	// of the final response: Response.Header is then this map (saving a
	// map and a copy when it is the ResponseWriter's). After an error it
	// is empty again.
	ResponseHeader http.Header
	// ResponseValues, if long enough, holds the values of the final
	// response's header fields instead of an allocation per response. It
	// must stay untouched as long as those values are used: with
	// ResponseHeader, an array that lives as long as that map (a
	// per-connection one of the server that owns it).
	ResponseValues []string

	// StripHopByHop leaves the hop-by-hop fields (RFC 9110 §7.6.1) and
	// those the Connection field names out of the response header, except
	// in a 101 response. The response's framing and Close still follow
	// them.
	StripHopByHop bool

	// Got1xx, if not nil, is called with every informational response
	// other than 100 and 101 (e.g. 103 Early Hints) before the final one;
	// an error aborts the exchange.
	Got1xx func(code int, header http.Header) error
	// Space, if not nil, holds the response and its body reader instead of
	// a new allocation per exchange. The caller must not reuse it (for
	// another request) until it is done with the response; a pooled
	// per-request state is the place for it.
	Space *ResponseSpace

	// Start, if not zero, is the time the caller read just before Do (a
	// clock read costs, and a caller that measures the exchange has one):
	// the pool's idle checks use it, and so does the response-header
	// timeout when Do did not wait (for a connection, or for a body).
	// Zero: Do reads the clock.
	Start time.Time

	// closer is closed once the body is written or abandoned (RoundTrip).
	closer io.Closer
}

// maxInformational bounds the 1xx responses accepted before a final one.
const maxInformational = 16

func (r *Request) method() string {
	if r.Method == "" {
		return http.MethodGet
	}
	return r.Method
}

// idempotent reports whether the request may be sent twice (RFC 9110
// §9.2.2), also when the client said so with an Idempotency-Key.
func (r *Request) idempotent() bool {
	switch r.method() {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	_, a := r.Header["Idempotency-Key"]
	_, b := r.Header["X-Idempotency-Key"]
	return a || b
}

// framing is how a request's body is sent.
type framing struct {
	body     bool  // there is a body
	length   int64 // its length when not chunked
	chunked  bool
	trailers bool // trailer fields are announced
	expect   bool // Expect: 100-continue: the body waits for the backend's go
	upgrade  bool // Connection: upgrade
}

func requestFraming(r *Request) framing {
	var f framing
	if c := r.Header["Connection"]; len(c) > 0 {
		f.upgrade = HasToken(c, "upgrade")
	}
	if r.Body == nil {
		return f
	}
	f.body = true
	f.length = r.ContentLength
	f.trailers = r.Trailer != nil && len(*r.Trailer) > 0
	f.chunked = f.length < 0 || f.trailers
	if e := r.Header["Expect"]; len(e) > 0 {
		f.expect = HasToken(e, "100-continue")
	}
	return f
}

// appendHead appends the request head to buf: request line, Host, the
// header's fields, framing fields, the empty line. Every part is checked
// first, so that nothing invalid (a CR or LF smuggling a second request,
// say) is ever written.
func appendHead(buf []byte, r *Request, host string, f framing) ([]byte, error) {
	method := r.method()
	if !isToken(method) {
		return buf, &RequestError{"invalid method"}
	}
	// Origin form, or "*" (RFC 9112 §3.2): a gateway names the resource by
	// path; an absolute form would compete with Host for the authority.
	if r.Target != "*" && (r.Target == "" || r.Target[0] != '/') || !validTarget(r.Target) {
		return buf, &RequestError{"invalid request target"}
	}
	if r.Host != "" {
		host = r.Host
	}
	if !validTarget(host) {
		return buf, &RequestError{"invalid Host"}
	}
	buf = append(buf, method...)
	buf = append(buf, ' ')
	buf = append(buf, r.Target...)
	buf = append(buf, " HTTP/1.1\r\nHost: "...)
	buf = append(buf, host...)
	buf = append(buf, "\r\n"...)
	hasConnection := false
	for k, vv := range r.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		case "Connection":
			hasConnection = true
		}
		if !isToken(k) {
			return buf, &RequestError{"invalid field name " + strconv.Quote(k)}
		}
		for _, v := range vv {
			if !validValue(v) {
				return buf, &RequestError{"invalid value of field " + k}
			}
			buf = append(buf, k...)
			buf = append(buf, ": "...)
			buf = append(buf, v...)
			buf = append(buf, "\r\n"...)
		}
	}
	switch {
	case f.chunked:
		buf = append(buf, "Transfer-Encoding: chunked\r\n"...)
	case f.body:
		buf = append(buf, "Content-Length: "...)
		buf = strconv.AppendInt(buf, f.length, 10)
		buf = append(buf, "\r\n"...)
	default:
		switch method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			// Without a body these still say so: some servers insist
			// (411 Length Required), as net/http's client knows.
			buf = append(buf, "Content-Length: 0\r\n"...)
		}
	}
	if f.trailers {
		buf = append(buf, "Trailer: "...)
		first := true
		for k := range *r.Trailer {
			if !isToken(k) || forbiddenTrailer(k) {
				continue
			}
			if !first {
				buf = append(buf, ", "...)
			}
			first = false
			buf = append(buf, k...)
		}
		buf = append(buf, "\r\n"...)
	}
	if r.Close && !hasConnection {
		buf = append(buf, "Connection: close\r\n"...)
	}
	buf = append(buf, "\r\n"...)
	return buf, nil
}

// validTarget reports whether s is non-empty and has no whitespace or
// control characters: what a request target or Host may not contain.
func validTarget(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validValue reports whether v is a valid field value: no control
// characters but HTAB (in particular no CR, LF or NUL), and no DEL.
//
// It looks at eight bytes at a time: a word with no byte below 0x20 and
// none equal to 0x7f is valid as it is; only a word with one (a tab,
// mostly) is looked at byte by byte. A browser's request head has some
// 400 bytes of values, which byte by byte were a third of writing it.
func validValue(v string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(v); i += 8 {
		x := uint64(v[i]) | uint64(v[i+1])<<8 | uint64(v[i+2])<<16 | uint64(v[i+3])<<24 |
			uint64(v[i+4])<<32 | uint64(v[i+5])<<40 | uint64(v[i+6])<<48 | uint64(v[i+7])<<56
		below := (x - 0x20*ones) &^ x & highs // some byte < 0x20 (exact for "some")
		d := x ^ 0x7f*ones
		del := (d - ones) &^ d & highs // some byte == 0x7f
		if below|del != 0 && !validValueBytes(v[i:i+8]) {
			return false
		}
	}
	return validValueBytes(v[i:])
}

// validValueBytes is validValue byte by byte.
func validValueBytes(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// forbiddenTrailer reports whether a field must not be sent or forwarded in
// a trailer section: those that frame or route the message (RFC 9110
// §6.5.1), and hop-by-hop ones.
func forbiddenTrailer(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Content-Length", "Transfer-Encoding", "Trailer", "Host", "Connection",
		"Keep-Alive", "Te", "Upgrade", "Proxy-Connection", "Proxy-Authenticate",
		"Proxy-Authorization":
		return true
	}
	return false
}

// appendTrailer appends the last chunk, the trailer fields and the end of
// the chunked body.
func appendTrailer(buf []byte, t http.Header) []byte {
	buf = append(buf, "0\r\n"...)
	for k, vv := range t {
		if !isToken(k) || forbiddenTrailer(k) {
			continue
		}
		for _, v := range vv {
			if !validValue(v) {
				continue
			}
			buf = append(buf, k...)
			buf = append(buf, ": "...)
			buf = append(buf, v...)
			buf = append(buf, "\r\n"...)
		}
	}
	return append(buf, "\r\n"...)
}

// HasToken reports whether a comma-separated list field (Connection,
// Expect, TE, ...) contains token, compared case-insensitively and without
// the optional whitespace around elements (RFC 9110 §5.6.1).
func HasToken(values []string, token string) bool {
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(trimOWS(elem), token) {
				return true
			}
		}
	}
	return false
}
