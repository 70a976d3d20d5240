package h1server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lbproject/load_balancer/internal/linecache"
	"github.com/lbproject/load_balancer/internal/upstream/h1"
	"golang.org/x/net/http/httpguts"
)

// Connection states, for Shutdown.
const (
	stateIdle   = iota // waiting for a request (or new)
	stateActive        // reading a request or writing its response
)

// readBufSize is the size of a connection's read buffer, kept for the
// connection's life: a request head usually fits; longer ones are read in
// parts (as by net/http, whose buffer has the same size).
const readBufSize = 4 << 10

// maxDiscard is the most of a request body the handler did not read that
// is read and dropped to keep the connection (net/http: 256 KiB).
const maxDiscard = 256 << 10

// aLongTimeAgo is a deadline in the past: it makes a blocked read return.
var aLongTimeAgo = time.Unix(1, 0)

// h2Preface starts every HTTP/2 connection (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// conn is one client connection. Its goroutine reads requests, runs the
// handler and writes responses; the background reader (see context.go)
// and a request body's reader may run beside it.
type conn struct {
	srv        *Server
	rwc        net.Conn
	remoteAddr string
	ctx        context.Context
	br         *bufio.Reader // reads from the conn itself (Read); nil while idle and lean
	raw        syscall.RawConn
	sock       io.ReadWriter // rwc, read and written through a sockio.Socket where it is a plain socket
	state      atomic.Int32
	res        response   // reused for each request
	wmu        sync.Mutex // orders 100 Continue (body reader) against the response head

	// Head limit, while a head is read (limit >= 0): the bytes the head
	// may still take, and whether a line end was seen (the request line
	// is complete).
	limit    int
	hitLimit bool
	lineEnd  bool
	// A head not complete in the buffer when its reading starts is also
	// copied here as it is read (to count its Host fields afterwards).
	copying  bool
	headCopy []byte

	// The fast path's reusable parts (fastparse.go).
	fast      fastHead
	reqHeader http.Header
	vals      [32]string
	lines     linecache.Cache // the last head's lines, reused where they repeat
	memo      *fieldMemo      // how their field lines were split; nil while lean
	url       url.URL
	freq      *http.Request  // made once, with rctx as its context
	freqZero  http.Request   // freq as made: every field zero but the context
	rctx      requestContext // the fast path's request context, reused

	// Background read (context.go); guarded by mu where noted.
	mu         sync.Mutex
	cur        *requestContext // mu: the request being served
	bodyDone   bool            // mu: the request body was read to its end
	bgWanted   bool            // mu: the context is watched; start once bodyDone
	bgRunning  bool            // mu
	bgStopping bool            // mu: the end of the request stops the read
	bgErr      error           // the background read's error (client gone)
	bgDone     chan struct{}
	bgByte     [1]byte
	hasByte    bool // bgByte holds the next request's first byte
	// What an idle read brought (waitIdle), in a buffer of idleBufs, to be
	// read first; or the error it met.
	idleData   []byte
	idleBP     *[]byte
	idleErr    error
	idleReadFn func(fd uintptr) bool
	readNowFn  func(fd uintptr)
	readNowGot bool
	broken     bool         // the connection cannot serve another request
	body       *requestBody // the current request's body, if any
	afterPost  bool         // the last request was a POST
	// userDeadline: the handler set a read deadline (ResponseController),
	// which the body's first read must not clear.
	userDeadline atomic.Bool
	// The read deadline in force is the one armIdleDeadline set at
	// idleArmedAt (since clockBase) for a wait of idleArmedFor; any other
	// read deadline set since clears idleArmed.
	idleArmed    bool
	idleArmedAt  time.Duration
	idleArmedFor time.Duration

	// Parking (park_linux.go): parkID names the connection to the parker
	// once it parked (0: never, or it left the parker); parked is set
	// while it waits with no goroutine. Whoever clears parked (unpark)
	// owns the connection: a goroutine resuming it, or the idle sweep or a
	// shutdown closing it.
	parkID uint64
	parked atomic.Bool
	// The parker's registration is edge-triggered: each arrival is
	// reported once, so what a report says is kept here until a read
	// answers it. edge: bytes may wait unread. A report sets it; a read
	// clears it as it begins and sets it again unless it drained the
	// socket: a read that returns fewer bytes than asked for, or finds
	// nothing, leaves nothing behind; one that fills its buffer may; one
	// that fails consumed nothing and may not have reached the socket (a
	// deadline past), so it puts back what it cleared (edgeWas).
	// hup: the client closed or reset (never cleared: the end is still
	// there after the bytes before it were read).
	edge      atomic.Bool
	hup       atomic.Bool
	edgeWas   bool          // edge as the read in progress cleared it (its goroutine's)
	parkUntil time.Time     // when a parked connection is closed; zero: never
	idleWait  time.Duration // the bound of the wait that parked: idle or header timeout
	firstWait bool          // it parked before its first request
	admitted  bool          // parker mu: resumed, counted in parker.active until it waits again, leaves the parker or ends
	woken     atomic.Bool   // taken from parking for its request (a worker or the queue has it), until its head is read or it parks again
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, rwc: nc, limit: -1}
	c.res.c = c
	if a := nc.RemoteAddr(); a != nil {
		c.remoteAddr = a.String()
	}
	return c
}

