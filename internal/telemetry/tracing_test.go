package telemetry_test

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/proxy"
	"github.com/lbproject/load_balancer/internal/telemetry"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// otelEnv are the variables that configure tracing; every test starts with
// none of them set, whatever the environment running the tests has.
var otelEnv = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
	"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
	"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
}

func clearOTelEnv(t testing.TB) {
	for _, k := range otelEnv {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
}

// traceTest prepares a tracing test: a clean OTEL_* environment and a
// goroutine leak check that runs after every other cleanup.
func traceTest(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	clearOTelEnv(t)
}

func ratio(r float64) *float64 { return &r }

// newTracer calls NewTracer and makes the test shut it down at the end if
// it did not.
func newTracer(t testing.TB, cfg config.Tracing) (*telemetry.Tracer, func()) {
	t.Helper()
	tr, shutdown, err := telemetry.NewTracer(context.Background(), cfg, "1.2.3-test")
	if err != nil {
		t.Fatalf("NewTracer: %v", err)
	}
	if tr == nil {
		t.Fatal("NewTracer returned no tracer: tracing off")
	}
	done := false
	flush := func() {
		t.Helper()
		if done {
			return
		}
		done = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("tracer shutdown: %v", err)
		}
	}
	t.Cleanup(flush)
	return tr, flush
}

// traceIDs records the trace id of each request as the access log gets it.
type traceIDs chan string

func (traceIDs) RequestStarted() {}
func (c traceIDs) RequestFinished(_ *http.Request, s *proxy.Summary) {
	select {
	case c <- s.TraceID:
	default:
	}
}

// newTracedHandler returns a proxy handler balancing round-robin (the first
// request goes to the first URL) over backends with retries, traced by tr
// (nil: tracing off).
func newTracedHandler(t testing.TB, tr *telemetry.Tracer, urls ...string) (*proxy.Handler, []*upstream.Backend) {
	t.Helper()
	h, backends, _ := telemetry.NewTestProxy(t, urls...)
	if tr != nil {
		h.Tracer = tr
	}
	return h, backends
}

// tracedProxy serves newTracedHandler on loopback; ids gets the trace id of
// every request.
type tracedProxy struct {
	*httptest.Server
	client *http.Client
	ids    traceIDs
}

func newTracedProxy(t testing.TB, tr *telemetry.Tracer, urls ...string) *tracedProxy {
	t.Helper()
	h, _ := newTracedHandler(t, tr, urls...)
	ids := make(traceIDs, 16)
	h.Metrics = ids
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	return &tracedProxy{Server: srv, client: client, ids: ids}
}

// get sends a GET through the proxy with the given headers and returns the
// status, body and the trace id the proxy logged.
func (p *tracedProxy) get(t testing.TB, method, path string, header http.Header) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, p.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vv := range header {
		req.Header[k] = vv
	}
	res, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-p.ids:
		return res.StatusCode, string(body), id
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not finish the request")
	}
	return 0, "", ""
}

// headerBackend is a backend that answers 200 "hello" (status 500 on
// /fail, 404 on /missing) and hands the trace headers of each request to
// the test.
type headerBackend struct {
	*httptest.Server
	headers chan http.Header
}

const backendBody = "hello"

func newHeaderBackend(t testing.TB) *headerBackend {
	t.Helper()
	b := &headerBackend{headers: make(chan http.Header, 16)}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.headers <- http.Header{
			"Traceparent": r.Header.Values("Traceparent"),
			"Tracestate":  r.Header.Values("Tracestate"),
			"Baggage":     r.Header.Values("Baggage"),
		}
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		}
		io.WriteString(w, backendBody)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *headerBackend) received(t testing.TB) http.Header {
	t.Helper()
	select {
	case h := <-b.headers:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("the backend got no request")
	}
	return nil
}

// refusedURL returns the URL of a port nothing listens on any more.
func refusedURL(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + lis.Addr().String()
	lis.Close()
	return u
}

