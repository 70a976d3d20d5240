package h1

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// waiter is a request waiting for a connection while the backend is at
// MaxConns. It is handed either an idle connection or, as nil, a free slot
// to dial in.
type waiter struct{ ch chan *conn }

// getConn returns a connection for an exchange, attached: the most recently
// pooled one, unless fresh asks for a new one; now is the time of the call,
// replayable whether the request could be sent again on a new connection
// (see Do).
//
// A pooled connection may have been closed by the backend, or hold bytes
// nobody asked for (a 408 before closing, a body after a HEAD or 204
// response), which must never be taken for the next request's response,
// another client's. It is checked (alive: a non-blocking peek, a system
// call) before it is reused when needsCheck says so: it is suspect, the
// request is not replayable, or it idled for idleCheckAfter. Otherwise the
// exchange finds out, and Do retries on a new connection.
//
// Before it waits (for a free connection at MaxConns, or for a dial) it
// gives w's buffer back, if w is not nil (the buffer holds only a head),
// so that thousands of requests waiting for connections do not hold a
// write buffer each; the caller builds the head again.
func (t *Transport) getConn(ctx context.Context, now time.Time, fresh, replayable bool, w *writeBuf) (*conn, error) {
	if !fresh {
		for {
			c := t.popIdle(now)
			if c == nil {
				break
			}
			if c.needsCheck(now, replayable) && !c.alive() {
				c.close()
				continue
			}
			c.attach()
			return c, nil
		}
	}
	if w != nil {
		w.put()
	}
	c, err := t.reserve(ctx)
	if err != nil {
		return nil, err
	}
	if c != nil { // handed over by an exchange that ended
		if c.needsCheck(time.Now(), replayable) && !c.alive() {
			c.close()
			return t.getConn(ctx, now, true, replayable, w)
		}
		c.attach()
		return c, nil
	}
	c, err = t.dial(ctx)
	if err != nil {
		t.connClosed()
		return nil, err
	}
	c.attach()
	return c, nil
}

// popIdle takes the most recently pooled connection that has not idled too
// long at now, closing those that have.
func (t *Transport) popIdle(now time.Time) *conn {
	t.mu.Lock()
	for n := len(t.idle); n > 0; n = len(t.idle) {
		c := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		if t.opt.IdleConnTimeout > 0 && now.Sub(c.idleAt) >= t.opt.IdleConnTimeout {
			// The older ones below have expired too.
			old := t.idle
			t.idle = nil
			t.mu.Unlock()
			c.close()
			for _, o := range old {
				o.close()
			}
			return nil
		}
		t.mu.Unlock()
		return c
	}
	t.mu.Unlock()
	return nil
}

// putIdle pools a connection whose exchange ended cleanly, or hands it to a
// waiting request.
func (t *Transport) putIdle(c *conn) {
	now := time.Now()
	c.idleAt = now
	t.mu.Lock()
	if len(t.waiters) > 0 {
		w := t.waiters[0]
		t.waiters = t.waiters[1:]
		t.mu.Unlock()
		w.ch <- c
		return
	}
	if len(t.idle) >= t.opt.MaxIdleConns || t.retired {
		t.mu.Unlock()
		c.close()
		return
	}
	t.idle = append(t.idle, c)
	if !t.sweeping && t.opt.IdleConnTimeout > 0 {
		t.sweeping = true
		if t.sweeper == nil {
			t.sweeper = time.AfterFunc(t.opt.IdleConnTimeout, t.sweep)
		} else {
			t.sweeper.Reset(t.opt.IdleConnTimeout)
		}
	}
	t.mu.Unlock()
}

// sweep closes the connections idle for IdleConnTimeout or more, and arms
// itself again for the oldest remaining one.
func (t *Transport) sweep() {
	now := time.Now()
	t.mu.Lock()
	i := 0
	for i < len(t.idle) && now.Sub(t.idle[i].idleAt) >= t.opt.IdleConnTimeout {
		i++
	}
	expired := make([]*conn, i)
	copy(expired, t.idle[:i])
	n := copy(t.idle, t.idle[i:])
	clear(t.idle[n:])
	t.idle = t.idle[:n]
	if n > 0 {
		t.sweeper.Reset(t.idle[0].idleAt.Add(t.opt.IdleConnTimeout).Sub(now))
	} else {
		t.sweeping = false
	}
	t.mu.Unlock()
	for _, c := range expired {
		c.close()
	}
}