// Read is what the buffered reader reads from: the byte the background
// read took first, then the connection, within the head limit.
func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.hasByte {
		c.hasByte = false
		p[0] = c.bgByte[0]
		return 1, nil
	}
	if c.idleData != nil || c.idleErr != nil {
		return c.readIdleData(p)
	}
	if c.limit >= 0 {
		if c.limit == 0 {
			c.hitLimit = true
			return 0, io.EOF
		}
		p = p[:min(len(p), c.limit)]
	}
	c.readStart()
	n, err := c.sock.Read(p)
	c.readDone(n, len(p), err)
	if c.limit >= 0 {
		c.limit -= n
		if !c.lineEnd && bytes.IndexByte(p[:n], '\n') >= 0 {
			c.lineEnd = true
		}
		if c.copying {
			c.headCopy = append(c.headCopy, p[:n]...)
		}
	}
	return n, err
}

// readStart and readDone are called around each read of the socket of a
// connection registered with the parker (see edge): a read that drains the
// socket answers every report older than it.
func (c *conn) readStart() {
	if c.parkID != 0 {
		c.edgeWas = c.edge.Swap(false)
	}
}

// readDone: the read got n bytes of size asked for, and err. (It never
// clears edge: a report may have come during the read.)
func (c *conn) readDone(n, size int, err error) {
	if c.parkID == 0 {
		return
	}
	if n == size || c.edgeWas && err != nil && err != syscall.EAGAIN {
		c.edge.Store(true) // more may wait
	}
}

func (c *conn) serve() {
	c.start()
	c.loop(true, false)
}

// serveParked is serve for a lean server's new connection: it is parked
// until its first bytes arrive, so that in a burst of new connections (a
// load generator's, clients reconnecting after a restart) none holds a
// goroutine before it has something to read.
func (c *conn) serveParked() {
	c.start()
	c.idleWait, c.firstWait = c.srv.ReadHeaderTimeout, true
	if c.raw != nil {
		c.setReadDeadline(c.idleWait)
		if p := c.srv.getParker(); p != nil && p.park(c) {
			return
		}
	}
	go c.loop(true, false)
}

// start sets up what every request of the connection uses.
func (c *conn) start() {
	c.ctx = context.Background()
	if s := c.srv; s.ConnContext != nil {
		c.ctx = s.ConnContext(c.ctx, c.rwc)
	}
	c.sock, c.raw = socketOf(c.rwc)
}

// resume serves a parked connection that became readable: it goes on
// where waitIdle parked it, on a goroutine of its own.
func (c *conn) resume() { c.loop(c.firstWait, true) }

