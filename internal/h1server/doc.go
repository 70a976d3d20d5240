// Package h1server is the balancer's HTTP/1.x server for client
// connections: it reads requests, hands them to an http.Handler (the proxy)
// as *http.Request, and writes the handler's responses, keeping
// connections alive between requests.
//
// It exists because net/http's server, built for any handler, costs a proxy
// more than the proxy itself (see docs/BENCHMARKS.md): per request it starts
// a goroutine that reads the connection in the background (to notice a
// client that goes away), makes a cancellable context, sets three read
// deadlines, allocates a response and sorts the header fields it writes.
// Here, on each connection's own goroutine:
//
//   - the request head is read and parsed by net/http's own parser
//     (http.ReadRequest), so the rules of RFC 9112 that the end-to-end
//     tests pin down (framing, Transfer-Encoding, Content-Length, header
//     syntax) are exactly net/http's; the server adds what net/http's server
//     adds: the Host rules, 417 for an unknown Expect, 501 for an unknown
//     transfer coding, 505 for other major versions, a limit on the whole
//     head (431, or 414 when the request line alone is too long);
//   - at most one read deadline per request: the idle (or, on a new
//     connection, header) timeout armed while waiting for the request, the
//     idle one moved on only once per sixteenth of it (armIdleDeadline); a
//     head that is not complete in the first read gets the header timeout;
//   - the request context notices a client that goes away only when someone
//     waits on it: its Done starts the background read then (the proxy's
//     backend client does so once an exchange has run for 100 ms), so
//     quick requests pay nothing for it;
//   - the response head and a small body go out in one write; a larger body
//     follows in the same writev. Bodies without a Content-Length are sent
//     chunked to HTTP/1.1 clients (close-delimited to HTTP/1.0 ones), except
//     a body the handler finished without flushing, which gets a
//     Content-Length; 1xx responses, 100 Continue on the first body read,
//     trailers, Flush, Hijack and read/write deadlines work as with
//     net/http's server (http.ResponseController included).
//
// Plain requests (fastparse.go) are read into parts the connection reuses:
// the header map, the URL, the strings of the head's lines that repeat the
// last head's (internal/linecache) and the *http.Request itself, reset
// whole before each request. So, unlike with net/http's server, a handler
// must not use the Request once ServeHTTP has returned, not even
// r.Context() from a goroutine it started: take what it needs (the
// context, header values) before it returns.
//
// Above Server.LeanAbove open connections (default 256), idle
// connections wait lean: no read buffer, and on Linux no goroutine either:
// they are parked in an epoll instance of the server's own, which one
// goroutine watches through Go's poller, and a reused worker goroutine
// resumes each one that becomes readable (park_linux.go).
//
// Connections that open with the HTTP/2 preface (h2c with prior knowledge)
// are handed to a net/http server, which keeps serving HTTP/2. Graceful
// shutdown closes idle connections at once, lets active ones finish their
// response (sent with "Connection: close") and waits for them.
package h1server