func portOf(t testing.TB, rawURL string) int64 {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(rawURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return int64(p)
}

// byKind splits the spans of one request: the server span and the client
// spans in attempt order.
func byKind(t testing.TB, spans []otlpSpan) (server otlpSpan, clients []otlpSpan) {
	t.Helper()
	found := false
	for _, s := range spans {
		switch s.Kind {
		case tracepb.Span_SPAN_KIND_SERVER:
			if found {
				t.Fatalf("two server spans in %v", names(spans))
			}
			server, found = s, true
		case tracepb.Span_SPAN_KIND_CLIENT:
			if _, ok := s.Attrs["lb.attempt"].(int64); !ok {
				t.Fatalf("client span without an lb.attempt number: %v", s.Attrs)
			}
			clients = append(clients, s)
		default:
			t.Fatalf("span %q has kind %v", s.Name, s.Kind)
		}
	}
	if !found {
		t.Fatalf("no server span in %v", names(spans))
	}
	slices.SortFunc(clients, func(a, b otlpSpan) int {
		return int(a.Attrs["lb.attempt"].(int64) - b.Attrs["lb.attempt"].(int64))
	})
	return server, clients
}

// byTrace groups spans by trace id.
func byTrace(spans []otlpSpan) map[string][]otlpSpan {
	m := make(map[string][]otlpSpan)
	for _, s := range spans {
		m[s.traceID()] = append(m[s.traceID()], s)
	}
	return m
}

func names(spans []otlpSpan) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name+"/"+s.Kind.String())
	}
	return n
}

// wantAttrs checks that s has these attributes with these values; a nil
// value means the attribute must be absent.
func wantAttrs(t testing.TB, s otlpSpan, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, ok := s.Attrs[k]
		switch {
		case v == nil && ok:
			t.Errorf("%s span %q: attribute %s = %v, want none", s.Kind, s.Name, k, got)
		case v != nil && !ok:
			t.Errorf("%s span %q: no attribute %s, want %v (has %v)", s.Kind, s.Name, k, v, s.Attrs)
		case v != nil && got != v:
			t.Errorf("%s span %q: attribute %s = %#v, want %#v", s.Kind, s.Name, k, got, v)
		}
	}
}

func wantStatus(t testing.TB, s otlpSpan, want tracepb.Status_StatusCode) {
	t.Helper()
	if got := s.GetStatus().GetCode(); got != want {
		t.Errorf("%s span %q: status %v, want %v", s.Kind, s.Name, got, want)
	}
}

func wantChild(t testing.TB, child, parent otlpSpan) {
	t.Helper()
	if child.traceID() != parent.traceID() {
		t.Errorf("span %q trace %s, want its parent's %s", child.Name, child.traceID(), parent.traceID())
	}
	if child.parentID() != parent.spanID() {
		t.Errorf("span %q parent %s, want %s (span %q)", child.Name, child.parentID(), parent.spanID(), parent.Name)
	}
	if child.StartTimeUnixNano < parent.StartTimeUnixNano || child.EndTimeUnixNano > parent.EndTimeUnixNano {
		t.Errorf("span %q [%d, %d] is not within its parent's [%d, %d]", child.Name,
			child.StartTimeUnixNano, child.EndTimeUnixNano, parent.StartTimeUnixNano, parent.EndTimeUnixNano)
	}
}

const (
	clientTraceID = "0af7651916cd43dd8448eb211c80319c"
	clientSpanID  = "b7ad6b7169203331"
)