// loop serves requests until the connection ends, or parks (then the
// goroutine ends, and the connection, owned by the parker, is no longer
// touched). resumed: the connection was parked in waitIdle.
func (c *conn) loop(first, resumed bool) {
	s := c.srv
	parked := false
	defer func() {
		if !parked {
			c.finish()
		}
	}()
	for ; ; first = false {
		if resumed {
			resumed = false
			// Its request came before the idle deadline, but admission
			// may have held it back until (or past) it: then the header
			// timeout bounds it from now, as from the first byte of a
			// head. (Not every time: a deadline costs.)
			if !c.parkUntil.IsZero() && time.Until(c.parkUntil) < max(s.ReadHeaderTimeout, time.Second) {
				c.setReadDeadline(s.ReadHeaderTimeout)
			}
			if !c.readNow() {
				// Resumed by a report about bytes read already (it was
				// collected while the connection was busy, and handled
				// once it had parked again): it parks again.
				c.woken.Store(false)
				if s.shutting.Load() {
					return
				}
				if c.admitted {
					s.parker.Load().leave(c)
				}
				if err := c.waitIdle(); err != nil {
					parked = err == errParked
					return
				}
			} else if err := c.waitReadable(); err != nil {
				return
			}
		} else {
			if c.admitted {
				s.parker.Load().leave(c) // back to waiting for a request
			}
			c.lines.Release() // what a large head left (kept only for its request)
			if c.userDeadline.Swap(false) {
				// The last request's handler set a read deadline
				// (ResponseController): the idle one armed before is
				// gone, whether this wait or the next pipelined request
				// comes first. (Reset here, before every request, also
				// for the body's first read: see requestBody.)
				c.idleArmed = false
			}
			c.state.Store(stateIdle)
			if s.shutting.Load() && !first {
				return
			}
			if c.br == nil || c.br.Buffered() == 0 && !c.hasByte {
				c.idleWait, c.firstWait = s.IdleTimeout, first
				if first {
					c.idleWait = s.ReadHeaderTimeout
					c.setReadDeadline(c.idleWait)
				} else {
					c.armIdleDeadline()
				}
			}
			switch {
			case c.br == nil && !s.lean():
				c.br = readers.Get().(*bufio.Reader)
				c.br.Reset(c)
			case c.br == nil, c.br.Buffered() == 0 && !c.hasByte && s.lean():
				if err := c.waitIdle(); err != nil {
					parked = err == errParked
					return
				}
			}
		}
		b, err := c.br.Peek(1)
		if err != nil {
			return
		}
		c.state.Store(stateActive)
		if c.woken.Load() { // (a load, not a store, for every request)
			c.woken.Store(false)
		}
		if first && b[0] == 'P' && c.isHTTP2() {
			if c.handOverHTTP2() {
				c.res.hijacked = true // the HTTP/2 server owns it now
				return
			}
			c.reply(http.StatusHTTPVersionNotSupported, "")
			return
		}
		if !c.serveRequest(first) {
			return
		}
	}
}

// finish ends the connection's service: it closes the connection (unless
// hijacked) and gives back its read buffer. Its goroutine calls it, or,
// for a connection taken from the parker (idle too long, or the server
// shutting down), whoever took it.
func (c *conn) finish() {
	s := c.srv
	if c.parkID != 0 {
		p := s.parker.Load()
		if c.admitted {
			p.leave(c)
		}
		p.forget(c)
	}
	s.remove(c)
	if c.res.hijacked {
		return // the new owner has the connection and its reader
	}
	c.rwc.Close()
	if c.br != nil {
		c.br.Reset(nil)
		readers.Put(c.br)
	}
	c.putMemo()
}

// putMemo gives the field memo back to its pool, empty.
func (c *conn) putMemo() {
	if c.memo != nil {
		c.memo.End(false)
		fieldMemos.Put(c.memo)
		c.memo = nil
	}
}

// fieldMemos are the field memos of connections that do not use theirs:
// one that waits lean (parked, or in a read where there is no parker) or
// has ended gives its memo back (768 bytes), and splits its next head's
// lines anew.
var fieldMemos = sync.Pool{New: func() any { return new(fieldMemo) }}

// leaveParker takes the connection, about to be handed to another owner
// (hijacked by a handler, or handed to the HTTP/2 server), out of the
// parker, if it was registered: the parker would otherwise go on being
// told of every arrival of bytes on it. It leaves admission too.
func (c *conn) leaveParker() {
	if c.parkID == 0 {
		return
	}
	p := c.srv.parker.Load()
	if c.admitted {
		p.leave(c)
	}
	p.unregister(c)
	c.parkID = 0
}

