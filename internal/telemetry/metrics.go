package telemetry

import (
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lbproject/load_balancer/internal/health"
	"github.com/lbproject/load_balancer/internal/proxy"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// Source is what the metrics read about the running balancer when they are
// scraped: the backends in service, their health and their connection
// pools. server.Server implements it.
type Source interface {
	// Members returns the backends of the configuration in service.
	Members() []upstream.Member
	// BackendHealth returns the health checker's status of b.
	BackendHealth(b *upstream.Backend) (health.Status, bool)
	// Conns returns the connection count of b's pool, or nil.
	Conns(b *upstream.Backend) *upstream.ConnCount
}

// Status classes and methods, the bounded values of the class and method
// labels. A method outside the list counts as "other".
var (
	statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}
	methods       = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other"}
)

const (
	numClasses = len(statusClasses)
	numMethods = len(methods)
	class5xx   = 4

	// NoBackend is the backend label of requests no backend served (no
	// backend available, URI too long, CONNECT refused).
	NoBackend = "none"
)

// classOf returns the index of status's class in statusClasses.
func classOf(status int) int {
	if status >= 100 && status < 600 {
		return status/100 - 1
	}
	return numClasses - 1
}

// methodOf returns the index of method in methods.
func methodOf(method string) int {
	switch method {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodDelete:
		return 4
	case http.MethodPatch:
		return 5
	case http.MethodOptions:
		return 6
	case http.MethodConnect:
		return 7
	case http.MethodTrace:
		return 8
	}
	return numMethods - 1
}

// backendStats are the per-request counters of one backend: plain atomics,
// exported at scrape time by the collector, so that a request pays a few
// atomic adds and no label lookup.
type backendStats struct {
	key      string
	requests [numClasses][numMethods]atomic.Uint64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	errors5x atomic.Uint64 // 5xx answers of the backend itself
	latency  *windowed     // request sent → response header, last attempt
}

func newBackendStats(key string, now time.Time) *backendStats {
	return &backendStats{key: key, latency: newWindowed(now)}
}

// Metrics counts what the proxy does and exposes it in the Prometheus text
// format with its own registry (Go runtime and process collectors
// included). It implements proxy.Metrics; create it with NewMetrics, give
// it its Source with SetSource before serving.
//
// Per-request counters are atomics in per-backend structs found through a
// copy-on-write map keyed by the backend; a backend gets its struct on its
// first request, and a scrape drops those of backends no longer in
// service, so removed backends leave no series behind.
type Metrics struct {
	source   atomic.Pointer[sourceBox]
	registry *prometheus.Registry

	inFlight atomic.Int64
	duration *windowed // whole request
	retries  atomic.Uint64
	none     *backendStats // requests no backend served

	mu    sync.Mutex                                          // adding and dropping stats
	stats atomic.Pointer[map[*upstream.Backend]*backendStats] // replaced whole under mu

	transitionsMu sync.Mutex
	transitions   map[string]*[2]uint64 // backend key → [to down, to up]

	reloadsOK, reloadsFailed atomic.Uint64
	lastReload               atomic.Int64 // Unix nanoseconds of the last successful load
}

type sourceBox struct{ Source }

// MetricsOptions configure NewMetrics.
type MetricsOptions struct {
	// Version is the build_info version label.
	Version string
}

// NewMetrics returns metrics with nothing counted yet.
func NewMetrics(opts MetricsOptions) *Metrics {
	now := time.Now()
	m := &Metrics{
		registry:    prometheus.NewRegistry(),
		duration:    newWindowed(now),
		none:        newBackendStats(NoBackend, now),
		transitions: make(map[string]*[2]uint64),
	}
	m.stats.Store(&map[*upstream.Backend]*backendStats{})
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "load_balancer_build_info",
			Help:        "Always 1; the labels say which build is running.",
			ConstLabels: prometheus.Labels{"version": opts.Version, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
		(*collector)(m),
	)
	return m
}

// SetSource tells the metrics where to read the backends in service. Until
// it is called, per-backend gauges are not exported.
func (m *Metrics) SetSource(s Source) { m.source.Store(&sourceBox{s}) }

func (m *Metrics) src() Source {
	if b := m.source.Load(); b != nil {
		return b.Source
	}
	return nil
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		EnableOpenMetrics:   true,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// Registry returns the metrics' registry (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// RequestStarted counts a request in flight.
func (m *Metrics) RequestStarted() { m.inFlight.Add(1) }

// RequestFinished counts a served request: by backend, status class and
// method, its bytes, durations and retries. It costs a map lookup and a
// handful of atomic adds.
func (m *Metrics) RequestFinished(r *http.Request, s *proxy.Summary) {
	m.inFlight.Add(-1)
	m.duration.observe(s.Duration)
	if s.Attempts > 1 {
		m.retries.Add(uint64(s.Attempts - 1))
	}
	st := m.none
	if s.Backend != nil {
		if st = m.statsOf(s.Backend); st == nil {
			return // a backend removed from service: its series are gone
		}
		if timedBackend(s) {
			st.latency.observe(s.BackendDuration)
		}
		if s.Err == nil && s.Status >= 500 {
			st.errors5x.Add(1)
		}
	}
	st.requests[classOf(s.Status)][methodOf(r.Method)].Add(1)
	if s.BytesIn > 0 {
		st.bytesIn.Add(uint64(s.BytesIn))
	}
	if s.BytesOut > 0 {
		st.bytesOut.Add(uint64(s.BytesOut))
	}
}

// timedBackend reports whether the last attempt's BackendDuration is a
// backend's response time: the backend answered (or the wait for it timed
// out, 504), rather than the connection failing (502) or the client leaving
// first (499), which would make a broken backend look fast.
func timedBackend(s *proxy.Summary) bool {
	if s.Err == nil {
		return true
	}
	switch s.Status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, 499:
		return false
	}
	return true
}

