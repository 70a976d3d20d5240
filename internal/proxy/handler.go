// Package proxy is the forwarding handler: it picks a backend with the
// running snapshot's strategy, forwards the request with the right headers,
// retries another backend when that is safe, and streams the response back.
//
// The rules it follows are those of RFC 9110 and RFC 9112 for a gateway:
// hop-by-hop headers are removed in both directions, X-Forwarded-* and Via
// are set, bodies are streamed in every framing without being buffered, and a
// backend that fails mid-body makes the client see a truncated response,
// never a complete-looking short one.
package proxy

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lbproject/load_balancer/internal/balancer"
	"github.com/lbproject/load_balancer/internal/health"
	"github.com/lbproject/load_balancer/internal/upstream"
	"github.com/lbproject/load_balancer/internal/upstream/h1"
)

// Snapshot is the part of the running configuration the proxy uses. It is
// immutable once stored in a Handler; a reload stores a new one. A request
// loads the snapshot once and uses it to the end.
type Snapshot struct {
	Pool   *upstream.Pool
	Picker balancer.Picker
	// Sticky, when set, pins clients to backends with a cookie; Picker is
	// then the fallback for clients without a valid pin.
	Sticky *balancer.StickyCookies
	// Attempts is the most backends one request is tried on, 1..MaxAttempts.
	Attempts int
	// MaxURIBytes bounds the request target; longer gets 414.
	MaxURIBytes int
	// TrustedProxies are the peers whose X-Forwarded-* headers are kept.
	TrustedProxies []netip.Prefix
	// Via is the pseudonym of this proxy in Via headers.
	Via string
	// AccessLog enables one log line per request.
	AccessLog bool
	// ClientBodyIdle bounds each wait for the next bytes of a request
	// body; 0 means no bound.
	ClientBodyIdle time.Duration

	fwd forwarding // derived from TrustedProxies and Via by Handler.Store
}

// Observer learns the outcome of every attempt on a backend. Passive health
// checking implements it. It is called on the request path and must be cheap.
type Observer interface {
	Observe(b *upstream.Backend, o health.Outcome)
}

// Handler is the proxy's http.Handler. The zero value is not usable; build
// it with New and give it a snapshot with Store before serving.
type Handler struct {
	snapshot atomic.Pointer[Snapshot]

	// Log receives error lines and, when the snapshot's AccessLog is set,
	// one line per request.
	Log *slog.Logger
	// Observer, if not nil, is told the outcome of every attempt.
	Observer Observer
	// Metrics, if not nil, counts every request.
	Metrics Metrics
	// Tracer, if not nil, makes a span per request and per attempt. Nil
	// (tracing off) costs nothing.
	Tracer Tracer

	tunnels tunnelSet
}

// New returns a Handler that logs to log.
func New(log *slog.Logger) *Handler {
	return &Handler{Log: log}
}

// Store makes s the snapshot for requests that start from now on.
func (h *Handler) Store(s *Snapshot) {
	s.fwd = newForwarding(s.TrustedProxies, s.Via)
	if s.Attempts < 1 {
		s.Attempts = 1
	}
	if s.Attempts > balancer.MaxAttempts {
		s.Attempts = balancer.MaxAttempts
	}
	h.snapshot.Store(s)
}

// Snapshot returns the snapshot in service.
func (h *Handler) Snapshot() *Snapshot { return h.snapshot.Load() }

// exchange is the state of one client request while it is being served.
// Exchanges are pooled: nothing may keep a pointer into one (its Summary
// included) after the request.
type exchange struct {
	Summary
	accessLog bool             // the snapshot's AccessLog
	body      *requestBody     // nil without a request body; not pooled
	header    http.Header      // room for the request header for the backend; cleared and reused
	outHeader http.Header      // the request header for the backend: header, or the client's own
	out       h1.Request       // the request to an h1 backend transport
	space     h1.ResponseSpace // the backend's response, kept until the request ends

	respHeader http.Header // the ResponseWriter's header, if empty before the attempts
	respVals   []string    // room for respHeader's values, if the ResponseWriter has some
	inPlace    bool        // the response's header is respHeader

	// w receives informational responses through got1xx, a method value
	// made once per pooled exchange rather than once per request.
	w        http.ResponseWriter
	client11 bool // the client speaks HTTP/1.1 or later and may get 1xx responses
	got1xx   func(code int, header http.Header) error
}

