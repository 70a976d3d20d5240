package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/proxy"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// Tracing with OpenTelemetry: a SERVER span per request and a CLIENT span
// per backend attempt, exported with OTLP (gRPC or HTTP/protobuf) through a
// batch span processor, with W3C trace context and baggage propagated from
// the client to the backends. docs/tracing.md is the user's guide.

// Environment variables read here; the OTel SDK reads the others
// (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE,
// OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME, ...) itself.
const (
	envSDKDisabled      = "OTEL_SDK_DISABLED"
	envTracesExporter   = "OTEL_TRACES_EXPORTER"
	envEndpoint         = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint   = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol         = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol   = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envTracesSampler    = "OTEL_TRACES_SAMPLER"
	envTracesSamplerArg = "OTEL_TRACES_SAMPLER_ARG"

	protocolGRPC = "grpc"
	protocolHTTP = "http/protobuf"

	// tracesPath is appended to a base endpoint for OTLP/HTTP, as the SDK
	// does with OTEL_EXPORTER_OTLP_ENDPOINT.
	tracesPath = "/v1/traces"

	// instrumentationName is the instrumentation scope of the spans.
	instrumentationName = "github.com/lbproject/load_balancer/internal/telemetry"
)

// Span attributes of the balancer's own, beside the semantic conventions'.
const (
	attrBackend    = attribute.Key("lb.backend")    // backend key, e.g. "http://10.0.0.1:9001"
	attrAttempt    = attribute.Key("lb.attempt")    // 1-based attempt number of a client span
	attrAttempts   = attribute.Key("lb.attempts")   // backends tried for the request
	attrStickyHit  = attribute.Key("lb.sticky_hit") // the sticky cookie chose the backend
	attrClientGone = attribute.Key("lb.client_closed")
)

// Tracer makes the proxy's spans. It implements proxy.Tracer. A nil *Tracer
// means tracing is off: leave proxy.Handler.Tracer nil then (assigning a nil
// *Tracer to the interface would make it non-nil).
type Tracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	// Span start options, made once: each WithSpanKind call allocates.
	serverOpts, clientOpts []trace.SpanStartOption
}

var _ proxy.Tracer = (*Tracer)(nil)

// NewTracer sets up tracing from cfg and the standard OTEL_* environment
// variables, which win over cfg as the OpenTelemetry specification says.
// Tracing is on when cfg.Endpoint, OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, or OTEL_TRACES_EXPORTER says
// "otlp"; OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true turn it off
// whatever else is set. When it is off, NewTracer returns a nil *Tracer and
// a shutdown that does nothing.
//
// version is the balancer's version, the service.version resource
// attribute. Nothing connects to the receiver here: a receiver that is down
// costs dropped spans and an error from the SDK's error handler, never a
// failed start. shutdown flushes the spans not yet exported and stops the
// exporter; call it once, with a deadline, after the proxy has stopped.
func NewTracer(ctx context.Context, cfg config.Tracing, version string) (t *Tracer, shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	on, err := tracingEnabled(cfg)
	if err != nil || !on {
		return nil, noop, err
	}
	opts := make([]sdktrace.TracerProviderOption, 0, 3)
	if s := os.Getenv(envTracesSampler); s != "" {
		// The SDK reads OTEL_TRACES_SAMPLER(_ARG) when no WithSampler is
		// given, but only logs a bad value and samples everything then.
		if err := checkSamplerEnv(s, os.Getenv(envTracesSamplerArg)); err != nil {
			return nil, noop, err
		}
	} else {
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.Ratio()))))
	}
	res, err := newResource(ctx, cfg, version)
	if err != nil {
		return nil, noop, err
	}
	exporter, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, noop, err
	}
	// WithBatcher starts the batch processor's goroutine (it reads
	// OTEL_BSP_*): nothing may fail after it.
	opts = append(opts, sdktrace.WithResource(res), sdktrace.WithBatcher(exporter))
	tp := sdktrace.NewTracerProvider(opts...)
	t = &Tracer{
		tracer: tp.Tracer(instrumentationName, trace.WithInstrumentationVersion(version)),
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),

		serverOpts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)},
		clientOpts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)},
	}
	return t, tp.Shutdown, nil
}

// LogTracingErrors sends the errors the OpenTelemetry SDK reports on its
// own (failed exports, for one) to log, at level warn. Without it they go
// to the standard library's default logger, stderr. It replaces the
// process-wide OpenTelemetry error handler: main calls it once, before
// NewTracer.
func LogTracingErrors(log *slog.Logger) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing error", "err", err)
	}))
}

