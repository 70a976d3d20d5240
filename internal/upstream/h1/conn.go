package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lbproject/load_balancer/internal/linecache"
	"github.com/lbproject/load_balancer/internal/sockio"
)

// readBufSize is the size of a connection's read buffer, taken from a pool
// while the connection is in use: a response head of typical size fits in
// it; bodies are read past it straight into the caller's buffer.
const readBufSize = 4 << 10

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}

// conn is one connection to the backend. Its exchange runs on the caller's
// goroutine; a streamed request body has a goroutine of its own while it is
// written.
type conn struct {
	t   *Transport
	nc  net.Conn        // TCP, or TLS over it
	raw syscall.RawConn // the TCP socket, for the liveness check; nil if unknown
	// sock is nc, read and written through a sockio.Socket when nc is the
	// TCP socket itself (not TLS over it).
	sock io.ReadWriter
	br   *bufio.Reader // while in use; nil while idle

	reused bool      // it served an exchange before, or waited in the pool
	idleAt time.Time // when it was pooled, or handed to a waiting request
	// suspect: the last exchange ended in a way after which a backend
	// often sends bytes nobody asked for (see endsSuspect); the next
	// exchange checks the connection first.
	suspect bool

	// readDL is the read deadline the exchange's goroutine last set on the
	// connection (zero: none), so that none is cleared or set again for
	// nothing. The body writer sets the response head deadline without it;
	// the reader clears that one, through setReadDeadline, once the head is
	// read, before the connection can be reused.
	readDL time.Time

	rd      io.Reader // connReader{c}, what br reads from
	closed  atomic.Bool
	aborted atomic.Bool // closed because the request's context was done
	stop    func() bool // stops the context watch of the exchange
	abortFn func()      // c.abort, made once

	// The deferred context watch of a synchronous exchange (see
	// connReader); only the exchange's goroutine uses these.
	ctx      context.Context
	fast     bool      // the watch is not installed yet: a read deadline will do it
	phaseEnd time.Time // when the current wait times out for real; zero: never

	// The body writer of a streamed request body.
	writing  bool        // a writer runs, or ran and was not waited for
	wdone    chan error  // its result
	bodySent atomic.Bool // it wrote the whole body
	hmu      sync.Mutex  // orders the response head deadline between writer and reader
	headWait bool        // the reader waits for the final response head
	bodyDone bool        // the writer ended

	// lines: the last response head's lines, whose strings the next
	// head reuses where a line repeats (most do: Server, Content-Type,
	// Connection), so that parsing it allocates little or nothing.
	lines linecache.Cache
	// memo: how the last head's first field lines were split, so that a
	// repeated line is not split and checked again (768 bytes).
	memo fieldMemo

	peek   [1]byte
	peekFn func(fd uintptr) // c.peekFD, made once
	peekOK bool             // peekFD's result
}

func newConn(t *Transport, nc net.Conn) *conn {
	c := &conn{t: t, nc: nc}
	c.abortFn = c.abort
	c.peekFn = c.peekFD
	c.rd = &connReader{c}
	if tc, ok := nc.(*net.TCPConn); ok {
		c.raw, _ = tc.SyscallConn()
	}
	c.sock = sockio.ReadWriter(nc)
	return c
}

// attach prepares a connection taken from the pool or just dialed for an
// exchange.
func (c *conn) attach() {
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(c.rd)
}

// close closes the connection, once, and frees its slot in the pool. It may
// run on any goroutine.
func (c *conn) close() {
	if c.closed.Swap(true) {
		return
	}
	c.nc.Close()
	if c.t.opt.OnConnClose != nil {
		c.t.opt.OnConnClose()
	}
	c.t.connClosed()
}

// abort is the context watch: the client went away.
func (c *conn) abort() {
	c.aborted.Store(true)
	c.close()
}

