package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"github.com/lbproject/load_balancer/internal/upstream/h1"
)

// failure classifies why an attempt to a backend failed. The class decides
// whether another backend may be tried, what the client is told, and what
// passive health checking learns.
type failure int

const (
	failNone       failure = iota
	failConnect            // no connection: refused, unreachable, dial or TLS failure; request not sent
	failReset              // connection broke before any response byte (reset, EOF)
	failTimeout            // no response header within the timeout
	failProtocol           // the backend answered something that is not HTTP
	failCanceled           // the client went away; not the backend's fault
	failClientBody         // the client's request body was malformed or cut short
	failPoolFull           // the backend is at its connection limit; request not sent
)

// classify maps a RoundTrip error to its failure class.
func classify(err error, clientCtx context.Context) failure {
	if clientCtx.Err() != nil {
		return failCanceled
	}
	if errors.Is(err, h1.ErrPoolTimeout) {
		return failPoolFull
	}
	// The backend client reports every failure to connect, TLS handshake
	// included, as a dial error: nothing was sent.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return failConnect
	}
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		return failTimeout
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return failReset
	}
	return failProtocol
}

// statusFor returns the status the client gets when the last attempt failed
// with f: 504 when the backend was too slow, 502 for everything else.
func statusFor(f failure) int {
	switch f {
	case failTimeout:
		return http.StatusGatewayTimeout
	case failPoolFull:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

// writeError sends a small plain-text error reply that names the status and
// nothing about the backend or the cause: internals go to the log only.
func writeError(w http.ResponseWriter, status int) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	body := errorBodies[status]
	if body == "" {
		body = strconv.Itoa(status) + " " + http.StatusText(status) + "\n"
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

var errorBodies = map[int]string{
	http.StatusBadGateway:         "502 Bad Gateway\n",
	http.StatusServiceUnavailable: "503 Service Unavailable: no healthy backend\n",
	http.StatusGatewayTimeout:     "504 Gateway Timeout\n",
	http.StatusRequestURITooLong:  "414 URI Too Long\n",
	http.StatusBadRequest:         "400 Bad Request\n",
}