// headerValuer is a ResponseWriter with room for the values of its header
// fields (h1server's): valid, like its header map, for the whole request.
type headerValuer interface{ HeaderValues() []string }

// requestHeaderOwner is a ResponseWriter whose server may leave the
// request's header to the handler once it runs (h1server's, when told so):
// the request to the backend is then built in it, without copying the
// client's fields into another map (about 25 ns a field). From then on
// r.Header is the backend's header, and so it is for what is given r later:
// the Picker of a retry, Metrics.RequestFinished, the Tracer's span end.
// net/http's server (HTTP/2) keeps the copy.
type requestHeaderOwner interface{ OwnsRequestHeader() bool }

// inPlaceFields is how many fields a client's header must have for the
// request to the backend to be built in it (when its server allows). A
// smaller one is copied into the exchange's map, which stays small (Go
// keeps a map of up to 8 entries in one group): writing the forwarding
// fields into the server's larger map and reading it back cost more than
// copying a few fields (measured: −3 % at 64 connections with wrk's
// header of Host alone, +4 % with a browser's 13 fields).
const inPlaceFields = 6

var exchanges = sync.Pool{New: func() any {
	ex := &exchange{header: make(http.Header, 8)}
	ex.got1xx = ex.forward1xx
	return ex
}}

// forward1xx passes an informational response (103 Early Hints, ...) on to
// the client, as RFC 9110 §15.2 asks of a proxy, except to HTTP/1.0 clients,
// which must not get one. 100 and 101 never come here: the client's own
// 100 Continue is sent by the server when the body is read, and 101 is the
// final answer of an upgrade.
func (ex *exchange) forward1xx(code int, header http.Header) error {
	if !ex.client11 {
		return nil
	}
	dst := ex.w.Header()
	for k, v := range header {
		dst[k] = v
	}
	ex.w.WriteHeader(code)
	// The fields belonged to the 1xx response only; the final response
	// brings its own.
	for k := range header {
		delete(dst, k)
	}
	return nil
}

// maxPooledHeader is the most fields an outgoing header map may have held
// for it to be reused; bigger maps are left to the garbage collector.
const maxPooledHeader = 64

func getExchange() *exchange { return exchanges.Get().(*exchange) }