// release ends an exchange whose response was read completely: the
// connection goes back to the pool if nothing stands against it.
func (c *conn) release() {
	c.fast, c.ctx = false, nil
	if c.stop != nil {
		stopped := c.stop()
		c.stop = nil
		if !stopped {
			c.close() // the context was done: closed already, or about to be
			return
		}
	}
	if c.writing {
		var err error
		if c.bodySent.Load() {
			err = <-c.wdone // the writer is ending
		} else {
			// The backend answered before the body was written, or just
			// as its last bytes went out and the writer has yet to say
			// so: give it a moment. A body not sent whole would be taken
			// for the next request: the connection is closed.
			t := time.NewTimer(writerGrace)
			select {
			case err = <-c.wdone:
				t.Stop()
			case <-t.C:
				c.close()
				return
			}
		}
		c.writing = false
		if err != nil || !c.bodySent.Load() {
			c.close()
			return
		}
	}
	if c.closed.Load() || c.br.Buffered() > 0 {
		// Bytes beyond the response: the backend is out of step.
		c.close()
		return
	}
	c.recycleReader()
	c.reused = true
	c.t.putIdle(c)
}

// writerGrace is how long an exchange whose response ended before its body
// writer did waits for the writer, to keep the connection if the whole
// body went out.
const writerGrace = 5 * time.Millisecond

// recycleReader gives the read buffer back to the pool. Only the exchange's
// goroutine calls it, once nothing will read from the connection again.
func (c *conn) recycleReader() {
	c.br.Reset(nil)
	readers.Put(c.br)
	c.br = nil
}

// idleCheckAfter is how long a pooled connection may idle before it is
// checked (alive) whatever the request. A backend closes an idle
// connection, or sends a 408 and closes it, when its keep-alive timeout
// expires; those are seconds long (nginx 75 s, Apache httpd and Node.js
// 5 s), so that a connection reused sooner has almost always been left
// alone, and the check, a system call, would be paid on every request of a
// busy connection for nothing. The rare one that was closed all the same
// costs a replayable request a retry on a new connection (see Do); a
// request that could not be retried is checked however short the idle.
const idleCheckAfter = time.Second

// needsCheck reports whether a pooled connection must be checked (alive)
// before it takes a request, at now: when the last exchange left it
// suspect (stray bytes are likely), when the request could not be sent
// again on a new connection if this one turned out to be closed
// (replayable, see Do), or when it idled for idleCheckAfter or more.
// Otherwise the exchange itself finds a closed connection: the write
// fails, or the backend answers nothing (or a 408), and Do retries.
func (c *conn) needsCheck(now time.Time, replayable bool) bool {
	return c.suspect || !replayable || now.Sub(c.idleAt) >= idleCheckAfter
}

// endsSuspect reports whether an exchange that got the final response
// head h, after informational 1xx responses, to a request with method and
// framing f, leaves its connection suspect: a response without a body by
// rule (to HEAD, 204, 304), whose body a faulty backend sends all the same
// (RFC 9112 §6.3), or one that involved 1xx responses or an "Expect:
// 100-continue" (a late or repeated 100 Continue). Bytes that arrived with
// the response close the connection at once (release); these checks catch
// those that arrive later.
func endsSuspect(method string, h *head, informational int, f framing) bool {
	return informational > 0 || f.expect || h.status == http.StatusNoContent ||
		h.status == http.StatusNotModified || method == http.MethodHead
}

// alive reports whether an idle connection can take a request: the backend
// has not closed it (nor sent anything unasked). It costs a system call, a
// non-blocking peek, and no allocation; it ignores read deadlines (Control
// does not look at them), so that none needs clearing first. Without a
// socket to look at, it says yes.
func (c *conn) alive() bool {
	if c.raw == nil {
		return true
	}
	c.peekOK = false
	if err := c.raw.Control(c.peekFn); err != nil {
		return false
	}
	return c.peekOK
}

// setReadDeadline sets the connection's read deadline, and remembers it
// (readDL). Only the exchange's goroutine calls it.
func (c *conn) setReadDeadline(t time.Time) {
	c.readDL = t
	c.nc.SetReadDeadline(t)
}