// tracingEnabled decides whether tracing is on (see NewTracer).
func tracingEnabled(cfg config.Tracing) (bool, error) {
	if v := strings.TrimSpace(os.Getenv(envSDKDisabled)); v != "" {
		disabled, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("%s=%q: expected true or false", envSDKDisabled, v)
		}
		if disabled {
			return false, nil
		}
	}
	otlpAsked := false
	if v := strings.TrimSpace(os.Getenv(envTracesExporter)); v != "" {
		for e := range strings.SplitSeq(v, ",") {
			switch strings.ToLower(strings.TrimSpace(e)) {
			case "none":
				return false, nil
			case "otlp":
				otlpAsked = true
			default:
				return false, fmt.Errorf("%s=%q: only otlp and none are supported", envTracesExporter, v)
			}
		}
	}
	return otlpAsked || cfg.Endpoint != "" || os.Getenv(envEndpoint) != "" || os.Getenv(envTracesEndpoint) != "", nil
}

// exportProtocol returns the OTLP protocol: the environment's, else cfg's,
// else http/protobuf.
func exportProtocol(cfg config.Tracing) (string, error) {
	p, from := cfg.Protocol, "tracing.protocol"
	if v := os.Getenv(envTracesProtocol); v != "" {
		p, from = v, envTracesProtocol
	} else if v := os.Getenv(envProtocol); v != "" {
		p, from = v, envProtocol
	}
	switch strings.TrimSpace(p) {
	case "":
		return protocolHTTP, nil
	case protocolGRPC:
		return protocolGRPC, nil
	case protocolHTTP:
		return protocolHTTP, nil
	}
	return "", fmt.Errorf("%s %q is not supported (expected grpc or http/protobuf)", from, p)
}