// TestTracingSpansOverHTTP: configured by the file (OTLP/HTTP), a request
// that carries a client's trace context makes a server span continuing it
// and a client span whose context reaches the backend.
func TestTracingSpansOverHTTP(t *testing.T) {
	traceTest(t)
	rc := newHTTPReceiver(t, false)
	tr, flush := newTracer(t, config.Tracing{Endpoint: rc.URL, Protocol: "http/protobuf", ServiceName: "lb-from-file", SampleRatio: ratio(1)})
	backend := newHeaderBackend(t)
	lb := newTracedProxy(t, tr, backend.URL)

	status, body, logged := lb.get(t, "GET", "/hello/world?token=secret", http.Header{
		"Traceparent": {"00-" + clientTraceID + "-" + clientSpanID + "-01"},
		"Tracestate":  {"vendor=opaque"},
		"Baggage":     {"user=alice"},
		"User-Agent":  {"trace-test/1"},
	})
	if status != 200 || body != backendBody {
		t.Fatalf("status %d body %q, want 200 %q", status, body, backendBody)
	}
	got := backend.received(t)

	flush() // the batch processor holds the spans until shutdown
	server, clients := byKind(t, rc.wait(t, 2))
	rc.empty(t)
	if len(clients) != 1 {
		t.Fatalf("%d client spans, want 1", len(clients))
	}
	client := clients[0]

	// The client's trace is continued, and the log line names it.
	if server.traceID() != clientTraceID || server.parentID() != clientSpanID {
		t.Errorf("server span trace %s parent %s, want the client's %s %s", server.traceID(), server.parentID(), clientTraceID, clientSpanID)
	}
	if logged != clientTraceID {
		t.Errorf("the access log's trace id is %q, want %q", logged, clientTraceID)
	}
	if server.TraceState != "vendor=opaque" {
		t.Errorf("server span trace state %q, want vendor=opaque", server.TraceState)
	}
	wantChild(t, client, server)

	// The backend sees the client span as its parent.
	if want := "00-" + clientTraceID + "-" + client.spanID() + "-01"; got.Get("Traceparent") != want {
		t.Errorf("backend got traceparent %q, want %q", got["Traceparent"], want)
	}
	if len(got["Traceparent"]) != 1 {
		t.Errorf("backend got %d traceparent fields, want 1", len(got["Traceparent"]))
	}
	if got.Get("Tracestate") != "vendor=opaque" || got.Get("Baggage") != "user=alice" {
		t.Errorf("backend got tracestate %q baggage %q, want vendor=opaque and user=alice", got["Tracestate"], got["Baggage"])
	}

	if server.Name != "GET" || client.Name != "GET" {
		t.Errorf("span names %q and %q, want GET (the method, never the path)", server.Name, client.Name)
	}
	wantAttrs(t, server, map[string]any{
		"http.request.method":       "GET",
		"url.path":                  "/hello/world",
		"url.scheme":                "http",
		"url.query":                 nil,
		"server.address":            "127.0.0.1",
		"server.port":               portOf(t, lb.URL),
		"network.protocol.version":  "1.1",
		"client.address":            "127.0.0.1",
		"user_agent.original":       "trace-test/1",
		"http.response.status_code": int64(200),
		"http.response.body.size":   int64(len(backendBody)),
		"lb.attempts":               int64(1),
		"lb.backend":                backend.URL,
		"lb.sticky_hit":             false,
		"error.type":                nil,
	})
	wantStatus(t, server, tracepb.Status_STATUS_CODE_UNSET)
	wantAttrs(t, client, map[string]any{
		"http.request.method":       "GET",
		"server.address":            "127.0.0.1",
		"server.port":               portOf(t, backend.URL),
		"url.full":                  backend.URL + "/hello/world",
		"lb.backend":                backend.URL,
		"lb.attempt":                int64(1),
		"http.request.resend_count": nil,
		"http.response.status_code": int64(200),
		"error.type":                nil,
	})
	wantStatus(t, client, tracepb.Status_STATUS_CODE_UNSET)
	for _, s := range []otlpSpan{server, client} {
		for k, v := range s.Attrs {
			if str, ok := v.(string); ok && strings.Contains(str, "secret") {
				t.Errorf("%s span attribute %s = %q leaks the query", s.Kind, k, str)
			}
		}
		wantAttrs(t, otlpSpan{Span: s.Span, Attrs: s.Resource}, map[string]any{
			"service.name":           "lb-from-file",
			"service.version":        "1.2.3-test",
			"telemetry.sdk.language": "go",
		})
	}
}