// release clears ex and returns it to the pool.
func (ex *exchange) release() {
	if ex.body != nil {
		ex.body.end()
	}
	h := ex.header
	if len(h) > maxPooledHeader {
		h = make(http.Header, 8)
	} else {
		clear(h)
	}
	*ex = exchange{header: h, got1xx: ex.got1xx}
	exchanges.Put(ex)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	snap := h.snapshot.Load()
	ex := getExchange()
	defer ex.release() // deferred first, so it runs last
	ex.Start = time.Now()
	ex.accessLog = snap.AccessLog
	if h.Tracer != nil {
		var span RequestSpan
		r, span = h.Tracer.StartRequest(r)
		ex.TraceID = span.TraceID()
		defer func() { span.End(&ex.Summary) }()
	}
	if h.Metrics != nil {
		h.Metrics.RequestStarted()
	}
	defer h.finish(r, ex)

	if len(r.RequestURI) > snap.MaxURIBytes {
		ex.Status = http.StatusRequestURITooLong
		writeError(w, ex.Status)
		return
	}
	if r.Method == http.MethodConnect {
		// A load balancer is not a forward proxy: CONNECT tunnels are refused.
		ex.Status = http.StatusMethodNotAllowed
		writeError(w, ex.Status)
		return
	}

	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// Go's server drops a Content-Length sent beside
		// "Transfer-Encoding: chunked" without telling the handler. RFC 9112
		// §6.1 asks to close the connection after such a request, since a
		// peer in front may have framed it by Content-Length (request
		// smuggling). Not knowing, close after every chunked request.
		w.Header()["Connection"] = []string{"close"}
	}
	// The sticky cookie is read before the header may become the backend's
	// (a Connection field may name Cookie, which is then not sent on).
	var filter balancer.Filter
	pinned := stickyBackend(snap, r, &filter)
	into := ex.header
	if len(r.Header) >= inPlaceFields {
		if o, ok := w.(requestHeaderOwner); ok && o.OwnsRequestHeader() {
			into = nil // built in the client's header: no copy
		}
	}
	var upgrade string
	ex.outHeader, upgrade = outgoingHeader(r, snap, requestConnInfo(r), into)
	body := newRequestBody(w, r, snap.ClientBodyIdle)
	ex.body = body

	if dst := w.Header(); len(dst) == 0 {
		// An h1 backend transport parses the response header right into
		// the ResponseWriter's, saving a map and a copy.
		ex.respHeader = dst
		if hv, ok := w.(headerValuer); ok {
			ex.respVals = hv.HeaderValues()
		}
	}
	ex.w, ex.client11 = w, r.ProtoAtLeast(1, 1)
	b := pinned
	last := failNone
	for {
		if b == nil {
			b = pick(snap, r, &filter)
		}
		if b == nil {
			ex.Status = statusAfter(last, ex.Attempts, filter.IgnoreHealth)
			writeError(w, ex.Status)
			return
		}
		filter.Exclude(b)
		ex.Attempts++
		ex.Backend = b

		res, f, err := h.attempt(r, b, ex.Attempts, ex)
		if f == failNone {
			ex.StickyHit = pinned != nil && b == pinned
			if upgrade != "" && res.StatusCode == http.StatusSwitchingProtocols {
				ex.Status = h.serveUpgrade(w, res, upgrade, ex)
				return
			}
			if snap.Sticky != nil && !ex.StickyHit {
				// No pin, an invalid one, or the pinned backend failed and
				// another answered: pin the client to the one that answered.
				w.Header().Add("Set-Cookie", snap.Sticky.Cookie(b, r.TLS != nil))
			}
			h.respond(w, res, snap, ex)
			return
		}
		ex.Err = err
		if f == failCanceled {
			ex.Status = statusClientClosed
			return
		}
		if f == failClientBody {
			// The client's body was malformed, cut or stalled: its fault,
			// not the backend's, so no retry, no health penalty, and a 400.
			// The connection closes after it: the rest of the body cannot
			// be trusted, nor waited for.
			w.Header()["Connection"] = []string{"close"}
			ex.Status = http.StatusBadRequest
			writeError(w, ex.Status)
			return
		}
		last = f
		if ex.Attempts >= snap.Attempts || !retryable(f, r, body) {
			ex.Status = statusAfter(last, ex.Attempts, filter.IgnoreHealth)
			writeError(w, ex.Status)
			return
		}
		b = nil
	}
}

// statusClientClosed is logged (never sent) when the client went away
// before the response started, as nginx does.
const statusClientClosed = 499

// statusAfter is the status for a request no backend answered: 503 when no
// backend was available at all, or when only backends already marked down
// (panic mode) were tried and refused the connection; otherwise 502 or 504
// by the last failure.
func statusAfter(last failure, attempts int, panicMode bool) int {
	if attempts == 0 || (panicMode && last == failConnect) {
		return http.StatusServiceUnavailable
	}
	return statusFor(last)
}

// stickyBackend returns the backend the request's sticky cookie pins it to,
// if the strategy is sticky and that backend takes requests.
func stickyBackend(snap *Snapshot, r *http.Request, f *balancer.Filter) *upstream.Backend {
	if snap.Sticky == nil {
		return nil
	}
	if b := snap.Sticky.Lookup(r); b != nil && f.Allows(b) {
		return b
	}
	return nil
}

// pick chooses the next backend. When no healthy backend is left it enters
// panic mode and tries backends marked down too: a health verdict can be
// wrong, and trying beats failing every request (Envoy does the same).
func pick(snap *Snapshot, r *http.Request, f *balancer.Filter) *upstream.Backend {
	if b := snap.Picker.Pick(r, *f); b != nil || f.IgnoreHealth {
		return b
	}
	// Nothing healthy is left untried. Panic mode starts only if a backend
	// marked down remains, not merely because every healthy one was tried.
	panicFilter := *f
	panicFilter.IgnoreHealth = true
	b := snap.Picker.Pick(r, panicFilter)
	if b != nil {
		f.IgnoreHealth = true
	}
	return b
}

// retryable reports whether a failed attempt may be repeated on another
// backend: always when the request was not sent (connect failure, body
// untouched); after a reset only for idempotent methods without a body,
// since a body already streamed cannot be replayed.
func retryable(f failure, r *http.Request, body *requestBody) bool {
	switch f {
	case failConnect, failPoolFull:
		return body == nil || !body.used.Load()
	case failReset:
		return body == nil && isIdempotent(r.Method)
	}
	return false
}

