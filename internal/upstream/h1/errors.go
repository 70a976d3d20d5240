package h1

import (
	"errors"
	"net"
)

// ProtocolError is a response that breaks the rules of HTTP/1.1 (RFC 9110,
// RFC 9112): a malformed status line or field, invalid framing, a head too
// large. The connection it came on is closed.
type ProtocolError struct {
	What string
}

func (e *ProtocolError) Error() string { return "h1: invalid response from backend: " + e.What }

func protoErr(what string) error { return &ProtocolError{What: what} }

// RequestError is a request that cannot be written as HTTP/1.1: an invalid
// method, target, host or field. Nothing was sent.
type RequestError struct {
	What string
}

func (e *RequestError) Error() string { return "h1: invalid request: " + e.What }

// ErrPoolTimeout is the cause of a dial error when no connection became
// free within the dial timeout because the backend is at its connection
// limit (max_conns_per_backend). Nothing was sent; the backend is busy, not
// broken, so callers should not count it against the backend's health.
var ErrPoolTimeout error = poolTimeoutError{}

type poolTimeoutError struct{}

func (poolTimeoutError) Error() string {
	return "h1: timed out waiting for a connection (backend at max_conns)"
}
func (poolTimeoutError) Timeout() bool   { return true }
func (poolTimeoutError) Temporary() bool { return true }

// dialError returns err as a failure to connect to addr: a *net.OpError with
// Op "dial", which callers treat as "the request was not sent".
func dialError(addr net.Addr, err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return err
	}
	return &net.OpError{Op: "dial", Net: "tcp", Addr: addr, Err: err}
}

// tcpAddr is a net.Addr for error messages, from "host:port".
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