// TestTracingRetryAndErrors: a new trace per request without a client
// context; a refused first backend gives two client spans, the first an
// error; backend error statuses mark the spans as the conventions say.
func TestTracingRetryAndErrors(t *testing.T) {
	traceTest(t)
	rc := newHTTPReceiver(t, false)
	tr, flush := newTracer(t, config.Tracing{Endpoint: rc.URL})
	backend := newHeaderBackend(t)
	refused := refusedURL(t)
	// Round-robin: the first request tries the refused backend first.
	lb := newTracedProxy(t, tr, refused, backend.URL)

	status, _, retriedID := lb.get(t, "GET", "/retried", nil)
	if status != 200 {
		t.Fatalf("status %d, want 200 after a retry", status)
	}
	retriedHeader := backend.received(t)
	// The error statuses through a proxy that has only the good backend.
	lb = newTracedProxy(t, tr, backend.URL)
	status, _, failID := lb.get(t, "GET", "/fail", nil)
	if status != 500 {
		t.Fatalf("status %d, want the backend's 500", status)
	}
	backend.received(t)
	status, _, missingID := lb.get(t, "GET", "/missing", nil)
	if status != 404 {
		t.Fatalf("status %d, want the backend's 404", status)
	}
	backend.received(t)

	flush()
	traces := byTrace(rc.wait(t, 7))
	rc.empty(t)

	// The retried request.
	server, clients := byKind(t, traces[retriedID])
	if len(clients) != 2 {
		t.Fatalf("retried request: spans %v, want a server span and 2 client spans", names(traces[retriedID]))
	}
	if server.ParentSpanId != nil {
		t.Errorf("server span without a client context has parent %s", server.parentID())
	}
	wantAttrs(t, server, map[string]any{
		"http.response.status_code": int64(200),
		"lb.attempts":               int64(2),
		"lb.backend":                backend.URL,
	})
	wantStatus(t, server, tracepb.Status_STATUS_CODE_UNSET)
	first, second := clients[0], clients[1]
	wantChild(t, first, server)
	wantChild(t, second, server)
	if first.EndTimeUnixNano > second.StartTimeUnixNano {
		t.Errorf("the second attempt started before the first ended")
	}
	wantAttrs(t, first, map[string]any{
		"lb.attempt":                int64(1),
		"lb.backend":                refused,
		"server.port":               portOf(t, refused),
		"http.request.resend_count": nil,
		"http.response.status_code": nil,
		"error.type":                "connection_refused",
	})
	wantStatus(t, first, tracepb.Status_STATUS_CODE_ERROR)
	if len(first.Events) != 1 || first.Events[0].Name != "exception" {
		t.Errorf("failed attempt events %v, want one exception", first.Events)
	} else if msg := attrMap(first.Events[0].Attributes)["exception.message"]; !strings.Contains(msg.(string), "refused") {
		t.Errorf("exception.message %q, want the connection error", msg)
	}
	wantAttrs(t, second, map[string]any{
		"lb.attempt":                int64(2),
		"lb.backend":                backend.URL,
		"http.request.resend_count": int64(1),
		"http.response.status_code": int64(200),
		"error.type":                nil,
	})
	wantStatus(t, second, tracepb.Status_STATUS_CODE_UNSET)
	if want := "00-" + retriedID + "-" + second.spanID() + "-01"; retriedHeader.Get("Traceparent") != want {
		t.Errorf("backend got traceparent %q, want the second attempt's %q", retriedHeader.Get("Traceparent"), want)
	}

	// A 500 from the backend: an error on both spans.
	server, clients = byKind(t, traces[failID])
	if len(clients) != 1 {
		t.Fatalf("failed request: spans %v, want a server and a client span", names(traces[failID]))
	}
	wantAttrs(t, server, map[string]any{"http.response.status_code": int64(500), "error.type": "500"})
	wantStatus(t, server, tracepb.Status_STATUS_CODE_ERROR)
	wantAttrs(t, clients[0], map[string]any{"http.response.status_code": int64(500), "error.type": "500"})
	wantStatus(t, clients[0], tracepb.Status_STATUS_CODE_ERROR)

	// A 404: the client span's error, not the server's.
	server, clients = byKind(t, traces[missingID])
	if len(clients) != 1 {
		t.Fatalf("404 request: spans %v, want a server and a client span", names(traces[missingID]))
	}
	wantAttrs(t, server, map[string]any{"http.response.status_code": int64(404), "error.type": nil})
	wantStatus(t, server, tracepb.Status_STATUS_CODE_UNSET)
	wantAttrs(t, clients[0], map[string]any{"http.response.status_code": int64(404), "error.type": "404"})
	wantStatus(t, clients[0], tracepb.Status_STATUS_CODE_ERROR)
}

