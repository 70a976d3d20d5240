package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"reflect"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// registry keeps the Backend objects across snapshots, keyed by address, so
// that a reload keeps their health state, counters and pooled connections.
// Only the goroutine that applies configurations uses it.
type registry struct {
	backends map[upstream.Address]*registered
}

type registered struct {
	backend *upstream.Backend
	opts    upstream.TransportOptions // what its transport was built with
	tlsKey  config.BackendTLS         // the TLS settings opts.TLS came from
}

func newRegistry() *registry {
	return &registry{backends: make(map[upstream.Address]*registered)}
}

// resolve returns the Backend for a config entry: the existing one when the
// address is known (its transport replaced if its settings changed), else a
// new one. It does not change the registry: commit does, once the whole
// snapshot compiled.
func (reg *registry) resolve(cfg *config.Config, b config.Backend, pending map[upstream.Address]*registered) (*registered, error) {
	addr := upstream.Address{Scheme: b.Scheme(), Host: b.Hostname(), Port: b.Port}
	opts, err := transportOptions(cfg, b, addr)
	if err != nil {
		return nil, err
	}
	if old, ok := reg.backends[addr]; ok {
		// The backend's connections keep being counted across transports.
		opts.Conns = old.opts.Conns
		if sameTransport(old, opts, b.TLS) {
			return old, nil
		}
		// Same backend, new connection settings: keep the Backend (and its
		// state); the new transport is swapped in by commit.
		return &registered{backend: old.backend, opts: opts, tlsKey: b.TLS}, nil
	}
	if p, ok := pending[addr]; ok {
		return p, nil
	}
	opts.Conns = new(upstream.ConnCount)
	nb := upstream.NewBackend(addr, upstream.NewTransport(addr, opts))
	return &registered{backend: nb, opts: opts, tlsKey: b.TLS}, nil
}

func sameTransport(old *registered, opts upstream.TransportOptions, tlsKey config.BackendTLS) bool {
	a, b := old.opts, opts
	a.TLS, b.TLS = nil, nil
	a.Conns, b.Conns = nil, nil
	return a == b && reflect.DeepEqual(old.tlsKey, tlsKey) && (old.opts.TLS == nil) == (opts.TLS == nil)
}

// commit makes next the registry's content: backends whose transport
// settings changed get their new transport, and backends no longer used
// close their idle connections (requests in flight finish on the
// connections they hold). It returns the removed backends.
func (reg *registry) commit(next map[upstream.Address]*registered) (removed []*upstream.Backend) {
	for addr, r := range next {
		if old, ok := reg.backends[addr]; ok && old != r {
			r.backend.SetTransport(upstream.NewTransport(addr, r.opts))
		}
	}
	for addr, old := range reg.backends {
		if _, ok := next[addr]; !ok {
			old.backend.CloseIdleConnections()
			removed = append(removed, old.backend)
		}
	}
	reg.backends = next
	return removed
}

// transportOptions derives a backend's connection settings from the config.
func transportOptions(cfg *config.Config, b config.Backend, addr upstream.Address) (upstream.TransportOptions, error) {
	opts := upstream.TransportOptions{
		DialTimeout:           cfg.Timeouts.Dial.D(),
		TLSHandshakeTimeout:   cfg.Timeouts.TLSHandshake.D(),
		ResponseHeaderTimeout: cfg.Timeouts.ResponseHeader.D(),
		IdleConnTimeout:       cfg.Timeouts.BackendIdle.D(),
		MaxIdleConns:          cfg.Limits.MaxIdleConnsPerBackend,
		MaxConns:              cfg.Limits.MaxConnsPerBackend,
	}
	if addr.TLS() {
		tc, err := backendTLSConfig(b.TLS, addr.Host)
		if err != nil {
			return opts, fmt.Errorf("%s:%d: backend %s: %w", cfg.Source, b.Line, addr, err)
		}
		opts.TLS = tc
	}
	return opts, nil
}

// backendTLSConfig builds the TLS client settings for one backend:
// certificates verified against the system roots (or ca_file) and the
// backend's host name (or server_name), unless verification is turned off.
func backendTLSConfig(t config.BackendTLS, host string) (*tls.Config, error) {
	tc := &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: t.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
		// HTTP/1.1 to backends; ALPN says so, so a backend that prefers h2
		// does not switch.
		NextProtos: []string{"http/1.1"},
	}
	if t.ServerName != "" {
		tc.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate found", t.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
