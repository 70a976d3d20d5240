package telemetry

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/lbproject/load_balancer/internal/health"
	"github.com/lbproject/load_balancer/internal/proxy"
	"github.com/lbproject/load_balancer/internal/upstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSource is a Source with a fixed set of backends.
type fakeSource struct {
	members []upstream.Member
	conns   map[*upstream.Backend]*upstream.ConnCount
	health  map[*upstream.Backend]health.Status
}

func (f *fakeSource) Members() []upstream.Member { return f.members }
func (f *fakeSource) BackendHealth(b *upstream.Backend) (health.Status, bool) {
	s, ok := f.health[b]
	return s, ok
}
func (f *fakeSource) Conns(b *upstream.Backend) *upstream.ConnCount { return f.conns[b] }

// testProxy is a proxy.Handler round-robin over backends at urls, each
// with a counted transport, plus the fake source describing them.
func testProxy(t testing.TB, urls ...string) (*proxy.Handler, *fakeSource) {
	t.Helper()
	src := &fakeSource{conns: map[*upstream.Backend]*upstream.ConnCount{}, health: map[*upstream.Backend]health.Status{}}
	h, backends, counts := NewTestProxy(t, urls...)
	for i, b := range backends {
		src.conns[b] = counts[i]
		src.members = append(src.members, upstream.Member{Backend: b, Weight: 1})
	}
	return h, src
}