// TestTracingUnknownMethod: a made-up method does not make a span name.
func TestTracingUnknownMethod(t *testing.T) {
	traceTest(t)
	rc := newHTTPReceiver(t, false)
	tr, flush := newTracer(t, config.Tracing{Endpoint: rc.URL})
	backend := newHeaderBackend(t)
	lb := newTracedProxy(t, tr, backend.URL)
	if status, _, _ := lb.get(t, "PURGE", "/x", nil); status != 200 {
		t.Fatalf("status %d, want 200", status)
	}
	backend.received(t)
	flush()
	server, clients := byKind(t, rc.wait(t, 2))
	if server.Name != "HTTP" || clients[0].Name != "HTTP" {
		t.Errorf("span names %q %q, want HTTP", server.Name, clients[0].Name)
	}
	wantAttrs(t, server, map[string]any{"http.request.method": "_OTHER", "http.request.method_original": "PURGE"})
	wantAttrs(t, clients[0], map[string]any{"http.request.method": "_OTHER"})
}

// TestTracingGRPCFromEnv: the OTEL_* variables win over the file: endpoint,
// protocol (OTLP/gRPC here) and service name.
func TestTracingGRPCFromEnv(t *testing.T) {
	traceTest(t)
	rc := newGRPCReceiver(t)
	fileRC := newHTTPReceiver(t, false) // named by the file: must get nothing
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_SERVICE_NAME", "lb-from-env")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,service.name=overridden")
	tr, flush := newTracer(t, config.Tracing{Endpoint: fileRC.URL, Protocol: "http/protobuf", ServiceName: "lb-from-file", SampleRatio: ratio(1)})
	backend := newHeaderBackend(t)
	lb := newTracedProxy(t, tr, backend.URL)

	status, _, id := lb.get(t, "GET", "/", nil)
	if status != 200 {
		t.Fatalf("status %d, want 200", status)
	}
	got := backend.received(t)
	flush()
	server, clients := byKind(t, rc.wait(t, 2))
	rc.empty(t)
	fileRC.empty(t)
	if server.traceID() != id || !strings.HasPrefix(got.Get("Traceparent"), "00-"+id+"-"+clients[0].spanID()) {
		t.Errorf("trace %s, logged %s, backend got %q", server.traceID(), id, got.Get("Traceparent"))
	}
	wantChild(t, clients[0], server)
	wantAttrs(t, otlpSpan{Span: server.Span, Attrs: server.Resource}, map[string]any{
		"service.name":                "lb-from-env",
		"service.version":             "1.2.3-test",
		"deployment.environment.name": "test",
	})
}