// unpark takes a parked connection from the parker: true for the one
// caller that gets it.
func (c *conn) unpark() bool { return c.parked.CompareAndSwap(true, false) }

// errParked: waitIdle parked the connection.
var errParked = errors.New("h1server: connection parked")

// waitIdle waits for the next request with no read buffer: the buffer
// goes back to its pool, and each read attempt while the connection is
// idle (the first one, and one each time the poller says it is readable)
// takes a buffer from a pool only for the system call, giving it back at
// once when there was nothing to read. What a read brings is handed to the
// read buffer taken again for the request (see readIdleData).
//
// With a parker, the connection is parked at once, without a read
// attempt: waitIdle returns errParked and the goroutine ends; the one that
// resumes the connection reads (readNow: if it finds nothing, the report
// was stale and it parks again), then calls waitReadable. Bytes reported
// since the last read began, or a close, make it read first (see
// conn.edge); otherwise a read attempt first would find nothing nearly
// every time (the client has hardly read the response yet), a system call
// per request (6.1 → 5.2 per request at 2000 connections,
// docs/BENCHMARKS.md). Without
// a parker, the goroutine waits in a read, bounded by the read deadline set
// before.
func (c *conn) waitIdle() error {
	// Nor the last request's parts, which hold its head. The Request
	// itself is kept, emptied: making another (WithContext) would be an
	// allocation per request of a busy lean server.
	if c.reqHeader != nil {
		clear(c.reqHeader)
		headerMaps.Put(c.reqHeader)
		c.reqHeader = nil
	}
	c.putMemo()
	c.vals = [len(c.vals)]string{}
	c.url, c.fast = url.URL{}, fastHead{} // (the loop released the line cache)
	if c.freq != nil {
		*c.freq = c.freqZero
	}
	if c.br != nil {
		c.br.Reset(nil)
		readers.Put(c.br)
		c.br = nil
	}
	if p := c.srv.getParker(); p != nil && c.raw != nil {
		// Parking is refused when bytes may wait (see edge): a read
		// attempt answers that, and finding nothing, the second try
		// parks. Refused twice, or for another reason (the parker is
		// closed, epoll refused), or with something read: on below.
		for try := 0; ; try++ {
			if p.park(c) {
				return errParked
			}
			if try == 1 || !c.edge.Load() && !c.hup.Load() || c.readNow() {
				break
			}
		}
	}
	return c.waitReadable()
}

// readNow makes one read attempt of idleRead without waiting: true if it
// read something (or met an error, kept for the next read as idleRead's).
func (c *conn) readNow() bool {
	if c.readNowFn == nil {
		c.readNowFn = func(fd uintptr) { c.readNowGot = c.idleRead(fd) } // once per connection
	}
	c.readNowGot = false
	if err := c.raw.Control(c.readNowFn); err != nil {
		c.idleErr = err
		return true
	}
	return c.readNowGot
}

// waitReadable is the end of waitIdle: it waits in a read (of idleRead)
// for what the next request brings, then takes a read buffer again.
func (c *conn) waitReadable() error {
	var err error
	if c.raw != nil && c.idleData == nil && c.idleErr == nil {
		if c.idleReadFn == nil {
			c.idleReadFn = c.idleRead // one method value per connection
		}
		err = c.raw.Read(c.idleReadFn)
	}
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(c)
	return err
}

// idleRead is one read attempt of an idle connection (a syscall.RawConn
// read function): false, holding nothing, when there is nothing to read.
func (c *conn) idleRead(fd uintptr) bool {
	bp := idleBufs.Get().(*[]byte)
	var n int
	var err error
	c.readStart()
	for {
		n, err = readFD(fd, *bp)
		if err != syscall.EINTR {
			break
		}
	}
	c.readDone(n, len(*bp), err)
	switch {
	case err == syscall.EAGAIN:
		idleBufs.Put(bp)
		return false
	case err != nil:
		c.idleErr = err
	case n == 0:
		c.idleErr = io.EOF
	default:
		c.idleBP, c.idleData = bp, (*bp)[:n]
		return true
	}
	idleBufs.Put(bp)
	return true
}

