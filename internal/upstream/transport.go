package upstream

import (
	"crypto/tls"
	"sync/atomic"
	"time"

	"github.com/lbproject/load_balancer/internal/upstream/h1"
)

// TransportOptions are the connection settings of one backend's pool.
type TransportOptions struct {
	DialTimeout           time.Duration // connect; also bounds a dial in progress
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration // request written → response header read
	IdleConnTimeout       time.Duration // idle pooled connection lifetime
	MaxIdleConns          int           // idle keep-alive connections kept
	MaxConns              int           // 0: no limit
	TLS                   *tls.Config   // nil for plain HTTP backends

	// Conns, if not nil, counts the connections the transport opens. One
	// ConnCount is shared by the successive transports of a backend, so
	// that connections of a replaced transport still finishing requests
	// stay counted. It is not a connection setting: comparing options to
	// decide whether a transport must be replaced ignores it.
	Conns *ConnCount
}

// ConnCount counts the open TCP connections of a backend's pool: one more
// when a dial succeeds, one fewer when the connection is closed. Health probes dial their own connections and are
// not counted. The zero value is ready to use.
type ConnCount struct {
	open   atomic.Int64
	dialed atomic.Uint64
}

// Open returns the number of connections open now.
func (c *ConnCount) Open() int64 { return c.open.Load() }

// Dialed returns the number of connections ever opened.
func (c *ConnCount) Dialed() uint64 { return c.dialed.Load() }

// Idle estimates the pooled idle connections: open minus inFlight (the
// backend's requests waiting for a response header), at least 0. It is an
// upper bound: a connection streaming a response body, or carrying an
// upgraded (WebSocket) tunnel, is not in flight but not idle either.
func (c *ConnCount) Idle(inFlight int64) int64 { return max(c.Open()-inFlight, 0) }

// NewTransport returns the keep-alive connection pool to the backend at
// addr, with the balancer's own HTTP/1.1 client (package h1): opts' timeouts
// and limits, a 64 KiB response head limit, a 1 s wait for "100 Continue",
// and the connections counted in opts.Conns.
func NewTransport(addr Address, opts TransportOptions) *h1.Transport {
	o := h1.Options{
		Addr:                   addr.HostPort(),
		TLS:                    opts.TLS,
		DialTimeout:            opts.DialTimeout,
		TLSHandshakeTimeout:    opts.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  opts.ResponseHeaderTimeout,
		IdleConnTimeout:        opts.IdleConnTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           opts.MaxIdleConns,
		MaxConns:               opts.MaxConns,
		MaxResponseHeaderBytes: 64 << 10,
	}
	if c := opts.Conns; c != nil {
		// h1 reports each connection's open and (single) close.
		o.OnConnOpen = func() { c.open.Add(1); c.dialed.Add(1) }
		o.OnConnClose = func() { c.open.Add(-1) }
	}
	return h1.New(o)
}