// TestTracingTracesEndpointEnv: the signal-specific endpoint variable is
// used as it is (no path appended) and turns tracing on by itself.
func TestTracingTracesEndpointEnv(t *testing.T) {
	traceTest(t)
	rc := newHTTPReceiver(t, false)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", rc.URL+"/v1/traces")
	tr, flush := newTracer(t, config.Tracing{})
	backend := newHeaderBackend(t)
	lb := newTracedProxy(t, tr, backend.URL)
	// An invalid traceparent starts a new trace, without the tracestate
	// that came with it.
	status, _, id := lb.get(t, "GET", "/", http.Header{"Traceparent": {"00-garbage"}, "Tracestate": {"stale=1"}})
	if status != 200 {
		t.Fatalf("status %d, want 200", status)
	}
	got := backend.received(t)
	if !strings.HasPrefix(got.Get("Traceparent"), "00-"+id+"-") || len(got["Tracestate"]) != 0 {
		t.Errorf("backend got traceparent %q tracestate %q, want a new trace %s without tracestate", got["Traceparent"], got["Tracestate"], id)
	}
	flush()
	server, _ := byKind(t, rc.wait(t, 2))
	if server.ParentSpanId != nil {
		t.Errorf("an invalid traceparent was continued: parent %s", server.parentID())
	}
	wantAttrs(t, otlpSpan{Span: server.Span, Attrs: server.Resource}, map[string]any{"service.name": "load_balancer"})
}

// TestTracingSampling: tracing.sample_ratio samples new traces, a client's
// sampling decision is followed, and OTEL_TRACES_SAMPLER wins over the file.
// Unsampled requests still propagate a trace context and log its id.
func TestTracingSampling(t *testing.T) {
	t.Run("ratio 0 follows the parent", func(t *testing.T) {
		traceTest(t)
		rc := newHTTPReceiver(t, false)
		tr, flush := newTracer(t, config.Tracing{Endpoint: rc.URL, SampleRatio: ratio(0)})
		backend := newHeaderBackend(t)
		lb := newTracedProxy(t, tr, backend.URL)

		_, _, id := lb.get(t, "GET", "/new", nil)
		got := backend.received(t).Get("Traceparent")
		if len(id) != 32 || !strings.HasPrefix(got, "00-"+id+"-") || !strings.HasSuffix(got, "-00") {
			t.Errorf("unsampled request: logged trace id %q, backend got traceparent %q; want the same id, flags 00", id, got)
		}
		lb.get(t, "GET", "/unsampled-parent", http.Header{"Traceparent": {"00-" + clientTraceID + "-" + clientSpanID + "-00"}})
		if got := backend.received(t).Get("Traceparent"); !strings.HasPrefix(got, "00-"+clientTraceID+"-") || !strings.HasSuffix(got, "-00") {
			t.Errorf("unsampled parent: backend got traceparent %q", got)
		}
		lb.get(t, "GET", "/sampled-parent", http.Header{"Traceparent": {"00-" + clientTraceID + "-" + clientSpanID + "-01"}})
		backend.received(t)
		flush()
		spans := rc.wait(t, 2)
		rc.empty(t)
		server, _ := byKind(t, spans)
		wantAttrs(t, server, map[string]any{"url.path": "/sampled-parent"})
	})
	t.Run("OTEL_TRACES_SAMPLER wins", func(t *testing.T) {
		traceTest(t)
		rc := newHTTPReceiver(t, false)
		t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
		tr, flush := newTracer(t, config.Tracing{Endpoint: rc.URL, SampleRatio: ratio(1)})
		backend := newHeaderBackend(t)
		lb := newTracedProxy(t, tr, backend.URL)
		lb.get(t, "GET", "/", http.Header{"Traceparent": {"00-" + clientTraceID + "-" + clientSpanID + "-01"}})
		if got := backend.received(t).Get("Traceparent"); !strings.HasPrefix(got, "00-"+clientTraceID+"-") || !strings.HasSuffix(got, "-00") {
			t.Errorf("backend got traceparent %q, want the client's trace, unsampled", got)
		}
		flush()
		rc.empty(t)
	})
	t.Run("OTEL_TRACES_SAMPLER_ARG", func(t *testing.T) {
		traceTest(t)
		rc := newHTTPReceiver(t, false)
		t.Setenv("OTEL_TRACES_SAMPLER", "traceidratio")
		t.Setenv("OTEL_TRACES_SAMPLER_ARG", "1")
		tr, flush := newTracer(t, config.Tracing{Endpoint: rc.URL, SampleRatio: ratio(0)})
		backend := newHeaderBackend(t)
		lb := newTracedProxy(t, tr, backend.URL)
		lb.get(t, "GET", "/", nil)
		backend.received(t)
		flush()
		rc.wait(t, 2)
		rc.empty(t)
	})
}

