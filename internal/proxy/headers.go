package proxy

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/lbproject/load_balancer/internal/upstream/h1"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 and their
// historical relatives. They describe one connection, not the message, so a
// proxy must not forward them in either direction.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection", // non-standard, sent by old clients
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",      // canonical form of "TE"
	"Trailer", // not Trailers, per RFC 9110 §6.6.2
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopByHopHeaders deletes the hop-by-hop headers from h, and first every
// header named in its Connection header (RFC 9110 §7.6.1: the sender lists
// there the headers meant for the next hop only).
func removeHopByHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for sf := range strings.SplitSeq(v, ",") {
			if sf = trimOWS(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, name := range hopHeaders {
		if _, ok := h[name]; ok {
			delete(h, name)
		}
	}
}

// trimOWS trims the optional whitespace of a list element.
func trimOWS(s string) string { return strings.Trim(s, " \t") }

// upgradeType returns the protocol a request or response asks to switch to
// (its Upgrade header, when Connection lists "upgrade"), or "".
func upgradeType(h http.Header) string {
	if !h1.HasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// isHopByHop reports whether the canonical header name k is one of
// hopHeaders.
func isHopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// Header values shared by every request that uses them. The outgoing
// header's value slices are shared with the client's header and with these:
// they are never modified in place, only replaced.
var (
	valueHTTP              = []string{"http"}
	valueHTTPS             = []string{"https"}
	valueTrailers          = []string{"trailers"}
	valueChunked           = []string{"chunked"}
	valueConnectionUpgrade = []string{"Upgrade"}
)

// forwarding is the per-snapshot policy for X-Forwarded-* and Via.
type forwarding struct {
	trusted []netip.Prefix // peers whose X-Forwarded-* headers are kept
	via     [3]string      // Via value for HTTP/1.0, 1.1 and 2 clients
	viaList [3][]string    // the same, as header values
}

func newForwarding(trusted []netip.Prefix, pseudonym string) forwarding {
	if pseudonym == "" {
		pseudonym = "load_balancer"
	}
	f := forwarding{
		trusted: trusted,
		via:     [3]string{"1.0 " + pseudonym, "1.1 " + pseudonym, "2.0 " + pseudonym},
	}
	for i, v := range f.via {
		f.viaList[i] = []string{v}
	}
	return f
}

// viaIndex returns the index in via of a message received as proto.
func viaIndex(major, minor int) int {
	switch {
	case major >= 2:
		return 2
	case minor == 0:
		return 0
	}
	return 1
}

// viaValue returns the Via element for a message received as proto, as a
// shared header value.
func (f *forwarding) viaValue(major, minor int) []string { return f.viaList[viaIndex(major, minor)] }

// isTrusted reports whether the client address belongs to a trusted proxy.
func (f *forwarding) isTrusted(client netip.Addr) bool {
	for _, p := range f.trusted {
		if p.Contains(client) {
			return true
		}
	}
	return false
}

// forwardingFields is a set of the fields setForwardingHeaders writes or
// drops, as present in a header, so that it looks up and deletes only those
// the client sent (most send none): each lookup or delete hashes the name.
type forwardingFields uint8

const (
	sentXForwardedFor forwardingFields = 1 << iota
	sentXForwardedProto
	sentXForwardedHost
	sentForwarded
	sentVia
)

// forwardingField returns the bit of the canonical header name k, or 0 if
// it is not one of the forwarding fields.
func forwardingField(k string) forwardingFields {
	switch k {
	case "X-Forwarded-For":
		return sentXForwardedFor
	case "X-Forwarded-Proto":
		return sentXForwardedProto
	case "X-Forwarded-Host":
		return sentXForwardedHost
	case "Forwarded":
		return sentForwarded
	case "Via":
		return sentVia
	}
	return 0
}

// setForwardingHeaders sets X-Forwarded-For/-Proto/-Host and Via on the
// outgoing request header h, in which sent says which of these fields (and
// Forwarded) the client sent. Headers a client sent are kept (and
// X-Forwarded-For appended to) only when the client is a trusted proxy;
// anyone else could forge them.
func (f *forwarding) setForwardingHeaders(h http.Header, in *http.Request, ci *connInfo, sent forwardingFields) {
	client := ci.addr
	if sent&^sentVia != 0 && !(client.IsValid() && f.isTrusted(client)) {
		delete(h, "X-Forwarded-For")
		delete(h, "X-Forwarded-Proto")
		delete(h, "X-Forwarded-Host")
		delete(h, "Forwarded")
		sent &= sentVia
	}
	if client.IsValid() {
		if sent&sentXForwardedFor != 0 {
			h["X-Forwarded-For"] = []string{strings.Join(h["X-Forwarded-For"], ", ") + ", " + ci.xff[0]}
		} else {
			h["X-Forwarded-For"] = ci.xff
		}
	}
	if sent&sentXForwardedProto == 0 {
		if in.TLS != nil {
			h["X-Forwarded-Proto"] = valueHTTPS
		} else {
			h["X-Forwarded-Proto"] = valueHTTP
		}
	}
	if sent&sentXForwardedHost == 0 && in.Host != "" {
		h["X-Forwarded-Host"] = ci.forwardedHost(in.Host)
	}
	via := f.viaValue(in.ProtoMajor, in.ProtoMinor)
	if sent&sentVia != 0 {
		appendVia(h, via)
	} else {
		h["Via"] = via
	}
}

// appendVia adds this proxy to the Via header of a forwarded message
// (RFC 9110 §7.6.3). via is a shared one-element value.
func appendVia(h http.Header, via []string) {
	if prior := h["Via"]; len(prior) > 0 {
		h["Via"] = []string{strings.Join(prior, ", ") + ", " + via[0]}
		return
	}
	h["Via"] = via
}
