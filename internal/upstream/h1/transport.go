package h1

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Options configure a Transport. Zero durations mean no limit, except
// where a default is given.
type Options struct {
	// Addr is the backend's "host:port"; every connection goes there.
	Addr string
	// TLS, if not nil, makes connections TLS with this configuration (its
	// ServerName defaults to Addr's host).
	TLS *tls.Config
	// Dial, if not nil, opens connections instead of a net.Dialer; it is
	// given a context bounded by DialTimeout. Its errors should be
	// *net.OpError with Op "dial"; others are wrapped into one.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	DialTimeout           time.Duration // connect
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration // request written → response head read
	IdleConnTimeout       time.Duration // how long a pooled connection may idle
	// ExpectContinueTimeout is how long a request with "Expect:
	// 100-continue" waits for the backend's answer before sending its body
	// anyway (default 1s).
	ExpectContinueTimeout time.Duration

	MaxIdleConns int // idle connections kept (default 256)
	// MaxConns bounds the open connections (0: no limit). A request that
	// finds them all busy waits for one at most DialTimeout.
	MaxConns int
	// MaxResponseHeaderBytes bounds a response head, and separately its
	// trailer section (default 64 KiB).
	MaxResponseHeaderBytes int

	// OnConnOpen and OnConnClose, if not nil, are called when a connection
	// is established and when it is closed (exactly once each per
	// connection), for connection counting.
	OnConnOpen, OnConnClose func()
}

// Defaults of Options.
const (
	DefaultMaxIdleConns           = 256
	DefaultMaxResponseHeaderBytes = 64 << 10
	DefaultExpectContinueTimeout  = time.Second
)

// Transport is a pool of HTTP/1.1 connections to one backend. It is safe for
// concurrent use. It implements http.RoundTripper; Do is the faster form the
// proxy uses.
type Transport struct {
	opt       Options
	dialer    net.Dialer
	tlsConfig *tls.Config
	host      string // Host field when the request has none: Addr
	addr      net.Addr

	mu       sync.Mutex
	idle     []*conn // most recently used last
	open     int     // connections open or being dialed
	waiters  []*waiter
	sweeper  *time.Timer
	sweeping bool // the sweeper is armed
	retired  bool // Close was called: no connection is pooled any more
}