// readIdleData gives what idleRead read (or its error), then the buffer
// goes back to its pool.
func (c *conn) readIdleData(p []byte) (int, error) {
	if len(c.idleData) == 0 {
		err := c.idleErr
		c.idleErr = nil
		return 0, err
	}
	n := copy(p, c.idleData)
	c.idleData = c.idleData[n:]
	if len(c.idleData) == 0 {
		idleBufs.Put(c.idleBP)
		c.idleBP, c.idleData = nil, nil
	}
	return n, nil
}

// headerMaps are the request header maps of the fast path, given back
// by connections that wait lean. Room for 16 fields: most requests have
// fewer, and one with more grows it.
var headerMaps = sync.Pool{New: func() any { return make(http.Header, 16) }}

// idleBufs are the buffers of idle connections' read attempts: as large as
// a connection's read buffer, so that one copy moves a read into it.
var idleBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// armIdleDeadline bounds the wait for the next request by the idle
// timeout. Setting a deadline costs about as much as a small request's
// parsing (three clock reads and a timer update), and a busy connection
// would set one per request: so the deadline is set idleWait plus a
// sixteenth from now, and kept while less than that sixteenth has passed
// and nothing else set a read deadline since. The wait is thus bounded by
// at least the idle timeout and at most a sixteenth more (60 s: 60 to
// 63.75 s), and checking costs one clock read.
func (c *conn) armIdleDeadline() {
	now := time.Since(clockBase)
	slack := c.idleWait / 16
	if c.idleArmed && c.idleArmedFor == c.idleWait && now-c.idleArmedAt < slack {
		return
	}
	c.setReadDeadline(c.idleWait + slack)
	c.idleArmed, c.idleArmedAt, c.idleArmedFor = c.idleWait > 0, now, c.idleWait
}

// clockBase is what armIdleDeadline measures time from: a monotonic clock
// read (time.Since) costs half of time.Now, which reads the wall clock too.
var clockBase = time.Now()

// setReadDeadline bounds the next reads by d from now (0: no bound).
func (c *conn) setReadDeadline(d time.Duration) {
	c.idleArmed = false
	if d > 0 {
		c.rwc.SetReadDeadline(time.Now().Add(d))
	} else {
		c.rwc.SetReadDeadline(time.Time{})
	}
}

// isHTTP2 reports whether the connection opens with the HTTP/2 preface.
// Any HTTP/1 request line starting with "P" is at least as long as the
// first line of the preface, so the peeks do not wait for bytes that an
// HTTP/1 client will not send.
func (c *conn) isHTTP2() bool {
	line := h2Preface[:len("PRI * HTTP/2.0")]
	b, err := c.br.Peek(len(line))
	if err != nil || string(b) != line {
		return false
	}
	b, err = c.br.Peek(len(h2Preface))
	return err == nil && string(b) == h2Preface
}

// handOverHTTP2 gives the connection, with what was read of it, to the
// HTTP/2 server.
func (c *conn) handOverHTTP2() bool {
	c.leaveParker()
	buffered, _ := c.br.Peek(c.br.Buffered())
	c.rwc.SetReadDeadline(time.Time{})
	pc := &prefixConn{Conn: c.rwc, prefix: bytes.Clone(buffered)}
	return c.srv.handOver(pc)
}

