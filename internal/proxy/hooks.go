package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/lbproject/load_balancer/internal/upstream"
)

// Summary is what is known about a request once it is served; the access
// log, metrics and tracing read it.
type Summary struct {
	Start           time.Time
	Duration        time.Duration // arrival to the last response byte
	BackendDuration time.Duration // last attempt: its start (the request's, for a first one) to the response header
	Status          int           // sent to the client; 499: the client went away first
	BytesIn         int64         // request body bytes read from the client
	BytesOut        int64         // response body bytes written to the client
	Backend         *upstream.Backend
	Attempts        int  // backends tried
	StickyHit       bool // the sticky cookie chose the backend
	Aborted         bool // the backend failed mid-body: the response was cut short
	TraceID         string
	Err             error // the last backend error, if any
}

// Metrics counts requests. Implementations must be cheap and safe for
// concurrent use: they run on every request.
type Metrics interface {
	// RequestStarted is called when a request arrives.
	RequestStarted()
	// RequestFinished is called once per request after the response.
	RequestFinished(r *http.Request, s *Summary)
}

// Tracer makes spans. StartRequest continues the client's trace context (if
// any) and returns the request carrying the server span.
type Tracer interface {
	StartRequest(r *http.Request) (*http.Request, RequestSpan)
	// StartAttempt starts the client span of attempt n (1-based) on b and
	// writes the propagation headers (traceparent, tracestate) into header.
	StartAttempt(ctx context.Context, b *upstream.Backend, n int, header http.Header) (context.Context, AttemptSpan)
}

// RequestSpan is the server span of one request.
type RequestSpan interface {
	TraceID() string
	End(s *Summary)
}

// AttemptSpan is the client span of one attempt; res is nil when err is set.
type AttemptSpan interface {
	End(res *http.Response, err error)
}

// finish completes a request's bookkeeping: duration, bytes read, metrics
// and the access log line. It runs deferred, also when the handler aborts
// the response with a panic.
func (h *Handler) finish(r *http.Request, ex *exchange) {
	ex.Duration = time.Since(ex.Start)
	if ex.body != nil {
		ex.BytesIn = ex.body.n.Load()
	}
	if h.Metrics != nil {
		h.Metrics.RequestFinished(r, &ex.Summary)
	}
	h.logAccess(r, ex)
}