// TestTracingOff: without an endpoint, or when the environment says so,
// NewTracer returns no tracer and a shutdown that does nothing.
func TestTracingOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		cfg  config.Tracing
	}{
		{name: "nothing configured", cfg: config.Tracing{Protocol: "grpc", ServiceName: "x", SampleRatio: ratio(1)}},
		{name: "OTEL_SDK_DISABLED", env: map[string]string{"OTEL_SDK_DISABLED": "true"}, cfg: config.Tracing{Endpoint: "http://127.0.0.1:4318"}},
		{name: "OTEL_TRACES_EXPORTER none", env: map[string]string{
			"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
		}},
		{name: "only a service name", env: map[string]string{"OTEL_SERVICE_NAME": "lb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			traceTest(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tr, shutdown, err := telemetry.NewTracer(context.Background(), tc.cfg, "v")
			if err != nil || tr != nil || shutdown == nil {
				t.Fatalf("NewTracer = %v, shutdown %v, %v; want nil, a shutdown, no error", tr, shutdown != nil, err)
			}
			if err := shutdown(context.Background()); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
		})
	}
}

// TestTracingOnWithoutEndpoint: OTEL_TRACES_EXPORTER=otlp asks for tracing
// to the default endpoint; creating the exporter connects to nothing.
func TestTracingOnWithoutEndpoint(t *testing.T) {
	traceTest(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	newTracer(t, config.Tracing{})
}

// TestTracingBadConfig: settings the SDK would ignore with a log line are
// errors.
func TestTracingBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		env        map[string]string
		cfg        config.Tracing
	}{
		{name: "http/json", want: "OTEL_EXPORTER_OTLP_PROTOCOL", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, cfg: config.Tracing{Endpoint: "http://127.0.0.1:4318"}},
		{name: "traces protocol", want: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "udp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, cfg: config.Tracing{Endpoint: "http://127.0.0.1:4318"}},
		{name: "sampler", want: "OTEL_TRACES_SAMPLER", env: map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, cfg: config.Tracing{Endpoint: "http://127.0.0.1:4318"}},
		{name: "sampler arg", want: "OTEL_TRACES_SAMPLER_ARG", env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, cfg: config.Tracing{Endpoint: "http://127.0.0.1:4318"}},
		{name: "exporter", want: "OTEL_TRACES_EXPORTER", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}},
		{name: "sdk disabled", want: "OTEL_SDK_DISABLED", env: map[string]string{"OTEL_SDK_DISABLED": "perhaps"}},
		{name: "resource attributes", want: "OTEL_RESOURCE_ATTRIBUTES", env: map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "no-equals-sign"}, cfg: config.Tracing{Endpoint: "http://127.0.0.1:4318"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			traceTest(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tr, shutdown, err := telemetry.NewTracer(context.Background(), tc.cfg, "v")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewTracer error %v, want one naming %s", err, tc.want)
			}
			if tr != nil || shutdown == nil {
				t.Fatalf("NewTracer failed but returned tracer %v, shutdown %v", tr, shutdown != nil)
			}
		})
	}
}