// watchDelay is how long a synchronous exchange runs before its context
// is watched. Most exchanges end sooner, and skip the cost of a context
// watch (context.AfterFunc: 5 allocations and as many lock round trips);
// a client that leaves within that time is noticed when it ends.
const watchDelay = 100 * time.Millisecond

// watch makes the end of ctx abort the exchange.
func (c *conn) watch(ctx context.Context) {
	c.fast = false
	c.stop = context.AfterFunc(ctx, c.abortFn)
}

// watchLater prepares a synchronous exchange's wait for the response head,
// which times out at end (zero: never): a read deadline at the earlier of
// end and watchDelay from now makes connReader install the context watch
// then, if the exchange still runs.
//
// The deadline the last exchange on the connection left (it stays set
// while the body is read, and after) does as well if it expires no later
// than that, and no sooner than watchDelay/2 from now: a connection busy
// with short exchanges then has its deadline set once every watchDelay/2
// rather than for every request. The watch is installed, at worst, after
// watchDelay/2 instead of watchDelay; the wait for the head still ends at
// end, which connReader sets once the earlier deadline has passed.
func (c *conn) watchLater(ctx context.Context, now, end time.Time) {
	c.ctx, c.fast, c.phaseEnd = ctx, true, end
	d := now.Add(watchDelay)
	if !end.IsZero() && end.Before(d) {
		d = end
	}
	if dl := c.readDL; !dl.IsZero() && !dl.After(d) && dl.Sub(now) >= watchDelay/2 {
		return
	}
	c.setReadDeadline(d)
}

// connReader is what a connection's bufio.Reader reads from: the
// connection, with the deferred context watch. A read deadline that
// expires while the watch is deferred installs it (or ends the exchange if
// the context is done already) and lets the read go on until the current
// wait's real deadline.
type connReader struct{ c *conn }

func (r *connReader) Read(p []byte) (int, error) {
	c := r.c
	for {
		n, err := c.sock.Read(p)
		if err == nil || !c.fast || !isTimeout(err) {
			return n, err
		}
		c.fast = false
		if !c.phaseEnd.IsZero() && !time.Now().Before(c.phaseEnd) {
			return n, err // the real deadline
		}
		if cerr := c.ctx.Err(); cerr != nil {
			c.aborted.Store(true)
			c.close()
			return n, cerr
		}
		c.stop = context.AfterFunc(c.ctx, c.abortFn)
		c.setReadDeadline(c.phaseEnd)
		if n > 0 {
			return n, nil
		}
	}
}

// errIdle408 is the failure of an exchange on a reused connection whose
// answer was a 408 Request Timeout: the backend timed the connection out.
// It wraps io.EOF, as a connection the backend closed unanswered does.
var errIdle408 = fmt.Errorf("h1: reading response: 408 Request Timeout on a reused connection: %w", io.EOF)

