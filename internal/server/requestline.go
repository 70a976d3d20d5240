package server

import (
	"bytes"
	"net"
	"sync/atomic"
)

// Go's http.Server counts the request line against MaxHeaderBytes and
// answers "431 Request Header Fields Too Large" when a request line alone is
// too long. RFC 9112 §3 wants "414 URI Too Long" for that case, which is what
// the handler answers for targets under the header limit. uriLimitListener
// makes the two agree: its connections remember whether the line being read
// when the limit hit is a request line, and turn Go's 431 into a 414 then.

// uriLimitListener wraps the connections of a listener with uriLimitConn.
type uriLimitListener struct {
	net.Listener
	maxURI int // request lines longer than this are "too long"
}

func (l uriLimitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &uriLimitConn{Conn: c, maxURI: l.maxURI}, nil
}

// uriLimitConn tracks the line being read: its length and first bytes.
// Reads happen on one goroutine at a time (net/http hands the connection
// from the request reader to the background reader and back); writes may
// happen on another, so the verdict they share is atomic.
type uriLimitConn struct {
	net.Conn
	maxURI int

	lineLen   int      // bytes of the current line read so far
	lineStart [16]byte // its first bytes, to recognise a request line
	startLen  int

	longRequestLine atomic.Bool
}

var (
	tooLargeStatus = []byte("HTTP/1.1 431 ")
	uriTooLong     = []byte("HTTP/1.1 414 URI Too Long\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n414 URI Too Long\n")
)

func (c *uriLimitConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.track(p[:n])
	}
	return n, err
}

func (c *uriLimitConn) track(b []byte) {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
		c.lineLen, c.startLen = 0, 0
	}
	c.startLen += copy(c.lineStart[c.startLen:], b)
	c.lineLen += len(b)
	c.longRequestLine.Store(c.lineLen > c.maxURI && isRequestLineStart(c.lineStart[:c.startLen]))
}

// isRequestLineStart reports whether b begins like "METHOD /": a token, one
// space, then an origin-form or absolute-form target. Header lines begin
// with "Name:" instead.
func isRequestLineStart(b []byte) bool {
	sp := bytes.IndexByte(b, ' ')
	if sp <= 0 || sp+1 >= len(b) {
		return false
	}
	for _, ch := range b[:sp] {
		if ch < 'A' || ch > 'Z' {
			return false
		}
	}
	return b[sp+1] == '/' || b[sp+1] == 'h' || b[sp+1] == 'H'
}

func (c *uriLimitConn) Write(p []byte) (int, error) {
	if c.longRequestLine.Load() && bytes.HasPrefix(p, tooLargeStatus) {
		if _, err := c.Conn.Write(uriTooLong); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}