func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// attempt forwards the request to b once and classifies the outcome.
func (h *Handler) attempt(r *http.Request, b *upstream.Backend, n int, ex *exchange) (*http.Response, failure, error) {
	ctx := r.Context()
	header, body := ex.outHeader, ex.body
	var span AttemptSpan
	if h.Tracer != nil {
		// The attempt's span context goes to the backend in traceparent.
		ctx, span = h.Tracer.StartAttempt(ctx, b, n, header)
	}

	b.Begin()
	sent := ex.Start // nothing waited since for the first attempt: one clock read less
	if n > 1 {
		sent = time.Now()
	}
	out := &ex.out
	*out = h1.Request{
		Ctx:    ctx,
		Method: r.Method,
		Target: requestTarget(r),
		Host:   r.Host,
		Header: header,
	}
	if body != nil {
		out.Body = body
		out.ContentLength = r.ContentLength
		out.Trailer = &r.Trailer
	}
	out.ResponseHeader = ex.respHeader
	out.ResponseValues = ex.respVals
	out.StripHopByHop = true
	out.Got1xx = ex.got1xx
	out.Space = &ex.space
	out.Start = sent
	res, err := b.Transport().Do(out)
	ex.inPlace = err == nil && ex.respHeader != nil
	ex.BackendDuration = time.Since(sent)
	if span != nil {
		span.End(res, err)
	}
	if err == nil {
		b.End(false)
		if h.Observer != nil {
			if res.StatusCode >= 500 {
				h.Observer.Observe(b, health.ServerError)
			} else {
				h.Observer.Observe(b, health.Success)
			}
		}
		return res, failNone, nil
	}
	f := classify(err, r.Context())
	var reqErr *h1.RequestError
	if body != nil && body.clientError() || errors.As(err, &reqErr) {
		// The client's request could not be read or cannot be forwarded.
		f = failClientBody
	}
	// Not the backend's fault: the client went away or sent a bad body, or
	// the backend is merely at its connection limit.
	blameBackend := f != failCanceled && f != failClientBody && f != failPoolFull
	b.End(blameBackend)
	if h.Observer != nil && blameBackend {
		h.Observer.Observe(b, outcomeOf(f))
	}
	return nil, f, err
}

// requestTarget returns the target to send to the backend: the client's,
// as it sent it, when in origin form; the path and query of an
// absolute-form target (RFC 9112 §3.2.2: a gateway sends origin form).
func requestTarget(r *http.Request) string {
	if u := r.RequestURI; len(u) > 0 && u[0] == '/' {
		return u
	}
	return r.URL.RequestURI()
}

// outcomeOf translates a failure class for passive health checking.
func outcomeOf(f failure) health.Outcome {
	switch f {
	case failConnect:
		return health.ConnectFailure
	case failTimeout:
		return health.Timeout
	}
	return health.Reset
}

// outgoingHeader prepares the header of the request to the backend, once
// for all attempts: the client's fields without hop-by-hop ones, with the
// forwarding fields set. It builds it in h (empty), sharing the value
// slices with the client's header, never modified in place; or, if h is
// nil, in the client's header itself (which the server then must not
// need: see requestHeaderOwner). It returns the header and the protocol the
// client asks to upgrade to, if any, whose Connection and Upgrade fields
// are kept.
func outgoingHeader(r *http.Request, snap *Snapshot, ci *connInfo, h http.Header) (http.Header, string) {
	upgrade := ""
	if r.ProtoMajor == 1 {
		upgrade = upgradeType(r.Header)
	}
	inPlace := h == nil
	if inPlace {
		h = r.Header
	}
	// RFC 9110 §7.6.1: the fields Connection names are for this hop only.
	connection := r.Header["Connection"]
	teTrailers := h1.HasToken(r.Header["Te"], "trailers")
	var sent forwardingFields
	for k, vv := range r.Header {
		if isHopByHop(k) || (len(connection) > 0 && h1.HasToken(connection, k)) {
			if inPlace {
				delete(h, k) // (deleting while ranging is allowed)
			}
			continue
		}
		sent |= forwardingField(k)
		if !inPlace {
			h[k] = vv
		}
	}
	if teTrailers {
		// "TE: trailers" says the client accepts trailers; the backend
		// needs to know, so it is the one TE value passed on.
		h["Te"] = valueTrailers
	}
	if upgrade != "" {
		h["Connection"] = valueConnectionUpgrade
		h["Upgrade"] = []string{upgrade}
	}
	snap.fwd.setForwardingHeaders(h, r, ci, sent)
	return h, upgrade
}

