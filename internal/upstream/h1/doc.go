// Package h1 is the balancer's HTTP/1.1 client to its backends: one
// Transport per backend, holding a pool of keep-alive connections.
//
// It exists because net/http's Transport, built for general clients, costs a
// proxy more than the proxy itself: two goroutines per connection and
// channel hand-offs, contexts and timers per request, and a generic header
// parser (47 allocations per request against 3 here, see the benchmarks). A
// Transport does the whole exchange on the caller's goroutine:
//
//   - the request head (and a body of up to about 16 KiB) is written with one
//     write from a pooled buffer, given back as soon as it is written;
//     larger, chunked and "Expect: 100-continue" bodies are streamed by a
//     goroutine that lives only as long as the body, so that a backend may
//     answer before it has read everything (full duplex), and the response
//     header timeout starts once the body is written;
//   - the response head is parsed in place, strictly (RFC 9112: status line,
//     field syntax, Content-Length and Transfer-Encoding rules, no obs-fold,
//     no control characters in values, a size limit), into one string, and
//     into the caller's map if it gives one (the ResponseWriter's);
//   - the body reader frames Content-Length, chunked (with trailers) and
//     close-delimited bodies, and gives the connection back to the pool only
//     when the body was read completely and the connection is reusable; a
//     small response ends, and frees its connection, in its first Read;
//   - 1xx responses are skipped (or passed to Request.Got1xx), 100 Continue
//     releases a waiting body, and a 101 to an upgrade request hands over
//     the connection as the response body.
//
// Waits are bounded by socket deadlines, not timers of their own. The
// request context closes the connection when it is done (the client went
// away), through context.AfterFunc; a synchronous exchange installs that
// watch only once it has run for watchDelay (100 ms), since most end sooner
// and the watch costs five allocations: a client that leaves earlier is
// noticed when the delay ends.
//
// Idle connections have no goroutine and no read buffer; one timer per
// Transport closes those idle for too long. A pooled connection the backend
// turns out to have closed (it answers nothing) is retried once on a new
// connection when that is safe, as net/http does: when nothing was written,
// or when the request is idempotent (RFC 9110 §9.2.2, or carries an
// Idempotency-Key) and complete in the transport's buffer (no body, or a
// small one). Before a request that could not be retried that way, and
// before any request on a connection idle for a second or more, the
// connection is checked for liveness (a non-blocking peek): closed by the
// backend, or holding bytes it sent unasked (a 408 before closing), it is
// discarded rather than used.
//
// Errors keep the shapes the proxy classifies: a failure to connect (dial,
// TLS handshake, no free connection in time) is a *net.OpError with Op
// "dial"; timeouts report Timeout(); a broken connection wraps io.EOF,
// io.ErrUnexpectedEOF, ECONNRESET or EPIPE; a malformed response is a
// *ProtocolError, a request that cannot be written a *RequestError (and
// nothing is sent).
//
// Every parser has a fuzz target (fuzz_test.go); FuzzResponse compares what
// it accepts with net/http's reading of the same bytes.
package h1
