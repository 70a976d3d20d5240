package upstream

import (
	"crypto/tls"
	"net"
	"net/http"
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
}

// NewTransport returns a keep-alive connection pool to one backend speaking
// HTTP/1.1 (over TLS when opts.TLS is set).
//
// It never uses environment proxies, never asks for compression (bodies pass
// through untouched), and waits for a 100 Continue from the backend before
// sending a body the client announced with "Expect: 100-continue".
func NewTransport(opts TransportOptions) *http.Transport {
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
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