// respond sends the backend's response to the client: status, end-to-end
// headers (res.Header, without hop-by-hop fields), streamed body and
// trailers.
func (h *Handler) respond(w http.ResponseWriter, res *http.Response, snap *Snapshot, ex *exchange) {
	defer res.Body.Close()
	dst := w.Header()
	if !ex.inPlace {
		for k, vv := range res.Header {
			if k == "Set-Cookie" && len(dst[k]) > 0 {
				dst[k] = append(vv[:len(vv):len(vv)], dst[k]...)
				continue
			}
			dst[k] = vv
		}
	}
	appendVia(dst, snap.fwd.viaValue(res.ProtoMajor, res.ProtoMinor))
	if res.ContentLength < 0 {
		// A body of unknown length is a stream: it goes on chunked (to
		// HTTP/1.1 clients; the server decides the framing), as the backend
		// sent it, even when it ends within one read and could have been
		// given a Content-Length.
		dst["Transfer-Encoding"] = valueChunked
	}
	announced := len(res.Trailer)
	announceTrailers(w, res)
	ex.Status = res.StatusCode
	w.WriteHeader(res.StatusCode)

	n, err := streamBody(w, res.Body, shouldFlushEachRead(res))
	ex.BytesOut = n
	if err != nil {
		if errors.Is(err, errClientWrite) {
			return // the client went away; its context cancels the backend
		}
		// The backend failed mid-body. Aborting the connection (no final
		// chunk, short Content-Length) is the only way to tell the client
		// the response is incomplete.
		// The deferred access log line still runs.
		ex.Err = err
		ex.Aborted = true
		panic(http.ErrAbortHandler)
	}
	copyTrailers(w, res, announced)
}

// requestBody wraps the client's request body for the transport. It records
// whether any byte was read, which decides if a failed attempt may be
// retried, and ignores Close, so that a failed attempt does not close the
// body that a retry still needs.
//
// Each read may wait at most idle for the client (the snapshot's
// ClientBodyIdle): a client that stalls mid-body would otherwise hold a
// backend connection for as long as it likes.
type requestBody struct {
	rc     io.ReadCloser
	conn   *http.ResponseController // sets the client connection's read deadline
	idle   time.Duration            // 0: no bound
	used   atomic.Bool              // Read was called: the body may be partly consumed
	n      atomic.Int64             // bytes read
	failed atomic.Bool              // reading the client's body failed (malformed, cut, stalled)

	// The backend client's body writer may read on after the handler
	// returned, when the client connection serves (or waits for) the
	// next request: its deadline calls must not reach that one.
	mu    sync.Mutex
	ended bool // mu: the handler returned
}

// setReadDeadline bounds the client connection's reads, while the request
// is the connection's.
func (b *requestBody) setReadDeadline(t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ended {
		// Errors mean the writer cannot bound reads (tests' recorders).
		_ = b.conn.SetReadDeadline(t)
	}
}

// end marks the request over: no deadline call after it.
func (b *requestBody) end() {
	b.mu.Lock()
	b.ended = true
	b.mu.Unlock()
}

// clientError reports whether reading the client's body failed.
func (b *requestBody) clientError() bool { return b.failed.Load() }

// newRequestBody returns nil for requests without a body.
func newRequestBody(w http.ResponseWriter, r *http.Request, idle time.Duration) *requestBody {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	b := &requestBody{rc: r.Body, idle: idle}
	if idle > 0 {
		b.conn = http.NewResponseController(w)
	}
	return b
}

func (b *requestBody) Read(p []byte) (int, error) {
	b.used.Store(true)
	if b.conn != nil {
		b.setReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	switch {
	case err == io.EOF && b.conn != nil:
		// The body is over: the server's own deadlines take over (its
		// background read must not time out while the backend takes its
		// time to answer).
		b.setReadDeadline(time.Time{})
	case err != nil && err != io.EOF:
		// Malformed, cut or stalled. An expired deadline stays, so that
		// the server does not wait for the rest of this body either.
		b.failed.Store(true)
	}
	return n, err
}

func (b *requestBody) Close() error { return nil }
