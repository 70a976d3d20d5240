package upstream

import (
	"time"

	"github.com/lbproject/load_balancer/internal/upstream/h1"
)

// NewH1Transport returns the connection pool to the backend at addr with
// the balancer's own HTTP/1.1 client (package h1), configured as NewTransport
// configures net/http's: the same timeouts and limits, a 64 KiB response
// head limit, a 1 s wait for "100 Continue", and the connections counted in
// opts.Conns.
func NewH1Transport(addr Address, opts TransportOptions) *h1.Transport {
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
		// The counts ConnCount.wrap keeps for net/http's dialer; h1 closes
		// each connection once, so hooks replace the wrapping net.Conn.
		o.OnConnOpen = func() { c.open.Add(1); c.dialed.Add(1) }
		o.OnConnClose = func() { c.open.Add(-1) }
	}
	return h1.New(o)
}
