package upstream

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
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
// when a dial succeeds, one fewer when the connection is closed (once, however
// often Close is called). Health probes dial their own connections and are
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

// dialFunc is the type of net.Dialer.DialContext.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// wrap returns dial with its connections counted.
func (c *ConnCount) wrap(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.open.Add(1)
		c.dialed.Add(1)
		return &countedConn{Conn: conn, count: c}, nil
	}
}

// countedConn takes itself off its ConnCount when it is first closed.
type countedConn struct {
	net.Conn
	count *ConnCount
	once  sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.count.open.Add(-1) })
	return err
}

// NewTransport returns a keep-alive connection pool to one backend speaking
// HTTP/1.1 (over TLS when opts.TLS is set).
//
// It never uses environment proxies, never asks for compression (bodies pass
// through untouched), and waits for a 100 Continue from the backend before
// sending a body the client announced with "Expect: 100-continue".
func NewTransport(opts TransportOptions) *http.Transport {
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	dial := dialFunc(dialer.DialContext)
	if opts.Conns != nil {
		dial = opts.Conns.wrap(dial)
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            dial,
		TLSClientConfig:        opts.TLS,
		TLSHandshakeTimeout:    opts.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  opts.ResponseHeaderTimeout,
		IdleConnTimeout:        opts.IdleConnTimeout,
		MaxIdleConns:           opts.MaxIdleConns,
		MaxIdleConnsPerHost:    opts.MaxIdleConns,
		MaxConnsPerHost:        opts.MaxConns,
		DisableCompression:     true,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
		ForceAttemptHTTP2:      false,
	}
}
