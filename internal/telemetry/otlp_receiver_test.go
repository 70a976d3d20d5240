package telemetry_test

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an in-process OTLP trace receiver, speaking OTLP/HTTP
// (protobuf) or OTLP/gRPC like a collector or Jaeger does: it decodes each
// ExportTraceServiceRequest and hands its spans to the test.
type otlpReceiver struct {
	// URL is the receiver's base URL, e.g. http://127.0.0.1:41234, to be
	// used as tracing.endpoint or OTEL_EXPORTER_OTLP_ENDPOINT.
	URL string

	spans    chan otlpSpan
	discard  bool         // count only, without decoding (benchmarks)
	exports  atomic.Int64 // export requests received
	received atomic.Int64 // spans received
	errs     chan string  // protocol errors seen by the handler
}

// otlpSpan is one received span with its resource's and its own attributes
// as Go values (string, int64, bool, float64).
type otlpSpan struct {
	*tracepb.Span
	Resource map[string]any
	Attrs    map[string]any
}

func (s otlpSpan) traceID() string  { return hex.EncodeToString(s.TraceId) }
func (s otlpSpan) spanID() string   { return hex.EncodeToString(s.SpanId) }
func (s otlpSpan) parentID() string { return hex.EncodeToString(s.ParentSpanId) }

func newReceiverState(discard bool) *otlpReceiver {
	return &otlpReceiver{spans: make(chan otlpSpan, 4096), discard: discard, errs: make(chan string, 16)}
}

// newHTTPReceiver starts an OTLP/HTTP receiver serving POST /v1/traces.
func newHTTPReceiver(t testing.TB, discard bool) *otlpReceiver {
	t.Helper()
	rc := newReceiverState(discard)
	srv := httptest.NewServer(http.HandlerFunc(rc.serveHTTP))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL
	return rc
}

func (rc *otlpReceiver) fail(msg string) {
	select {
	case rc.errs <- msg:
	default:
	}
}

func (rc *otlpReceiver) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		rc.fail(r.Method + " " + r.URL.Path + ": want POST /v1/traces")
		http.NotFound(w, r)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		rc.fail("Content-Type " + ct + ": want application/x-protobuf")
		http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if rc.discard {
		// Benchmarks: count the spans without decoding them, so that the
		// receiver's work weighs little in the balancer's measured cost.
		n, ok := countSpans(data)
		if !ok {
			rc.fail("malformed export request")
		}
		rc.exports.Add(1)
		rc.received.Add(int64(n))
		w.Header().Set("Content-Type", "application/x-protobuf")
		return // an empty body is an empty ExportTraceServiceResponse
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(data, req); err != nil {
		rc.fail("decoding the export request: " + err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.record(req)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// grpcTraceService is the receiver's OTLP/gRPC TraceService.
type grpcTraceService struct {
	coltracepb.UnimplementedTraceServiceServer
	rc *otlpReceiver
}

func (s grpcTraceService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.rc.record(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// newGRPCReceiver starts an OTLP/gRPC receiver; its URL is http://host:port.
func newGRPCReceiver(t testing.TB) *otlpReceiver {
	t.Helper()
	rc := newReceiverState(false)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, grpcTraceService{rc: rc})
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(lis) })
	t.Cleanup(func() { srv.Stop(); wg.Wait() })
	rc.URL = "http://" + lis.Addr().String()
	return rc
}

func (rc *otlpReceiver) record(req *coltracepb.ExportTraceServiceRequest) {
	rc.exports.Add(1)
	for _, rs := range req.ResourceSpans {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				rc.received.Add(1)
				rc.spans <- otlpSpan{Span: sp, Resource: res, Attrs: attrMap(sp.Attributes)}
			}
		}
	}
}

// wait returns the next n spans, failing the test if they do not arrive
// within 10 seconds or the receiver saw a malformed export.
func (rc *otlpReceiver) wait(t testing.TB, n int) []otlpSpan {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	var got []otlpSpan
	for len(got) < n {
		select {
		case s := <-rc.spans:
			got = append(got, s)
		case msg := <-rc.errs:
			t.Fatalf("receiver: %s", msg)
		case <-deadline.C:
			t.Fatalf("receiver got %d spans in 10s, want %d", len(got), n)
		}
	}
	return got
}

// empty fails the test if spans beyond those taken with wait, or protocol
// errors, were received. Call it after the tracer's shutdown, which
// flushes every span.
func (rc *otlpReceiver) empty(t testing.TB) {
	t.Helper()
	select {
	case s := <-rc.spans:
		t.Fatalf("receiver got an unexpected span %q (kind %v)", s.Name, s.Kind)
	case msg := <-rc.errs:
		t.Fatalf("receiver: %s", msg)
	default:
	}
}

func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = x.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.Key] = x.IntValue
		case *commonpb.AnyValue_BoolValue:
			m[kv.Key] = x.BoolValue
		case *commonpb.AnyValue_DoubleValue:
			m[kv.Key] = x.DoubleValue
		default:
			m[kv.Key] = v.String()
		}
	}
	return m
}

// countSpans counts the spans of an encoded ExportTraceServiceRequest:
// field 1 (resource_spans) → field 2 (scope_spans) → field 2 (spans).
func countSpans(data []byte) (int, bool) {
	n := 0
	ok := eachField(data, 1, func(rs []byte) bool {
		return eachField(rs, 2, func(ss []byte) bool {
			return eachField(ss, 2, func([]byte) bool { n++; return true })
		})
	})
	return n, ok
}

// eachField calls f with the value of every length-delimited field num of
// the message b, skipping the other fields.
func eachField(b []byte, num protowire.Number, f func([]byte) bool) bool {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return false
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 || !f(v) {
				return false
			}
			b = b[l:]
			continue
		}
		if l = protowire.ConsumeFieldValue(n, typ, b); l < 0 {
			return false
		}
		b = b[l:]
	}
	return true
}
