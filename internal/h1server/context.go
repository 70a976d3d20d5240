package h1server

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// requestContext is the context of one request. It is canceled when the
// client goes away or the request ends, like net/http's, but it notices
// the first only once someone waits for it: Done starts the background read
// of the connection (or, while the request body is being read, asks for it
// at the body's end). A request nobody waits on costs no goroutine, system
// call or timer for it.
//
// On the fast path a connection reuses one requestContext (and one
// Request carrying it) for all its requests: reset starts each request.
// What a finished request left registered is canceled with it, and its
// stop functions know their request by its generation. It implements
// AfterFunc, so that context.AfterFunc and context.WithCancel register with
// it rather than start a goroutine that waits on Done.
type requestContext struct {
	parent context.Context // the connection's: values only, never canceled
	c      *conn

	mu    sync.Mutex
	gen   uint64        // the request being served; reset counts up
	done  chan struct{} // made by the first Done
	err   error
	funcs []afterFunc // AfterFunc's, run when the context is canceled
	ids   int
}

type afterFunc struct {
	id int
	f  func()
}

// reset makes a reused context that of the next request.
func (rc *requestContext) reset() {
	rc.mu.Lock()
	rc.gen++
	rc.done, rc.err, rc.funcs = nil, nil, nil
	rc.mu.Unlock()
}

func (rc *requestContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (rc *requestContext) Value(key any) any           { return rc.parent.Value(key) }

func (rc *requestContext) Err() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.err
}

func (rc *requestContext) Done() <-chan struct{} {
	rc.mu.Lock()
	if rc.done != nil {
		d := rc.done
		rc.mu.Unlock()
		return d
	}
	rc.done = make(chan struct{})
	d, ended := rc.done, rc.err != nil
	if ended {
		close(rc.done)
	}
	rc.mu.Unlock()
	if !ended {
		rc.c.watch(rc)
	}
	return d
}

// AfterFunc runs f in its own goroutine once the context is canceled (at
// once if it is); stop unregisters f, reporting whether it did.
func (rc *requestContext) AfterFunc(f func()) (stop func() bool) {
	rc.mu.Lock()
	if rc.err != nil {
		rc.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	rc.ids++
	id, gen := rc.ids, rc.gen
	rc.funcs = append(rc.funcs, afterFunc{id: id, f: f})
	rc.mu.Unlock()
	rc.c.watch(rc) // waiting on the context means watching the client
	return func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.gen != gen {
			return false // its request ended: f ran
		}
		for i, a := range rc.funcs {
			if a.id == id {
				rc.funcs = append(rc.funcs[:i], rc.funcs[i+1:]...)
				return true
			}
		}
		return false
	}
}

// cancel ends the context with err, once.
func (rc *requestContext) cancel(err error) {
	rc.mu.Lock()
	if rc.err != nil {
		rc.mu.Unlock()
		return
	}
	rc.err = err
	if rc.done != nil {
		close(rc.done)
	}
	funcs := rc.funcs
	rc.funcs = nil
	rc.mu.Unlock()
	for _, a := range funcs {
		go a.f()
	}
}

func (rc *requestContext) String() string { return "h1server.requestContext" }

// watch starts the background read for rc's request, or, while its body is
// still being read, asks for it at the body's end.
func (c *conn) watch(rc *requestContext) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != rc || c.bgRunning || c.bgWanted {
		return
	}
	if !c.bodyDone {
		// The body's reader may be in conn.Read, which uses hasByte
		// without the lock: look at it only once the body has ended.
		c.bgWanted = true
		return
	}
	if c.hasByte {
		// A kept byte is the next request's start: the client is there,
		// and a second read would overwrite it (as net/http notes too).
		return
	}
	c.startBackgroundReadLocked()
}

// bodyEnded is called when the request body was read to its end.
func (c *conn) bodyEnded() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bodyDone = true
	if c.bgWanted && !c.bgRunning && c.cur != nil && !c.hasByte {
		c.startBackgroundReadLocked()
	}
}