// New returns a Transport for the backend at opt.Addr.
func New(opt Options) *Transport {
	if opt.MaxIdleConns <= 0 {
		opt.MaxIdleConns = DefaultMaxIdleConns
	}
	if opt.MaxResponseHeaderBytes <= 0 {
		opt.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	if opt.ExpectContinueTimeout <= 0 {
		opt.ExpectContinueTimeout = DefaultExpectContinueTimeout
	}
	t := &Transport{
		opt:    opt,
		dialer: net.Dialer{Timeout: opt.DialTimeout, KeepAlive: 30 * time.Second},
		host:   opt.Addr,
		addr:   tcpAddr(opt.Addr),
	}
	if opt.TLS != nil {
		t.tlsConfig = opt.TLS.Clone()
		if t.tlsConfig.ServerName == "" {
			if h, _, err := net.SplitHostPort(opt.Addr); err == nil {
				t.tlsConfig.ServerName = h
			}
		}
	}
	return t
}

// Do sends req and returns the backend's response. The caller must close
// the response body; reading it to the end gives the connection back to the
// pool. On error no response is returned and the connection is closed.
//
// A 101 Switching Protocols response to a request with "Connection:
// upgrade" comes with a Body that is an io.ReadWriteCloser: the connection,
// for the new protocol.
func (t *Transport) Do(req *Request) (*http.Response, error) {
	ctx := req.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f := requestFraming(req)
	var w writeBuf
	defer w.put()
	if err := w.head(req, t.host, f); err != nil {
		return nil, err
	}
	// A small body of known length goes with the head, in one write.
	inline := f.body && !f.chunked && !f.expect && f.length <= int64(cap(w.buf)-len(w.buf))
	// Complete in the buffer, an idempotent request may be sent again after
	// a reused connection turned out to be closed by the backend. One that
	// cannot (nor a second attempt) has a pooled connection checked first.
	replayable := (!f.body || inline) && req.idempotent()
	headLen := len(w.buf)
	for attempt := 0; ; attempt++ {
		spare := &w // the first attempt's buffer holds the head alone
		if attempt > 0 {
			spare = nil // it may hold a small body read from the client
		}
		now := req.Start
		if now.IsZero() || attempt > 0 {
			now = time.Now()
		}
		c, err := t.getConn(ctx, now, attempt > 0, replayable && attempt == 0, spare)
		if err != nil {
			return nil, err
		}
		if attempt > 0 || w.buf == nil || f.body {
			// It may have waited (getConn gave the buffer back to wait or
			// dial), or a body is read: the clock is read after the write.
			now = time.Time{}
		}
		if w.buf == nil { // given back after the first attempt's write
			if err := w.head(req, t.host, f); err != nil {
				c.release()
				return nil, err
			}
		}
		if inline && len(w.buf) == headLen {
			n := int(f.length)
			w.buf = w.buf[:headLen+n]
			if _, err := io.ReadFull(req.Body, w.buf[headLen:]); err != nil {
				c.release() // unused: back to the pool
				return nil, fmt.Errorf("h1: reading request body: %w", err)
			}
			if req.closer != nil {
				req.closer.Close()
			}
		}
		// Once written, the buffer is needed again only to send a small
		// body a second time; a head alone is rebuilt. While the response
		// is awaited, the buffer serves other requests.
		keep := inline && replayable && c.reused && attempt == 0
		res, err, retry := c.roundTrip(ctx, req, w.buf, f, inline, replayable, keep, &w, now)
		if err == nil {
			return res, nil
		}
		if req.ResponseHeader != nil {
			clear(req.ResponseHeader)
		}
		if retry && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// RoundTrip implements http.RoundTripper: r goes to the Transport's backend
// whatever its URL's host. The response has no TLS state.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	req := &Request{
		Ctx:    r.Context(),
		Method: r.Method,
		Target: r.URL.RequestURI(),
		Host:   r.Host,
		Header: r.Header,
		Close:  r.Close,
	}
	if req.Host == "" {
		req.Host = r.URL.Host
	}
	if r.Body != nil && r.Body != http.NoBody {
		req.Body = r.Body
		req.closer = r.Body
		req.ContentLength = r.ContentLength
		if req.ContentLength == 0 {
			req.ContentLength = -1 // for client requests, 0 with a body means unknown
		}
		req.Trailer = &r.Trailer
	}
	res, err := t.Do(req)
	if err != nil {
		if req.closer != nil {
			req.closer.Close()
		}
		return nil, err
	}
	res.Request = r
	return res, nil
}

// Close retires the Transport: its idle connections are closed, and so is
// every connection in use once its exchange ends. Requests still sent
// through it work, on connections of their own. It always returns nil.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.retired = true
	t.mu.Unlock()
	t.CloseIdleConnections()
	return nil
}

// CloseIdleConnections closes the pooled idle connections. Connections in
// use are pooled again when their exchange ends.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// writeBufSize is the size of the pooled buffers request heads (and small
// bodies with them) are written from.
const writeBufSize = 16 << 10

var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, writeBufSize); return &b }}

// writeBuf is a request's head (and small body) in a pooled buffer.
type writeBuf struct {
	p   *[]byte // from writeBufs; nil when given back
	buf []byte  // the bytes to write; nil when given back
}

// head builds the request head in a buffer from the pool.
func (w *writeBuf) head(req *Request, host string, f framing) error {
	w.p = writeBufs.Get().(*[]byte)
	var err error
	w.buf, err = appendHead((*w.p)[:0], req, host, f)
	return err
}

// put gives the buffer back to the pool, if it has not been.
func (w *writeBuf) put() {
	if w.p != nil {
		writeBufs.Put(w.p)
		w.p, w.buf = nil, nil
	}
}
