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
// noticed when the delay ends. The read deadline that does it is set anew
// only when the one the connection's last exchange left would expire
// sooner than watchDelay/2 from now (or later than the wait may last): on
// a busy connection the watch may come after 50 ms, and the deadline is set
// once in 50 ms rather than for every request.
//
// Idle connections have no goroutine and no read buffer; one timer per
// Transport closes those idle for too long. Bytes a backend sent unasked on
// a pooled connection must never be taken for the next request's response
// (another client's), and a pooled connection it closed should not fail a
// request that could go elsewhere. Two things see to it:
//
//   - A reused connection the backend turns out to have closed (the
//     request's write fails, or the backend answers nothing) is given up,
//     and the request sent again, once, on a new connection when that is
//     safe, as net/http does: when nothing was written, or when the request
//     is replayable: idempotent (RFC 9110 §9.2.2, or carrying an
//     Idempotency-Key) and complete in the transport's buffer (no body, or
//     a small one). A 408 Request Timeout answering a replayable request
//     on a reused connection is taken the same way: it is most often the
//     backend timing the idle connection out before closing it, and RFC
//     9110 §15.5.9 lets the client repeat the request.
//   - Before it is reused, a pooled connection is checked (a non-blocking
//     peek, one system call): closed by the backend, or holding bytes, it
//     is discarded rather than used. The check runs only when it is needed
//     (conn.needsCheck): before a request that is not replayable (or a
//     second attempt), which could not be sent again; on a connection idle
//     for a second or more (idleCheckAfter), by when a backend's keep-alive
//     timeout may have closed it or sent a 408; and on a connection whose
//     last exchange makes stray bytes likely (suspect, conn.endsSuspect): a
//     response without a body by rule (to HEAD, 204, 304), after which a
//     faulty backend may send a body all the same, or an exchange with 1xx
//     responses or "Expect: 100-continue". A replayable request on a
//     connection reused within the second after an ordinary response, the
//     common case, costs no check: the retry covers a close, and a 408.
//     Not looked for then: bytes a faulty backend sends late after an
//     ordinary response (bytes that come with it close the connection at
//     once); nor, ever, bytes that arrive between the check and the
//     request's write. The check ignores the read deadline the last
//     exchange left, so that none is cleared for it.
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