// startBackgroundReadLocked starts a goroutine that reads one byte of the
// connection: an error means the client is gone, which cancels the request;
// a byte is the start of the next request, kept for it. c.mu is held.
func (c *conn) startBackgroundReadLocked() {
	c.bgRunning = true
	c.bgDone = make(chan struct{})
	rc := c.cur
	// A deadline armed for the request's head must not end the watch.
	// Cleared here, under c.mu, so that it cannot undo the past deadline
	// with which stopBackgroundRead ends the read.
	c.rwc.SetReadDeadline(time.Time{})
	go func() {
		defer close(c.bgDone)
		c.readStart()
		n, err := c.rwc.Read(c.bgByte[:])
		c.readDone(n, 1, err)
		c.mu.Lock()
		defer c.mu.Unlock()
		if n == 1 {
			c.hasByte = true
		}
		if err != nil && !c.bgStopping {
			c.bgErr = err
			rc.cancel(context.Canceled)
		}
	}()
}

// endRequest stops the background read, if any, and cancels the request's
// context, as net/http does once the handler has returned. A client found
// gone makes the connection unusable.
func (c *conn) endRequest(rc *requestContext) {
	c.mu.Lock()
	c.cur = nil
	c.mu.Unlock()
	c.stopBackgroundRead()
	rc.cancel(context.Canceled)
}

// stopBackgroundRead ends the background read, if one runs, and waits for
// it.
func (c *conn) stopBackgroundRead() {
	c.mu.Lock()
	running := c.bgRunning
	c.bgStopping = running
	c.bgWanted = false
	c.mu.Unlock()
	if running {
		c.rwc.SetReadDeadline(aLongTimeAgo)
		<-c.bgDone
		c.mu.Lock()
		if c.bgErr != nil {
			c.broken = true
		}
		c.bgRunning, c.bgStopping, c.bgWanted, c.bgErr = false, false, false, nil
		c.mu.Unlock()
		// The next wait for a request sets its own deadline; clear the
		// past one in case it has none.
		c.rwc.SetReadDeadline(time.Time{})
		c.idleArmed = false
	}
}

// requestBody is the handler's view of the request body: it sends
// 100 Continue before the first read when the client waits for it, and
// tells the connection when the body has been read to its end.
//
// The handler's reader may outlive the handler (the backend client's body
// writer can still be reading when the backend answered early): once the
// handler has returned, the connection closes the body (end), after which
// reads fail, so that they never touch the next request's bytes.
type requestBody struct {
	rc             io.ReadCloser // the framing reader (fixedBody or net/http's)
	c              *conn
	mu             sync.Mutex // held by a read; end waits for it
	ended          bool
	continueWanted bool
	continueSent   atomic.Bool
	started        bool
	sawEOF         atomic.Bool  // (atomics: blocksReuse reads them while a read may hold mu)
	n              atomic.Int64 // bytes read
	length         int64        // the request's Content-Length; -1 if chunked
	err            error
}

func (b *requestBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.read(p)
}

// end makes later reads fail. It waits for a read in progress, which the
// caller bounds with a read deadline.
func (b *requestBody) end() {
	b.mu.Lock()
	b.ended = true
	b.started = true // what is drained after keeps the connection's deadline
	b.mu.Unlock()
}

// blocksReuse reports, when the response head is written, whether the
// connection cannot serve another request after it because of the body:
// the client waits for a 100 Continue it was never sent, or more of the
// body is left than would be read and dropped (a chunked body's rest is
// unknown: its drain decides later). The head then says Connection: close.
func (b *requestBody) blocksReuse() bool {
	if b.sawEOF.Load() {
		return false
	}
	if b.continueWanted && !b.continueSent.Load() {
		return true
	}
	return b.length > 0 && b.length-b.n.Load() > maxDiscard
}

func (b *requestBody) read(p []byte) (int, error) {
	if b.sawEOF.Load() {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if !b.started {
		b.started = true
		// The deadline armed for the wait for this request must not
		// bound its body, unless the handler set one of its own.
		if !b.c.userDeadline.Load() {
			b.c.rwc.SetReadDeadline(time.Time{})
		}
		if b.continueWanted {
			if err := b.c.res.writeContinue(); err != nil {
				b.err = err
				return 0, err
			}
			b.continueSent.Store(true)
		}
	}
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	if err == io.EOF {
		b.sawEOF.Store(true)
		b.c.bodyEnded()
	} else if err != nil {
		b.err = err
	}
	return n, err
}

// Close does nothing: what the handler leaves unread is dropped (up to a
// bound) or ends the connection once the handler has returned.
func (b *requestBody) Close() error { return nil }