// prefixConn replays bytes read already before reading the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// serveRequest reads one request and answers it. It reports whether the
// connection may serve another.
func (c *conn) serveRequest(first bool) bool {
	s := c.srv
	req, hosts, err := c.readRequest(first)
	if err != nil {
		c.replyReadError(err)
		return false
	}
	if status, msg := checkRequest(req, hosts, req == c.freq); status != 0 {
		c.reply(status, msg)
		return false
	}
	c.afterPost = req.Method == http.MethodPost
	w := &c.res
	w.reset(req)
	var rc *requestContext
	if req == c.freq {
		rc = &c.rctx // with the Request it is in, reused
		rc.reset()
	} else {
		rc = &requestContext{parent: c.ctx, c: c}
	}
	c.mu.Lock()
	c.cur = rc
	c.bodyDone = req.Body == http.NoBody
	c.mu.Unlock()
	var body *requestBody
	if req.Body != http.NoBody {
		body = &requestBody{rc: req.Body, c: c, length: req.ContentLength,
			continueWanted: req.ProtoAtLeast(1, 1) && expectsContinue(req)}
		req.Body = body
	}
	if req != c.freq {
		// net/http's body reader sets the trailers it reads in the
		// Request it was made for: that must be the handler's.
		*req = *req.WithContext(rc)
	}
	req.RemoteAddr = c.remoteAddr
	w.req = req
	c.body = body

	aborted := c.runHandler(w, req)
	switch {
	case w.hijacked:
		c.endRequest(rc)
		s.remove(c)
		return false
	case aborted:
		w.flushOnAbort()
		c.endRequest(rc)
		c.dropBody(body, false) // a cut response: nothing to protect
		return false
	}
	w.finish()
	c.endRequest(rc)
	w.req, c.body = nil, nil
	if w.err != nil || w.closeAfter || c.broken {
		// A client gone (w.err, broken) has no response to protect.
		c.dropBody(body, w.err == nil && !c.broken)
		return false
	}
	if body != nil && !c.finishBody(body) {
		c.dropBody(body, true)
		return false
	}
	return true
}

// dropBody ends the body of a request after which the connection closes.
// If the body was not read to its end and a response went out (linger), a
// client still sending the body would get a reset for the unread bytes,
// which may destroy the response before it reads it: the write side is
// closed first and the close delayed a little, as net/http does. Closing
// ends a read a reader left behind may be blocked in, and the read buffer
// is not recycled under it.
func (c *conn) dropBody(b *requestBody, linger bool) {
	if b == nil {
		return
	}
	if linger && !b.sawEOF.Load() {
		if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
			time.Sleep(rstAvoidanceDelay)
		}
	}
	c.rwc.Close()
	b.end()
}

// rstAvoidanceDelay is how long a connection closing with unread request
// bytes waits after closing its write side (net/http: 500 ms).
const rstAvoidanceDelay = 500 * time.Millisecond

// readRequest reads a request head within the limits and timeouts, and
// counts its Host fields (net/http's parser folds them into Request.Host).
func (c *conn) readRequest(first bool) (req *http.Request, hosts hostFields, err error) {
	s := c.srv
	buffered, _ := c.br.Peek(c.br.Buffered())
	if c.afterPost {
		// RFC 9112 §2.2: old clients send an extra CRLF after a POST
		// body; ignore it, as net/http's server does.
		n := 0
		for n < len(buffered) && n < 4 && (buffered[n] == '\r' || buffered[n] == '\n') {
			n++
		}
		c.br.Discard(n)
		buffered = buffered[n:]
		if len(buffered) == 0 {
			if _, err := c.br.Peek(1); err != nil {
				return nil, hostFields{}, err
			}
			buffered, _ = c.br.Peek(c.br.Buffered())
		}
	}
	if c.reqHeader == nil {
		c.reqHeader = headerMaps.Get().(http.Header)
	}
	clear(c.reqHeader) // the last request's fields
	f := &c.fast
	*f = fastHead{}
	if c.memo == nil {
		c.memo = fieldMemos.Get().(*fieldMemo)
	}
	if parseFast(buffered, f, c.reqHeader, c.vals[:], &c.lines, c.memo) {
		if f.size > s.maxHeaderBytes() {
			return nil, hostFields{}, c.headTooLarge(buffered)
		}
		c.br.Discard(f.size)
		return c.fastRequest(f), hostFields{n: f.hosts, first: f.host}, nil
	}
	complete := completeHead(buffered)
	if !first && s.ReadHeaderTimeout > 0 && !complete {
		c.setReadDeadline(s.ReadHeaderTimeout)
	}
	c.limit = max(s.maxHeaderBytes()-len(buffered), 0)
	c.hitLimit = false
	c.lineEnd = bytes.IndexByte(buffered, '\n') >= 0
	c.copying = !complete
	if c.copying {
		c.headCopy = append(c.headCopy[:0], buffered...)
	}
	req, err = http.ReadRequest(c.br)
	c.limit = -1
	if err != nil {
		return nil, hostFields{}, err
	}
	// What the parser took of the bytes it had is the head.
	head := buffered
	if c.copying {
		head = c.headCopy
		c.copying = false
	}
	head = head[:len(head)-c.br.Buffered()]
	if cap(c.headCopy) > readBufSize {
		c.headCopy = nil // a rare long head: do not keep its copy
	}
	if len(head) > s.maxHeaderBytes() {
		// Read whole before the limit was set (a first read takes up to
		// the buffer's size): the limit is exact all the same.
		return nil, hostFields{}, c.headTooLarge(head)
	}
	return req, countHost(head), nil
}