// TestTracingExportErrorsLogged: a receiver that rejects the spans is
// reported in the balancer's log once LogTracingErrors is set, and shutdown
// does not hang on it.
func TestTracingExportErrorsLogged(t *testing.T) {
	traceTest(t)
	rejecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Error(w, "no", http.StatusBadRequest) // not retryable
	}))
	t.Cleanup(rejecting.Close)
	logged := make(chan string, 16)
	telemetry.LogTracingErrors(slog.New(slog.NewTextHandler(chanWriter(logged), nil)))
	t.Cleanup(func() { // back to the SDK's default: the standard logger
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Print(err) }))
	})

	tr, flush := newTracer(t, config.Tracing{Endpoint: rejecting.URL})
	backend := newHeaderBackend(t)
	lb := newTracedProxy(t, tr, backend.URL)
	lb.get(t, "GET", "/", nil)
	backend.received(t)
	flush()
	select {
	case line := <-logged:
		if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "tracing error") || !strings.Contains(line, "400") {
			t.Errorf("log line %q, want a warning with the receiver's 400", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the rejected export was not logged")
	}
}

type chanWriter chan string

func (c chanWriter) Write(p []byte) (int, error) {
	select {
	case c <- string(p):
	default:
	}
	return len(p), nil
}

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the handler rather than a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkHandlerTracing measures one proxied GET (as proxy's
// BenchmarkHandler does) with tracing off (nil Tracer), on with every
// request sampled and exported over OTLP/HTTP to an in-process receiver,
// and on with nothing sampled (sample_ratio 0: ids made and propagated,
// no span recorded).
func BenchmarkHandlerTracing(b *testing.B) {
	body := strings.Repeat("x", 100)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, body)
	}))
	defer backend.Close()

	for _, bc := range []struct {
		name  string
		on    bool
		ratio float64
	}{
		{name: "off"},
		{name: "sampled", on: true, ratio: 1},
		{name: "unsampled", on: true, ratio: 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			clearOTelEnv(b)
			var tr *telemetry.Tracer
			var flush func()
			var rc *otlpReceiver
			if bc.on {
				rc = newHTTPReceiver(b, true)
				tr, flush = newTracer(b, config.Tracing{Endpoint: rc.URL, SampleRatio: ratio(bc.ratio)})
			}
			h, _ := newTracedHandler(b, tr, backend.URL)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", "/small", nil)
				req.RemoteAddr = "127.0.0.1:40000"
				req.Header.Set("User-Agent", "bench")
				w := &discardWriter{h: make(http.Header)}
				for pb.Next() {
					clear(w.h)
					h.ServeHTTP(w, req)
				}
			})
			b.StopTimer()
			if flush != nil {
				flush()
				b.ReportMetric(float64(rc.received.Load())/float64(b.N), "spans-exported/op")
			}
		})
	}
}

// BenchmarkTracerHooks measures the tracing of one request alone, without
// the network: StartRequest, one StartAttempt and both Ends, as the proxy
// calls them, sampled (exported to an in-process receiver) or not.
func BenchmarkTracerHooks(b *testing.B) {
	backend := upstream.NewBackend(upstream.Address{Scheme: "http", Host: "10.0.0.1", Port: 9001}, nil)
	res := &http.Response{StatusCode: 200}
	for _, bc := range []struct {
		name  string
		ratio float64
	}{{"sampled", 1}, {"unsampled", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			clearOTelEnv(b)
			rc := newHTTPReceiver(b, true)
			tr, flush := newTracer(b, config.Tracing{Endpoint: rc.URL, SampleRatio: ratio(bc.ratio)})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", "/small", nil)
				req.RemoteAddr = "127.0.0.1:40000"
				req.Header.Set("User-Agent", "bench")
				header := make(http.Header)
				sum := &proxy.Summary{Status: 200, BytesOut: 100, Attempts: 1, Backend: backend}
				for pb.Next() {
					r, span := tr.StartRequest(req)
					sum.TraceID = span.TraceID()
					_, attempt := tr.StartAttempt(r.Context(), backend, 1, header)
					attempt.End(res, nil)
					span.End(sum)
				}
			})
			b.StopTimer()
			flush()
			b.ReportMetric(float64(rc.received.Load())/float64(b.N), "spans-exported/op")
		})
	}
}
