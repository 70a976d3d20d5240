// Package upstream holds the long-lived objects that stand for the servers the
// balancer forwards to: a Backend (one address with its health, counters and
// connection pool) and a Pool (the backends of one snapshot with their weights).
//
// Backends are keyed by their address and reused across configuration
// snapshots, so health state, counters and pooled connections survive a reload.
package upstream

import (
	"net"
	"strconv"
	"sync/atomic"

	"github.com/lbproject/load_balancer/internal/upstream/h1"
)

// Address identifies a backend: scheme ("http" or "https"), host and port.
// Two backends with the same Address are the same backend.
type Address struct {
	Scheme string // "http" or "https"
	Host   string // host name or IP literal, without brackets
	Port   int
}

// HostPort returns "host:port", with brackets around IPv6 literals.
func (a Address) HostPort() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// String returns the address as a URL prefix, e.g. "https://10.0.0.1:8443".
// It is the backend's key and the value shown in logs and metrics.
func (a Address) String() string { return a.Scheme + "://" + a.HostPort() }

// TLS reports whether connections to the backend use TLS.
func (a Address) TLS() bool { return a.Scheme == "https" }

// Backend is one server the balancer forwards to. All of its state is safe
// for concurrent use; the request path reads it without locks.
type Backend struct {
	addr     Address
	key      string // addr.String(), precomputed: used in logs and metrics on every request
	hostPort string // addr.HostPort(), precomputed: the request URL's host

	// transport is the backend's own connection pool. A reload that changes
	// timeouts or TLS settings swaps it; the old one's idle connections are
	// closed and its busy ones finish their requests.
	transport atomic.Pointer[h1.Transport]

	healthy atomic.Bool // result of health checking; starts true
	// Draining has two sources, kept apart so that a reload of the file
	// does not undo a drain asked through the admin API, nor the reverse.
	drainConfig atomic.Bool  // drain: true in the config file
	drainAdmin  atomic.Bool  // drained through the admin API
	inFlight    atomic.Int64 // requests being forwarded right now
	requests    atomic.Uint64
	failures    atomic.Uint64
}

// NewBackend returns a healthy, non-draining backend for addr that forwards
// through transport (see NewTransport). transport may be nil for a
// backend that is only picked, never forwarded to (tests of strategies).
func NewBackend(addr Address, transport *h1.Transport) *Backend {
	b := &Backend{addr: addr, key: addr.String(), hostPort: addr.HostPort()}
	b.transport.Store(transport)
	b.healthy.Store(true)
	return b
}

// Transport returns the connection pool that forwards requests to the
// backend.
func (b *Backend) Transport() *h1.Transport { return b.transport.Load() }

// SetTransport replaces the backend's connection pool and retires the
// previous one: its idle connections close now, and those still carrying a
// request close when it ends instead of idling in a pool no request uses.
func (b *Backend) SetTransport(t *h1.Transport) {
	if old := b.transport.Swap(t); old != nil {
		old.Close()
	}
}

// Address returns the backend's address.
func (b *Backend) Address() Address { return b.addr }

// String returns the backend's key, e.g. "http://127.0.0.1:9001".
func (b *Backend) String() string { return b.key }

// HostPort returns "host:port" of the backend, as used in the outgoing URL.
func (b *Backend) HostPort() string { return b.hostPort }

// Healthy reports whether health checking considers the backend up.
func (b *Backend) Healthy() bool { return b.healthy.Load() }

// SetHealthy records the health checker's verdict and reports whether it
// changed.
func (b *Backend) SetHealthy(up bool) (changed bool) { return b.healthy.Swap(up) != up }

// Draining reports whether the backend takes no new requests (no new
// sticky sessions either; requests in flight finish), because the config
// file or the admin API says so.
func (b *Backend) Draining() bool { return b.drainConfig.Load() || b.drainAdmin.Load() }

// SetDraining records the config file's drain setting.
func (b *Backend) SetDraining(d bool) { b.drainConfig.Store(d) }

// SetAdminDrain records a drain (true) or an enable (false) asked through
// the admin API. An enable does not override drain: true in the file.
func (b *Backend) SetAdminDrain(d bool) { b.drainAdmin.Store(d) }

// DrainSources reports which sources ask the backend to drain.
func (b *Backend) DrainSources() (config, admin bool) {
	return b.drainConfig.Load(), b.drainAdmin.Load()
}

// Available reports whether new requests may go to the backend: healthy and
// not draining.
func (b *Backend) Available() bool { return b.healthy.Load() && !b.Draining() }

// InFlight returns the number of requests being forwarded to the backend.
func (b *Backend) InFlight() int64 { return b.inFlight.Load() }

// Begin counts a request that starts being forwarded to the backend; End
// must follow it.
func (b *Backend) Begin() { b.inFlight.Add(1); b.requests.Add(1) }

// End counts the end of a request started with Begin; failed says whether
// the backend failed to answer it.
func (b *Backend) End(failed bool) {
	b.inFlight.Add(-1)
	if failed {
		b.failures.Add(1)
	}
}

// Requests returns the number of requests ever forwarded to the backend.
func (b *Backend) Requests() uint64 { return b.requests.Load() }

// Failures returns the number of forwarded requests the backend failed.
func (b *Backend) Failures() uint64 { return b.failures.Load() }

// CloseIdleConnections closes the pooled idle connections to the backend.
func (b *Backend) CloseIdleConnections() {
	if t := b.Transport(); t != nil {
		t.CloseIdleConnections()
	}
}