// Errors of a complete head over MaxHeaderBytes: its request line alone is
// too long (414), or the whole (431).
var (
	errHeadTooLarge = errors.New("h1server: request head too large")
	errLineTooLong  = errors.New("h1server: request line too long")
)

func (c *conn) headTooLarge(head []byte) error {
	if i := bytes.IndexByte(head, '\n'); i < 0 || i+1 > c.srv.maxHeaderBytes() {
		return errLineTooLong
	}
	return errHeadTooLarge
}

// fastRequest makes the request parseFast read, from the connection's
// reusable parts: the header map, the URL, and a Request made once with
// the connection's reusable context (http.Request.WithContext is the only
// way to give a Request a context, and it allocates a copy). The Request
// is first reset to what it was when made, unexported fields included
// (the path values a ServeMux or SetPathValue left), then every field the
// fast path knows is set (RemoteAddr by serveRequest, for both paths).
func (c *conn) fastRequest(f *fastHead) *http.Request {
	if c.freq == nil {
		c.rctx.parent, c.rctx.c = c.ctx, c
		c.freq = new(http.Request).WithContext(&c.rctx)
		c.freqZero = *c.freq
	} else {
		*c.freq = c.freqZero
	}
	c.url = url.URL{Path: f.path, RawQuery: f.query}
	r := c.freq
	r.Method = f.method
	r.URL = &c.url
	r.Proto, r.ProtoMajor, r.ProtoMinor = protos[f.minor], 1, f.minor
	r.Header = c.reqHeader
	r.Body = http.NoBody
	r.Close = f.close
	r.Host = f.host
	r.RequestURI = f.target
	if f.contentLength > 0 {
		r.ContentLength = f.contentLength
		r.Body = &fixedBody{c: c, n: f.contentLength}
	}
	return r
}

var protos = [2]string{"HTTP/1.0", "HTTP/1.1"}

// completeHead reports whether b holds the end of a request head.
func completeHead(b []byte) bool {
	return bytes.Contains(b, []byte("\r\n\r\n")) || bytes.Contains(b, []byte("\n\n"))
}

// hostFields is what checkRequest needs of a head's Host fields: how many
// there are and the first one's value (net/http's parser folds them into
// Request.Host, which an absolute-form target overrides).
type hostFields struct {
	n      int
	first  string
	folded bool // the first continues on an obs-fold line: invalid
}

// countHost finds the Host field lines of a request head.
func countHost(head []byte) hostFields {
	var h hostFields
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			break
		}
		head = head[i+1:]
		if len(head) >= 5 && (head[0]|0x20) == 'h' && (head[1]|0x20) == 'o' && (head[2]|0x20) == 's' && (head[3]|0x20) == 't' && head[4] == ':' {
			if h.n++; h.n == 1 {
				line := head[5:]
				if j := bytes.IndexByte(line, '\n'); j >= 0 {
					h.folded = j+1 < len(line) && (line[j+1] == ' ' || line[j+1] == '\t')
					line = line[:j]
				}
				h.first = strings.Trim(string(line), " \t\r")
			}
		}
	}
	return h
}

