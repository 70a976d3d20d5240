// Package h1 is the balancer's HTTP/1.1 client to its backends: one
// Transport per backend, holding a pool of keep-alive connections.
//
// It exists because net/http's Transport, built for general clients, costs a
// proxy more than the proxy itself: two goroutines per connection and
// channel hand-offs, contexts and timers per request, and a generic header
// parser. A Transport here does the whole exchange on the caller's
// goroutine:
//
//   - the request head (and a small body) is written with one write from a
//     pooled buffer; larger and chunked bodies are streamed by a goroutine
//     that lives only as long as the body, so that a backend may answer
//     before it has read everything (full duplex);
//   - the response head is parsed in place, strictly (RFC 9112: status line,
//     field syntax, Content-Length and Transfer-Encoding rules, no obs-fold,
//     a size limit), into one string and one map;
//   - the body reader frames Content-Length, chunked (with trailers) and
//     close-delimited bodies, and gives the connection back to the pool only
//     when the body was read completely and the connection is reusable;
//   - timeouts are socket deadlines, and the request context closes the
//     connection when it is cancelled (the client went away).
//
// Idle connections have no goroutine; one timer per Transport closes those
// idle for too long. A connection from the pool that turns out to be closed
// by the backend (it answers nothing) is retried once on a new connection
// when that is safe: nothing was written, or the request is idempotent and
// complete in the transport's buffer (no body, or a small one). Idle
// connections are checked for liveness before a request that could not be
// retried that way is written on them.
//
// Errors keep the shapes the proxy classifies: a failure to connect (dial,
// TLS handshake, no free connection in time) is a *net.OpError with Op
// "dial"; timeouts report Timeout(); a broken connection wraps io.EOF,
// io.ErrUnexpectedEOF, ECONNRESET or EPIPE; a malformed response is a
// *ProtocolError.
package h1