// fail closes the connection after a failed exchange and returns err, or
// the context's error if the context closed it.
func (c *conn) fail(ctx context.Context, err error) error {
	c.close()
	c.fast, c.ctx = false, nil
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	if c.aborted.Load() && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// roundTrip writes the request (buf holds its head, and the body if inline)
// and reads the response head. retry reports whether the request may be
// sent again on another connection: this reused one failed before the
// backend saw anything, or before it answered anything (or only a 408) to
// a replayable request.
//
// Unless keep is set, w is given back to its pool once written. now, if
// not zero, stands for the time at the end of the write (nothing waited
// since the caller read it).
func (c *conn) roundTrip(ctx context.Context, req *Request, buf []byte, f framing, inline, replayable, keep bool, w *writeBuf, now time.Time) (res *http.Response, err error, retry bool) {
	async := f.body && !inline
	if async || f.expect {
		c.watch(ctx)
		if !c.readDL.IsZero() { // left from the last exchange
			c.setReadDeadline(time.Time{})
		}
	}
	if n, err := c.sock.Write(buf); err != nil {
		return nil, c.fail(ctx, fmt.Errorf("h1: writing request: %w", err)), c.reused && n == 0
	}
	if !keep {
		w.put()
	}
	// The backend needs a moment to answer. Reading now would most often
	// find nothing (a system call for EAGAIN, then a park and a wake-up by
	// the poller); letting the other runnable goroutines go first makes the
	// read find the response. Measured: +6 % requests per CPU-second at 64
	// connections, +33 % at 2000, lower p99 (docs/BENCHMARKS.md).
	runtime.Gosched()
	rht := c.t.opt.ResponseHeaderTimeout
	var expectUntil time.Time // end of the wait for 100 Continue
	switch {
	case f.expect:
		// RFC 9110 §10.1.1: wait a little for the backend's 100 Continue
		// (or a final answer) before sending the body.
		expectUntil = time.Now().Add(c.t.opt.ExpectContinueTimeout)
		c.setReadDeadline(expectUntil)
		if _, err := c.br.Peek(1); err != nil {
			if !isTimeout(err) || c.aborted.Load() {
				return nil, c.fail(ctx, fmt.Errorf("h1: reading response: %w", err)), false
			}
			c.setReadDeadline(time.Time{})
			c.startWriter(req, f)
		} else if rht > 0 {
			c.setReadDeadline(time.Now().Add(rht))
		} else {
			c.setReadDeadline(time.Time{})
		}
	case async:
		c.startWriter(req, f) // it sets the head deadline once the body is written
	default:
		// The response-header timeout runs from the end of the write, not
		// from the start of the exchange: a dial, a wait for a free
		// connection or a slow client body is not the backend being slow.
		if now.IsZero() {
			now = time.Now()
		}
		var end time.Time
		if rht > 0 {
			end = now.Add(rht)
		}
		c.watchLater(ctx, now, end)
	}

	var h head
	// The response, its body reader and field values in one allocation,
	// or the response and body reader in the caller's space. The field
	// values are not put there: they may outlive the caller's use of the
	// response (a ResponseWriter's header holds them until it is written).
	sp := req.Space
	var vals []string
	if sp != nil {
		*sp = ResponseSpace{} // what a failed attempt may have left
		vals = req.ResponseValues
	} else {
		rb := new(responseBody)
		sp, vals = &rb.ResponseSpace, rb.vals[:]
	}
	informational := 0
	for {
		if _, err := c.br.Peek(1); err != nil {
			if f.expect && !c.writing && isTimeout(err) && !c.aborted.Load() && !time.Now().Before(expectUntil) {
				// An informational response other than 100 (a 103) came,
				// then nothing: the wait for 100 Continue is over, as if
				// nothing had come; send the body.
				c.setReadDeadline(time.Time{})
				c.startWriter(req, f)
				continue
			}
			noAnswer := informational == 0 && !isTimeout(err) && !c.aborted.Load()
			return nil, c.fail(ctx, fmt.Errorf("h1: reading response: %w", err)), c.reused && noAnswer && replayable
		}
		h = head{dst: req.ResponseHeader, vals: vals, strip: req.StripHopByHop, lines: &c.lines, memo: &c.memo}
		if err := c.readHead(&h); err != nil {
			return nil, c.fail(ctx, err), false
		}
		if h.status >= 200 || h.status == http.StatusSwitchingProtocols {
			break
		}
		if informational++; informational > maxInformational {
			return nil, c.fail(ctx, protoErr("too many informational responses")), false
		}
		switch {
		case h.status == http.StatusContinue:
			if f.expect && !c.writing {
				// The head deadline now waits for the body: the writer
				// sets it again once the body is written.
				c.setReadDeadline(time.Time{})
				c.startWriter(req, f)
			}
		case req.Got1xx != nil:
			if err := req.Got1xx(h.status, h.header); err != nil {
				return nil, c.fail(ctx, err), false
			}
		}
		if h.status != http.StatusContinue && f.expect && !c.writing {
			// Still waiting for 100 Continue: only until the wait ends.
			c.setReadDeadline(expectUntil)
		}
		if req.ResponseHeader != nil {
			// The 1xx response's fields were parsed into the final
			// response's header map: they are not the final response's.
			clear(req.ResponseHeader)
		}
	}
	if h.status == http.StatusRequestTimeout && c.reused && replayable && informational == 0 {
		// A 408 on a reused connection is most often the backend timing
		// the idle connection out before closing it (RFC 9110 §15.5.9),
		// sent before the request came: no answer to it. And were it
		// one, the client "MAY repeat that request".
		return nil, c.fail(ctx, errIdle408), true
	}
	c.suspect = endsSuspect(req.method(), &h, informational, f)
	switch {
	case c.writing:
		c.hmu.Lock()
		c.headWait = false
		c.setReadDeadline(time.Time{})
		c.hmu.Unlock()
	case c.fast:
		// The body has no deadline; the pending one installs the watch if
		// the body takes long.
		c.phaseEnd = time.Time{}
	default:
		c.phaseEnd = time.Time{}
		c.setReadDeadline(time.Time{})
	}

	res, err = c.response(ctx, sp, req.method(), req.Close, &h, f)
	return res, err, false
}

// response makes the Response for head h, with a body reader for its
// framing (RFC 9112 §6.3). A response without a body ends the exchange.
func (c *conn) response(ctx context.Context, sp *ResponseSpace, method string, reqClose bool, h *head, f framing) (*http.Response, error) {
	res := &sp.res
	*res = http.Response{
		Status:     statusText(h.status),
		StatusCode: h.status,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: h.minor,
		Header:     h.header,
		Trailer:    h.trailer,
	}
	if h.minor == 0 {
		res.Proto = "HTTP/1.0"
	}
	closeAfter := h.connClose || h.minor == 0 && !h.connKeepAlive || h.ambiguous || reqClose ||
		f.expect && !c.writing // the backend refused the body; it may still expect it
	res.Close = closeAfter

	if h.status == http.StatusSwitchingProtocols {
		if !f.upgrade || !h.connUpgrade {
			return nil, c.fail(ctx, protoErr("101 Switching Protocols without an upgrade"))
		}
		if c.writing || f.body {
			return nil, c.fail(ctx, protoErr("101 Switching Protocols to a request with a body"))
		}
		// The tunnel outlives the request context's watch and deadlines;
		// its users close it.
		c.fast, c.ctx = false, nil
		c.setReadDeadline(time.Time{})
		if c.stop != nil {
			stopped := c.stop()
			c.stop = nil
			if !stopped {
				return nil, c.fail(ctx, ctx.Err())
			}
		}
		res.Body = &upgraded{c: c}
		res.ContentLength = 0 // as net/http: a 1xx has no body; the tunnel is not one
		return res, nil
	}

	noBody := method == http.MethodHead || h.status == http.StatusNoContent || h.status == http.StatusNotModified
	switch {
	case noBody:
		res.ContentLength = 0
		if method == http.MethodHead {
			res.ContentLength = h.contentLength
		}
		res.Body = http.NoBody
	case h.chunked:
		res.TransferEncoding = chunkedCoding
		res.ContentLength = -1
		sp.body = body{c: c, ctx: ctx, res: res, mode: modeChunked, closeAfter: closeAfter}
		res.Body = &sp.body
	case h.contentLength > 0:
		res.ContentLength = h.contentLength
		sp.body = body{c: c, ctx: ctx, res: res, mode: modeLength, n: h.contentLength, closeAfter: closeAfter}
		res.Body = &sp.body
	case h.contentLength == 0:
		res.ContentLength = 0
		res.Body = http.NoBody
	default:
		// Delimited by the end of the connection (RFC 9112 §6.3 rule 8).
		res.ContentLength = -1
		res.Close = true
		sp.body = body{c: c, ctx: ctx, res: res, mode: modeEOF, closeAfter: true}
		res.Body = &sp.body
	}
	if res.Body == http.NoBody {
		if closeAfter {
			c.fail(ctx, nil)
		} else {
			c.release()
		}
	}
	return res, nil
}

// readHead reads one response head (already begun: Peek succeeded) and
// parses it into h. A head that fits in the read buffer is parsed where it
// lies; a bigger one is gathered line by line.
func (c *conn) readHead(h *head) error {
	max := c.t.opt.MaxResponseHeaderBytes
	br := c.br
	for scanned := 0; ; {
		buffered, _ := br.Peek(br.Buffered())
		if end := headEnd(buffered, scanned); end > 0 {
			if end > max {
				return protoErr("response head too large")
			}
			err := parseHead(buffered[:end], h)
			br.Discard(end)
			return err
		}
		scanned = max0(len(buffered) - 3)
		if len(buffered) >= max {
			return protoErr("response head too large")
		}
		if len(buffered) == br.Size() {
			return c.readBigHead(h)
		}
		if _, err := br.Peek(len(buffered) + 1); err != nil {
			return fmt.Errorf("h1: reading response head: %w", unexpectedEOF(err))
		}
	}
}

// readBigHead gathers a head larger than the read buffer, line by line,
// up to the size limit.
func (c *conn) readBigHead(h *head) error {
	max := c.t.opt.MaxResponseHeaderBytes
	acc := make([]byte, 0, 2*readBufSize)
	lineStart := 0
	for {
		frag, err := c.br.ReadSlice('\n')
		if len(acc)+len(frag) > max {
			return protoErr("response head too large")
		}
		acc = append(acc, frag...)
		switch {
		case err == bufio.ErrBufferFull:
			continue // a long line: its next part
		case err != nil:
			return fmt.Errorf("h1: reading response head: %w", unexpectedEOF(err))
		}
		line := acc[lineStart:]
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			if lineStart == 0 {
				return protoErr("empty line before the status line")
			}
			return parseHead(acc, h)
		}
		lineStart = len(acc)
	}
}