// checkRequest applies the rules net/http's server adds to its parser:
// HTTP/1.x only, one valid Host (required from HTTP/1.1 on), valid field
// names and values, and no Expect but 100-continue. It returns the status
// of the error reply, or 0.
//
// fast says the head came through parseFast, which takes only token names
// and printable-ASCII values and leaves requests with Expect to net/http
// (FuzzFastParse holds it to that): its fields need no second look.
func checkRequest(req *http.Request, hosts hostFields, fast bool) (int, string) {
	if req.ProtoMajor != 1 {
		return http.StatusHTTPVersionNotSupported, ""
	}
	switch {
	case req.ProtoAtLeast(1, 1) && hosts.n == 0 && req.Method != http.MethodConnect:
		return http.StatusBadRequest, "missing required Host header"
	case hosts.n > 1:
		return http.StatusBadRequest, "too many Host headers"
	case hosts.n == 1 && (hosts.folded || !httpguts.ValidHostHeader(hosts.first)):
		return http.StatusBadRequest, "malformed Host header"
	}
	if fast {
		return 0, ""
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return http.StatusBadRequest, "invalid header name"
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return http.StatusBadRequest, "invalid header value"
			}
		}
	}
	if e := expectField(req); e != "" && !expectsContinue(req) {
		return http.StatusExpectationFailed, ""
	}
	return 0, ""
}

// expectsContinue reports whether the client waits for 100 Continue before
// it sends the body (only meaningful from HTTP/1.1 on, with a body).
func expectsContinue(req *http.Request) bool {
	// As net/http: the token in the first Expect field.
	e := expectField(req)
	return e != "" && h1.HasToken([]string{e}, "100-continue")
}

// expectField is the first Expect field of req: its header's names are
// canonical (both parsers make them so), so the map is read directly
// rather than through Header.Get, which canonicalizes the name first.
func expectField(req *http.Request) string {
	if v := req.Header["Expect"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// replyReadError answers a request that could not be read, if anything can
// be answered at all.
func (c *conn) replyReadError(err error) {
	switch {
	case err == errHeadTooLarge:
		c.reply(http.StatusRequestHeaderFieldsTooLarge, "")
	case err == errLineTooLong:
		c.reply(http.StatusRequestURITooLong, "")
	case c.hitLimit && !c.lineEnd:
		c.reply(http.StatusRequestURITooLong, "")
	case c.hitLimit:
		c.reply(http.StatusRequestHeaderFieldsTooLarge, "")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isNetError(err):
		// The client went away or timed out mid-head: nobody to answer.
	case strings.Contains(err.Error(), "unsupported transfer encoding"), strings.Contains(err.Error(), "too many transfer encodings"):
		// net/http's unsupportedTEError, which its server answers so.
		c.reply(http.StatusNotImplemented, "")
	default:
		c.reply(http.StatusBadRequest, "")
	}
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// reply writes an error response of the server's own and leaves the
// connection to be closed.
func (c *conn) reply(status int, msg string) {
	text := fmt.Sprintf("%d %s", status, http.StatusText(status))
	if msg != "" {
		text += ": " + msg
	}
	text += "\n"
	resp := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(text), text)
	c.rwc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c.rwc, resp)
}

// runHandler calls the handler and reports whether it aborted (panicked).
// A panic other than http.ErrAbortHandler is logged with its stack.
func (c *conn) runHandler(w *response, req *http.Request) (aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			aborted = true
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.logf("panic serving request", "client", c.remoteAddr, "panic", fmt.Sprint(v), "stack", string(buf))
			}
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
	return false
}

// finishBody reads what the handler left of the request body, so that the
// next request can be read; a body too long to drop, or one the client
// waits to send (Expect: 100-continue, never asked for), ends the
// connection instead.
func (c *conn) finishBody(b *requestBody) bool {
	// A reader left behind by the handler may be waiting for the client:
	// the deadline bounds its wait (and the drain's), and end waits for it.
	d := c.srv.ReadHeaderTimeout
	if d <= 0 {
		d = defaultDiscardTimeout
	}
	c.setReadDeadline(d)
	b.end()
	if b.sawEOF.Load() {
		return true
	}
	if b.continueWanted && !b.continueSent.Load() || b.err != nil {
		return false
	}
	n, err := io.CopyN(io.Discard, readerFunc(b.read), maxDiscard+1)
	return n <= maxDiscard && err == io.EOF
}

// defaultDiscardTimeout bounds the drain of an unread body when there is no
// ReadHeaderTimeout to bound it with.
const defaultDiscardTimeout = 10 * time.Second

// readerFunc makes a read method an io.Reader.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}