// newExporter makes the OTLP exporter. The SDK reads the
// OTEL_EXPORTER_OTLP_* variables itself, and its options win over them, so
// cfg's endpoint is passed only when no endpoint variable is set.
func newExporter(ctx context.Context, cfg config.Tracing) (sdktrace.SpanExporter, error) {
	protocol, err := exportProtocol(cfg)
	if err != nil {
		return nil, err
	}
	endpoint := ""
	if os.Getenv(envEndpoint) == "" && os.Getenv(envTracesEndpoint) == "" && cfg.Endpoint != "" {
		endpoint = cfg.Endpoint
	}
	if protocol == protocolGRPC {
		var opts []otlptracegrpc.Option
		if endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	var opts []otlptracehttp.Option
	if endpoint != "" {
		// tracing.endpoint is a base URL like OTEL_EXPORTER_OTLP_ENDPOINT:
		// the signal's path is appended.
		u, err := url.Parse(endpoint)
		if err != nil {
			return nil, fmt.Errorf("tracing.endpoint %q: %w", endpoint, err)
		}
		u.Path = path.Join("/", u.Path, tracesPath)
		opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
	}
	return otlptracehttp.New(ctx, opts...)
}

// newResource describes the process: service.name (OTEL_SERVICE_NAME, or
// service.name in OTEL_RESOURCE_ATTRIBUTES, else cfg's, else
// "load_balancer"), service.version, the host name and the SDK.
func newResource(ctx context.Context, cfg config.Tracing, version string) (*resource.Resource, error) {
	name := cfg.ServiceName
	if name == "" {
		name = config.DefaultServiceName
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if version != "" {
		attrs = append(attrs, semconv.ServiceVersion(version))
	}
	// Later detectors win: the environment over the file.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(attrs...),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME): %w", err)
	}
	return res, nil
}

// checkSamplerEnv rejects the OTEL_TRACES_SAMPLER values the SDK would
// ignore with only a log line.
func checkSamplerEnv(sampler, arg string) error {
	switch s := strings.ToLower(strings.TrimSpace(sampler)); s {
	case "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
		return nil
	case "traceidratio", "parentbased_traceidratio":
		if arg = strings.TrimSpace(arg); arg == "" {
			return nil
		}
		if r, err := strconv.ParseFloat(arg, 64); err != nil || !(r >= 0 && r <= 1) {
			return fmt.Errorf("%s=%q: expected a ratio in 0..1", envTracesSamplerArg, arg)
		}
		return nil
	}
	return fmt.Errorf("%s=%q is not supported (expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio)", envTracesSampler, sampler)
}

// serverSpan is the SDK's server span of a request together with the
// request. It stands for the SDK span in the request's context, so that
// StartAttempt finds the method and path there.
type serverSpan struct {
	trace.Span
	name string        // span name: the method, or "HTTP" for unknown methods
	r    *http.Request // the client's request, read when the span ends
}

// requestSpan is the proxy's handle on a serverSpan. One pointer wide, it
// becomes a proxy.RequestSpan without an allocation.
type requestSpan struct{ s *serverSpan }

// attemptSpan is the client span of one attempt with what its attributes
// are made of when it ends.
type attemptSpan struct {
	span trace.Span
	b    *upstream.Backend
	n    int
	name string
	path string
}

// Attributes are set once, when a span ends: the SDK copies them into a
// slice it grows on every SetAttributes call. They are gathered in a pooled
// buffer, which the SDK does not keep.
const maxAttrs = 16

var attrBuffers = sync.Pool{New: func() any { return new([maxAttrs]attribute.KeyValue) }}

func setAttributes(span trace.Span, fill func([]attribute.KeyValue) []attribute.KeyValue) {
	buf := attrBuffers.Get().(*[maxAttrs]attribute.KeyValue)
	attrs := fill(buf[:0])
	span.SetAttributes(attrs...)
	clear(attrs) // no strings kept alive by the pool
	attrBuffers.Put(buf)
}

// StartRequest continues the trace context of the client's traceparent,
// tracestate and baggage headers, if any, and starts the request's SERVER
// span named after the method (the semantic conventions' "{method}": there
// is no route template, and the raw path is not a low-cardinality name).
// Attributes are set when the span ends (no sampler here looks at them).
func (t *Tracer) StartRequest(r *http.Request) (*http.Request, proxy.RequestSpan) {
	ctx := t.prop.Extract(r.Context(), headerCarrier(r.Header))
	name, _, _ := methodName(r.Method)
	_, span := t.tracer.Start(ctx, name, t.serverOpts...)
	s := &serverSpan{Span: span, name: name, r: r}
	return r.WithContext(trace.ContextWithSpan(ctx, s)), requestSpan{s}
}

// TraceID returns the trace id in hex, also for a trace that is not
// sampled (the id is still propagated), or "" if there is none.
func (rs requestSpan) TraceID() string {
	if id := rs.s.SpanContext().TraceID(); id.IsValid() {
		return id.String()
	}
	return ""
}

// End records the request and its outcome and ends the server span.
func (rs requestSpan) End(sum *proxy.Summary) {
	span := rs.s.Span
	if span.IsRecording() {
		setAttributes(span, func(attrs []attribute.KeyValue) []attribute.KeyValue {
			return serverAttributes(attrs, rs.s.r, sum)
		})
		switch {
		case sum.Aborted:
			// The backend failed mid-body: the client got a cut response.
			span.SetStatus(codes.Error, "response aborted")
		case sum.Status >= 500:
			// Server spans: only 5xx are errors; 4xx are the client's.
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// serverAttributes appends the server span's attributes to attrs: at most
// 15, within maxAttrs.
func serverAttributes(attrs []attribute.KeyValue, r *http.Request, sum *proxy.Summary) []attribute.KeyValue {
	_, method, known := methodName(r.Method)
	host, port := splitHostPort(r.Host)
	client, _ := splitHostPort(r.RemoteAddr)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs = append(attrs,
		method,
		semconv.URLPath(r.URL.Path),
		semconv.URLScheme(scheme),
		semconv.ServerAddress(host),
		semconv.NetworkProtocolVersion(protocolVersion(r)),
		semconv.ClientAddress(client),
		attrAttempts.Int(sum.Attempts),
		attrStickyHit.Bool(sum.StickyHit),
	)
	if !known {
		attrs = append(attrs, semconv.HTTPRequestMethodOriginal(r.Method))
	}
	if port > 0 {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(ua))
	}
	if sum.Backend != nil {
		attrs = append(attrs, attrBackend.String(sum.Backend.String()))
	}
	switch {
	case sum.Status == 499: // logged as nginx does, never sent
		attrs = append(attrs, attrClientGone.Bool(true))
	case sum.Status > 0:
		attrs = append(attrs, semconv.HTTPResponseStatusCode(sum.Status), semconv.HTTPResponseBodySize(int(sum.BytesOut)))
		if sum.Status >= 500 {
			attrs = append(attrs, semconv.ErrorTypeKey.String(statusText(sum.Status)))
		}
	}
	if sum.BytesIn > 0 {
		attrs = append(attrs, semconv.HTTPRequestBodySize(int(sum.BytesIn)))
	}
	return attrs
}

// StartAttempt starts the CLIENT span of attempt n on b, a child of the
// request's server span, and writes its traceparent (and the tracestate and
// baggage of the trace) into header, the request to the backend.
func (t *Tracer) StartAttempt(ctx context.Context, b *upstream.Backend, n int, header http.Header) (context.Context, proxy.AttemptSpan) {
	a := &attemptSpan{b: b, n: n, name: "HTTP"}
	if s, ok := trace.SpanFromContext(ctx).(*serverSpan); ok {
		a.name, a.path = s.name, s.r.URL.Path
	}
	ctx, a.span = t.tracer.Start(ctx, a.name, t.clientOpts...)
	// The client's tracestate belongs to the client's traceparent: it goes
	// on only if that was continued (Inject then writes it back).
	delete(header, "Tracestate")
	t.prop.Inject(ctx, headerCarrier(header))
	return ctx, a
}

// End records the attempt and the backend's answer, or the error instead of
// one, and ends the span. The span covers the request until the response
// header.
func (a *attemptSpan) End(res *http.Response, err error) {
	span := a.span
	if span.IsRecording() {
		setAttributes(span, func(attrs []attribute.KeyValue) []attribute.KeyValue {
			return a.attributes(attrs, res, err)
		})
		switch {
		case err != nil:
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		case res != nil && res.StatusCode >= 400:
			// Client spans: 4xx and 5xx are errors.
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// attributes appends the client span's attributes to attrs: at most 9.
func (a *attemptSpan) attributes(attrs []attribute.KeyValue, res *http.Response, err error) []attribute.KeyValue {
	addr := a.b.Address()
	method := semconv.HTTPRequestMethodKey.String(a.name)
	if a.name == "HTTP" {
		method = semconv.HTTPRequestMethodOther
	}
	attrs = append(attrs,
		method,
		semconv.ServerAddress(addr.Host),
		semconv.ServerPort(addr.Port),
		semconv.URLFull(a.b.String()+a.path), // without the query, which may hold secrets
		attrBackend.String(a.b.String()),
		attrAttempt.Int(a.n),
	)
	if a.n > 1 {
		attrs = append(attrs, semconv.HTTPRequestResendCount(a.n-1))
	}
	switch {
	case err != nil:
		attrs = append(attrs, semconv.ErrorTypeKey.String(errorType(err)))
	case res != nil:
		attrs = append(attrs, semconv.HTTPResponseStatusCode(res.StatusCode))
		if res.StatusCode >= 400 {
			attrs = append(attrs, semconv.ErrorTypeKey.String(statusText(res.StatusCode)))
		}
	}
	return attrs
}

// headerCarrier is propagation.HeaderCarrier with the propagators' keys
// canonicalized without allocating.
type headerCarrier http.Header

func canonicalKey(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return http.CanonicalHeaderKey(key)
}

func (c headerCarrier) Get(key string) string {
	if vs := c[canonicalKey(key)]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { c[canonicalKey(key)] = []string{value} }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// methodName returns the span name and the http.request.method attribute of
// a method; known is false for methods outside RFC 9110 and PATCH, which
// are named "HTTP" with the method "_OTHER" (so that a client cannot make
// up span names).
func methodName(m string) (name string, attr attribute.KeyValue, known bool) {
	switch m {
	case http.MethodGet:
		return m, semconv.HTTPRequestMethodGet, true
	case http.MethodHead:
		return m, semconv.HTTPRequestMethodHead, true
	case http.MethodPost:
		return m, semconv.HTTPRequestMethodPost, true
	case http.MethodPut:
		return m, semconv.HTTPRequestMethodPut, true
	case http.MethodDelete:
		return m, semconv.HTTPRequestMethodDelete, true
	case http.MethodConnect:
		return m, semconv.HTTPRequestMethodConnect, true
	case http.MethodOptions:
		return m, semconv.HTTPRequestMethodOptions, true
	case http.MethodTrace:
		return m, semconv.HTTPRequestMethodTrace, true
	case http.MethodPatch:
		return m, semconv.HTTPRequestMethodPatch, true
	}
	return "HTTP", semconv.HTTPRequestMethodOther, false
}

// protocolVersion is network.protocol.version: "1.1", "2", ...
func protocolVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		return "1.1"
	case r.ProtoMajor == 2:
		return "2"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "1.0"
	case r.ProtoMajor == 3:
		return "3"
	}
	return strings.TrimPrefix(r.Proto, "HTTP/")
}

// splitHostPort splits "host:port", "[v6]:port", "host" or "[v6]"; port is
// 0 when absent or invalid.
func splitHostPort(hp string) (host string, port int) {
	if h, p, err := net.SplitHostPort(hp); err == nil {
		port, _ = strconv.Atoi(p)
		return h, port
	}
	return strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]"), 0
}

// statusText is error.type for an error status: the code as a string.
func statusText(code int) string {
	switch code {
	case 500:
		return "500"
	case 502:
		return "502"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	return strconv.Itoa(code)
}

// errorType is error.type for a failed attempt: a few well-known causes by
// name, else the error's type as the semantic conventions say.
func errorType(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection_reset"
	}
	return semconv.ErrorType(err).Value.AsString()
}