// scrape gathers m's exposition through its HTTP handler and parses it.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: status %d: %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value returns the value of the series of family name with exactly the
// given labels (name=value pairs), and whether it exists.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		if len(m.Label) != len(labels)/2 {
			continue
		}
		match := true
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func wantValue(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(fams, name, labels...)
	if !ok {
		t.Errorf("%s%v: missing", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func serve(h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestMetricsExposition(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		}
		io.WriteString(w, "hello")
	}))
	defer backend.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close() // connections to it are refused

	h, src := testProxy(t, closedURL, backend.URL)
	m := NewMetrics(MetricsOptions{Version: "v9.9.9"})
	m.SetSource(src)
	h.Metrics = m
	good, bad := src.members[1].Backend, src.members[0].Backend
	src.health[good] = health.Status{ActiveChecks: true, Probes: 7, Ejections: 1}
	m.HealthEvent(health.Event{Backend: bad.String(), Healthy: false})
	m.HealthEvent(health.Event{Backend: bad.String(), Healthy: true})
	m.ConfigLoaded(time.Unix(1700000000, 0))
	m.ConfigReloaded(true, time.Unix(1700000100, 0))
	m.ConfigReloaded(false, time.Unix(1700000200, 0))

	// Round robin starts with the refused backend: the first request is
	// retried on the good one; the rest alternate.
	for range 3 {
		if rec := serve(h, "GET", "/", ""); rec.Code != 200 {
			t.Fatalf("GET /: %d", rec.Code)
		}
	}
	serve(h, "POST", "/upload", "0123456789")
	serve(h, "PURGE", "/", "")
	serve(h, "GET", "/fail", "")
	serve(h, "GET", "/missing", "")
	serve(h, "GET", "/"+strings.Repeat("a", 9000), "") // 414: no backend

	fams := scrape(t, m)
	g := good.String()
	wantValue(t, fams, 3, "load_balancer_requests_total", "backend", g, "class", "2xx", "method", "GET")
	wantValue(t, fams, 1, "load_balancer_requests_total", "backend", g, "class", "2xx", "method", "POST")
	wantValue(t, fams, 1, "load_balancer_requests_total", "backend", g, "class", "2xx", "method", "other")
	wantValue(t, fams, 1, "load_balancer_requests_total", "backend", g, "class", "5xx", "method", "GET")
	wantValue(t, fams, 1, "load_balancer_requests_total", "backend", g, "class", "4xx", "method", "GET")
	wantValue(t, fams, 1, "load_balancer_requests_total", "backend", NoBackend, "class", "4xx", "method", "GET")
	if _, ok := value(fams, "load_balancer_requests_total", "backend", bad.String(), "class", "2xx", "method", "GET"); ok {
		t.Errorf("requests counted for the refused backend, which answered none")
	}
	wantValue(t, fams, 8, "load_balancer_request_duration_seconds")
	wantValue(t, fams, 7, "load_balancer_backend_request_duration_seconds", "backend", g)
	wantValue(t, fams, 0, "load_balancer_requests_in_flight")
	wantValue(t, fams, 10, "load_balancer_request_body_bytes_total", "backend", g)
	wantValue(t, fams, 35, "load_balancer_response_body_bytes_total", "backend", g) // 7 × "hello"
	if r, _ := value(fams, "load_balancer_retries_total"); r < 1 {
		t.Errorf("retries_total = %v, want ≥ 1 (the refused backend was tried first)", r)
	}
	wantValue(t, fams, 1, "load_balancer_backend_up", "backend", g)
	wantValue(t, fams, 1, "load_balancer_backend_weight", "backend", g)
	wantValue(t, fams, 0, "load_balancer_backend_draining", "backend", g)
	wantValue(t, fams, 0, "load_balancer_backend_requests_in_flight", "backend", g)
	wantValue(t, fams, 7, "load_balancer_backend_attempts_total", "backend", g)
	if f, _ := value(fams, "load_balancer_backend_failures_total", "backend", bad.String()); f < 1 {
		t.Errorf("failures of the refused backend = %v, want ≥ 1", f)
	}
	wantValue(t, fams, 1, "load_balancer_backend_connections_open", "backend", g)
	wantValue(t, fams, 1, "load_balancer_backend_connections_idle", "backend", g)
	wantValue(t, fams, 1, "load_balancer_backend_connections_dialed_total", "backend", g)
	wantValue(t, fams, 0, "load_balancer_backend_connections_open", "backend", bad.String())
	wantValue(t, fams, 1, "load_balancer_backend_health_transitions_total", "backend", bad.String(), "to", "down")
	wantValue(t, fams, 1, "load_balancer_backend_health_transitions_total", "backend", bad.String(), "to", "up")
	wantValue(t, fams, 7, "load_balancer_backend_health_probes_total", "backend", g)
	wantValue(t, fams, 1, "load_balancer_backend_ejections_total", "backend", g)
	wantValue(t, fams, 1, "load_balancer_config_reloads_total", "result", "success")
	wantValue(t, fams, 1, "load_balancer_config_reloads_total", "result", "failure")
	wantValue(t, fams, 1700000100, "load_balancer_config_last_reload_success_timestamp_seconds")
	wantValue(t, fams, 1, "load_balancer_build_info", "version", "v9.9.9", "goversion", runtime.Version())
	for _, name := range []string{"go_goroutines", "process_open_fds"} {
		if fams[name] == nil {
			t.Errorf("%s missing: Go runtime and process collectors", name)
		}
	}

	// Types follow the conventions.
	for name, f := range fams {
		switch {
		case !strings.HasPrefix(name, "load_balancer_"):
		case strings.HasSuffix(name, "_total") && f.GetType() != dto.MetricType_COUNTER:
			t.Errorf("%s: type %v, want counter", name, f.GetType())
		case strings.HasSuffix(name, "_seconds") && strings.Contains(name, "duration") && f.GetType() != dto.MetricType_HISTOGRAM:
			t.Errorf("%s: type %v, want histogram", name, f.GetType())
		}
	}

	// The fine latency buckets add up into the exported ones.
	hist := fams["load_balancer_request_duration_seconds"].Metric[0].Histogram
	var prev uint64
	for _, b := range hist.Bucket {
		if b.GetCumulativeCount() < prev {
			t.Errorf("bucket le=%v: cumulative count %d after %d", b.GetUpperBound(), b.GetCumulativeCount(), prev)
		}
		prev = b.GetCumulativeCount()
	}
	if prev != hist.GetSampleCount() {
		t.Errorf("last bucket %d, count %d", prev, hist.GetSampleCount())
	}

	// A backend leaves the configuration: its series go with it.
	src.members = src.members[1:]
	fams = scrape(t, m)
	for name, f := range fams {
		for _, s := range f.Metric {
			for _, l := range s.Label {
				if l.GetName() == "backend" && l.GetValue() == bad.String() {
					t.Errorf("%s still has a series of the removed backend", name)
				}
			}
		}
	}
	// A late request of the removed backend does not bring them back.
	m.RequestStarted()
	m.RequestFinished(httptest.NewRequest("GET", "/", nil), &proxy.Summary{Status: 200, Backend: bad, Attempts: 1})
	if (*m.stats.Load())[bad] != nil {
		t.Errorf("counters re-created for a backend no longer in service")
	}
}

// TestMetricNamesDocumented keeps docs/observability.md in step with the
// metrics: every load_balancer_ metric is described there.
func TestMetricNamesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 64)
	(*collector)(NewMetrics(MetricsOptions{})).Describe(ch)
	close(ch)
	names := []string{"load_balancer_build_info"}
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		m := fq.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names = append(names, m[1])
	}
	for _, n := range names {
		if !strings.Contains(string(doc), "`"+n+"`") {
			t.Errorf("docs/observability.md does not describe %s", n)
		}
	}
}