// reserve takes a slot for a new connection, waiting while the backend is
// at MaxConns, at most DialTimeout. Waiting, it may be handed an idle
// connection instead, which it returns.
func (t *Transport) reserve(ctx context.Context) (*conn, error) {
	t.mu.Lock()
	if t.opt.MaxConns <= 0 || t.open < t.opt.MaxConns {
		t.open++
		t.mu.Unlock()
		return nil, nil
	}
	w := &waiter{ch: make(chan *conn, 1)}
	t.waiters = append(t.waiters, w)
	t.mu.Unlock()

	var timeout <-chan time.Time
	if t.opt.DialTimeout > 0 {
		timer := time.NewTimer(t.opt.DialTimeout)
		defer timer.Stop()
		timeout = timer.C
	}
	var err error
	select {
	case c := <-w.ch:
		return c, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = dialError(t.addr, ErrPoolTimeout)
	}
	t.mu.Lock()
	for i, o := range t.waiters {
		if o == w {
			t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
			t.mu.Unlock()
			return nil, err
		}
	}
	t.mu.Unlock()
	// Handed something meanwhile: pass it on.
	if c := <-w.ch; c != nil {
		t.putIdle(c)
	} else {
		t.connClosed()
	}
	return nil, err
}

// connClosed frees the slot of a connection that closed (or of a dial
// that failed): a waiting request may dial in it.
func (t *Transport) connClosed() {
	t.mu.Lock()
	if len(t.waiters) > 0 {
		w := t.waiters[0]
		t.waiters = t.waiters[1:]
		t.mu.Unlock()
		w.ch <- nil // the slot passes to w
		return
	}
	t.open--
	t.mu.Unlock()
}

// dial opens a connection, with TLS if configured. The caller holds a slot.
func (t *Transport) dial(ctx context.Context) (*conn, error) {
	var nc net.Conn
	var err error
	if t.opt.Dial != nil {
		dctx := ctx
		if t.opt.DialTimeout > 0 {
			var cancel context.CancelFunc
			dctx, cancel = context.WithTimeout(ctx, t.opt.DialTimeout)
			defer cancel()
		}
		nc, err = t.opt.Dial(dctx, "tcp", t.opt.Addr)
	} else {
		nc, err = t.dialer.DialContext(ctx, "tcp", t.opt.Addr)
	}
	if err != nil {
		return nil, dialError(t.addr, err)
	}
	if t.opt.OnConnOpen != nil {
		t.opt.OnConnOpen()
	}
	if t.tlsConfig != nil {
		tc, err := t.handshake(ctx, nc)
		if err != nil {
			nc.Close()
			if t.opt.OnConnClose != nil {
				t.opt.OnConnClose()
			}
			return nil, dialError(nc.RemoteAddr(), err)
		}
		c := newConn(t, tc)
		if tcp, ok := nc.(*net.TCPConn); ok {
			c.raw, _ = tcp.SyscallConn()
		}
		return c, nil
	}
	return newConn(t, nc), nil
}

// errTLSHandshakeTimeout is the cause of a dial error when the TLS handshake
// took longer than TLSHandshakeTimeout.
var errTLSHandshakeTimeout error = tlsTimeoutError{}

type tlsTimeoutError struct{}

func (tlsTimeoutError) Error() string   { return "h1: TLS handshake timeout" }
func (tlsTimeoutError) Timeout() bool   { return true }
func (tlsTimeoutError) Temporary() bool { return true }

func (t *Transport) handshake(ctx context.Context, nc net.Conn) (*tls.Conn, error) {
	hctx := ctx
	if t.opt.TLSHandshakeTimeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, t.opt.TLSHandshakeTimeout)
		defer cancel()
	}
	tc := tls.Client(nc, t.tlsConfig)
	if err := tc.HandshakeContext(hctx); err != nil {
		if ctx.Err() == nil && errors.Is(hctx.Err(), context.DeadlineExceeded) {
			return nil, errTLSHandshakeTimeout
		}
		return nil, err
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
		return nil, errors.New("h1: backend negotiated ALPN protocol " + p + ", not http/1.1")
	}
	return tc, nil
}
