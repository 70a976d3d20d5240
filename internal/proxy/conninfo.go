package proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
)

// connInfo is what the proxy derives once per client connection rather than
// once per request: the client's address, parsed, and its text form as it
// goes into X-Forwarded-For. ConnContext attaches it to the connection's
// context, from which every request on the connection inherits it.
type connInfo struct {
	addr netip.Addr // unmapped; invalid if the peer address is not IP
	xff  []string   // {addr.String()}; shared, never modified in place

	// host caches the last X-Forwarded-Host value built for a request on
	// this connection; clients send the same Host on every request. The
	// requests of an HTTP/2 connection run concurrently, hence the atomic
	// pointer to an immutable entry.
	host atomic.Pointer[hostEntry]
}

type hostEntry struct {
	host  string
	value []string // {host}; shared, never modified in place
}

type connInfoKey struct{}

// ConnContext is an http.Server ConnContext hook: it parses the client's
// address once per connection, so that the forwarding headers of each
// request cost no parsing or allocation. Without it the handler parses
// Request.RemoteAddr on every request, with the same result.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connInfoKey{}, newConnInfo(c.RemoteAddr()))
}

func newConnInfo(a net.Addr) *connInfo {
	var addr netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		addr = a.AddrPort().Addr()
	case nil:
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			addr = ap.Addr()
		}
	}
	return connInfoFor(addr)
}

func connInfoFor(addr netip.Addr) *connInfo {
	ci := &connInfo{addr: addr.Unmap()}
	if ci.addr.IsValid() {
		ci.xff = []string{ci.addr.String()}
	}
	return ci
}

// requestConnInfo returns the connection's info from the request context,
// or, for requests not served through ConnContext (tests, other servers),
// one parsed from r.RemoteAddr.
func requestConnInfo(r *http.Request) *connInfo {
	if ci, ok := r.Context().Value(connInfoKey{}).(*connInfo); ok {
		return ci
	}
	var addr netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		addr = ap.Addr()
	}
	return connInfoFor(addr)
}

// forwardedHost returns {host} as a header value, reusing the slice of the
// previous request on the connection when the host is the same.
func (ci *connInfo) forwardedHost(host string) []string {
	if e := ci.host.Load(); e != nil && e.host == host {
		return e.value
	}
	e := &hostEntry{host: host, value: []string{host}}
	ci.host.Store(e)
	return e.value
}