// statsOf returns b's counters, creating them on b's first request, or nil
// if b is no longer in service.
func (m *Metrics) statsOf(b *upstream.Backend) *backendStats {
	if st := (*m.stats.Load())[b]; st != nil {
		return st
	}
	src := m.src()
	if src != nil && !isMember(src.Members(), b) {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.stats.Load()
	if st := old[b]; st != nil {
		return st
	}
	next := make(map[*upstream.Backend]*backendStats, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	st := newBackendStats(b.String(), time.Now())
	next[b] = st
	m.stats.Store(&next)
	return st
}

func isMember(members []upstream.Member, b *upstream.Backend) bool {
	for _, mb := range members {
		if mb.Backend == b {
			return true
		}
	}
	return false
}

// prune drops the counters of backends not in members.
func (m *Metrics) prune(members []upstream.Member) {
	cur := *m.stats.Load()
	stale := false
	for b := range cur {
		if !isMember(members, b) {
			stale = true
			break
		}
	}
	if !stale {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.stats.Load()
	next := make(map[*upstream.Backend]*backendStats, len(members))
	for b, st := range old {
		if isMember(members, b) {
			next[b] = st
		}
	}
	m.stats.Store(&next)

	keep := make(map[string]bool, len(members))
	for _, mb := range members {
		keep[mb.String()] = true
	}
	m.transitionsMu.Lock()
	for k := range m.transitions {
		if !keep[k] {
			delete(m.transitions, k)
		}
	}
	m.transitionsMu.Unlock()
}

// HealthEvent counts a health transition; it is the health checker's
// onEvent hook.
func (m *Metrics) HealthEvent(ev health.Event) {
	m.transitionsMu.Lock()
	defer m.transitionsMu.Unlock()
	t := m.transitions[ev.Backend]
	if t == nil {
		t = new([2]uint64)
		m.transitions[ev.Backend] = t
	}
	if ev.Healthy {
		t[1]++
	} else {
		t[0]++
	}
}

// ConfigLoaded records a configuration put in service at t without a
// reload (at startup): it sets the last-success timestamp.
func (m *Metrics) ConfigLoaded(t time.Time) { m.lastReload.Store(t.UnixNano()) }

// ConfigReloaded counts a reload by its result; a success at t also sets
// the last-success timestamp.
func (m *Metrics) ConfigReloaded(ok bool, t time.Time) {
	if ok {
		m.reloadsOK.Add(1)
		m.lastReload.Store(t.UnixNano())
		return
	}
	m.reloadsFailed.Add(1)
}

// InFlight returns the number of requests being served.
func (m *Metrics) InFlight() int64 { return m.inFlight.Load() }

// RequestLatency returns the percentiles of whole-request durations over
// the recent window.
func (m *Metrics) RequestLatency() Percentiles { return m.duration.recent(time.Now()) }

// Retries returns the number of retried attempts.
func (m *Metrics) Retries() uint64 { return m.retries.Load() }

// BackendStats is what the metrics know of one backend's traffic, for the
// admin API.
type BackendStats struct {
	// Responses counts the requests the backend served last (the backend
	// of the final attempt) by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
	Responses map[string]uint64
	// Requests is the sum of Responses; Errors the 5xx among them.
	Requests, Errors uint64
	// ServerErrors counts the 5xx responses of the backend itself (the
	// balancer's own 502 and 504 after a failed attempt are not among
	// them: those attempts are Backend.Failures).
	ServerErrors      uint64
	BytesIn, BytesOut uint64
	// Latency is the backend's response time (request sent to response
	// header) over the recent window.
	Latency Percentiles
}

// Backend returns the traffic of b; zero if it served nothing yet.
func (m *Metrics) Backend(b *upstream.Backend) BackendStats {
	st := (*m.stats.Load())[b]
	if st == nil {
		return BackendStats{Responses: map[string]uint64{}}
	}
	out := BackendStats{
		Responses:    make(map[string]uint64, numClasses),
		BytesIn:      st.bytesIn.Load(),
		BytesOut:     st.bytesOut.Load(),
		ServerErrors: st.errors5x.Load(),
		Latency:      st.latency.recent(time.Now()),
	}
	for c := range st.requests {
		var n uint64
		for i := range st.requests[c] {
			n += st.requests[c][i].Load()
		}
		if n > 0 || c < numClasses-1 {
			out.Responses[statusClasses[c]] = n
		}
		out.Requests += n
		if c == class5xx {
			out.Errors = n
		}
	}
	return out
}

// Requests returns the number of requests served so far.
func (m *Metrics) Requests() uint64 {
	s := m.duration.snapshot(time.Time{})
	return s.count()
}