// headEnd returns the length of the head at the start of b (up to and
// including the empty line that ends it), or 0 if b does not hold all of
// it. The search starts at from. A head cannot begin with an empty line;
// one that does is left to parseHead to reject.
func headEnd(b []byte, from int) int {
	switch {
	case len(b) > 0 && b[0] == '\n':
		return 1 // parseHead rejects it
	case len(b) > 1 && b[0] == '\r' && b[1] == '\n':
		return 2
	}
	for i := from; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '\n') // vectorised, line by line
		if j < 0 {
			return 0
		}
		i += j
		// An empty line after this one: "\n\n" or "\n\r\n".
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return 0
}

func max0(n int) int { return max(n, 0) }

// unexpectedEOF turns the end of the connection in the middle of a
// message into io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &te) && te.Timeout()
}

var chunkedCoding = []string{"chunked"}

// statusTexts holds "NNN Reason" for the statuses net/http knows.
var statusTexts = func() (t [600]string) {
	for code := 100; code < 600; code++ {
		if s := http.StatusText(code); s != "" {
			t[code] = strconv.Itoa(code) + " " + s
		}
	}
	return t
}()

func statusText(code int) string {
	if s := statusTexts[code]; s != "" {
		return s
	}
	return strconv.Itoa(code)
}

// responseBody is a response with its body reader and the array its
// header's values are kept in, when they are few.
type responseBody struct {
	ResponseSpace
	vals [8]string
}

// ResponseSpace is room for one response and its body reader (see
// Request.Space).
type ResponseSpace struct {
	res  http.Response
	body body
}

// upgraded is the connection after 101 Switching Protocols, with the
// bytes the backend sent after its response head.
type upgraded struct{ c *conn }

func (u *upgraded) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *upgraded) Write(p []byte) (int, error) { return u.c.sock.Write(p) }
func (u *upgraded) Close() error                { u.c.close(); return nil }
