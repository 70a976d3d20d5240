package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lbproject/load_balancer/internal/upstream"
)

// Metric names and help texts. docs/observability.md lists them all; a test
// keeps the two in step.
var (
	descRequests = prometheus.NewDesc("load_balancer_requests_total",
		"Requests served, by the backend of the last attempt (\"none\" when no backend served it), status class and method.",
		[]string{"backend", "class", "method"}, nil)
	descRequestDuration = prometheus.NewDesc("load_balancer_request_duration_seconds",
		"Time from a request's arrival to the last byte of its response.", nil, nil)
	descInFlight = prometheus.NewDesc("load_balancer_requests_in_flight",
		"Requests being served.", nil, nil)
	descRetries = prometheus.NewDesc("load_balancer_retries_total",
		"Attempts beyond the first: a request tried on three backends adds 2.", nil, nil)
	descBytesIn = prometheus.NewDesc("load_balancer_request_body_bytes_total",
		"Request body bytes read from clients, by backend.", []string{"backend"}, nil)
	descBytesOut = prometheus.NewDesc("load_balancer_response_body_bytes_total",
		"Response body bytes written to clients, by backend.", []string{"backend"}, nil)

	descBackendDuration = prometheus.NewDesc("load_balancer_backend_request_duration_seconds",
		"Time from sending a request to a backend to receiving its response header (last attempt; failed connections excluded).",
		[]string{"backend"}, nil)
	descBackendUp = prometheus.NewDesc("load_balancer_backend_up",
		"1 when health checking considers the backend up, else 0.", []string{"backend"}, nil)
	descBackendWeight = prometheus.NewDesc("load_balancer_backend_weight",
		"The backend's weight in the configuration in service.", []string{"backend"}, nil)
	descBackendDraining = prometheus.NewDesc("load_balancer_backend_draining",
		"1 when the backend takes no new requests because the config file or the admin API drains it.", []string{"backend"}, nil)
	descBackendInFlight = prometheus.NewDesc("load_balancer_backend_requests_in_flight",
		"Requests sent to the backend and waiting for its response header.", []string{"backend"}, nil)
	descBackendAttempts = prometheus.NewDesc("load_balancer_backend_attempts_total",
		"Attempts sent to the backend, retries included.", []string{"backend"}, nil)
	descBackendFailures = prometheus.NewDesc("load_balancer_backend_failures_total",
		"Attempts the backend failed: connection refused or reset, timeout.", []string{"backend"}, nil)
	descConnsOpen = prometheus.NewDesc("load_balancer_backend_connections_open",
		"TCP connections open to the backend.", []string{"backend"}, nil)
	descConnsIdle = prometheus.NewDesc("load_balancer_backend_connections_idle",
		"Estimate of the pooled idle connections to the backend: open minus in flight, at least 0.", []string{"backend"}, nil)
	descConnsDialed = prometheus.NewDesc("load_balancer_backend_connections_dialed_total",
		"TCP connections opened to the backend.", []string{"backend"}, nil)
	descTransitions = prometheus.NewDesc("load_balancer_backend_health_transitions_total",
		"Health changes of the backend, by the state it changed to.", []string{"backend", "to"}, nil)
	descEjections = prometheus.NewDesc("load_balancer_backend_ejections_total",
		"Passive ejections (outlier detection) of the backend.", []string{"backend"}, nil)
	descProbes = prometheus.NewDesc("load_balancer_backend_health_probes_total",
		"Active health probes of the backend completed.", []string{"backend"}, nil)
	descProbeFailures = prometheus.NewDesc("load_balancer_backend_health_probe_consecutive_failures",
		"Active health probes of the backend failed in a row.", []string{"backend"}, nil)

	descReloads = prometheus.NewDesc("load_balancer_config_reloads_total",
		"Configuration reloads (SIGHUP, file watch, admin API), by result: success or failure.", []string{"result"}, nil)
	descLastReload = prometheus.NewDesc("load_balancer_config_last_reload_success_timestamp_seconds",
		"Unix time of the last configuration put in service (startup or reload).", nil, nil)
)

// collector exports Metrics: it reads the atomics, and the backends in
// service from the Source, at scrape time.
type collector Metrics

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descRequests, descRequestDuration, descInFlight, descRetries, descBytesIn, descBytesOut,
		descBackendDuration, descBackendUp, descBackendWeight, descBackendDraining, descBackendInFlight,
		descBackendAttempts, descBackendFailures, descConnsOpen, descConnsIdle, descConnsDialed,
		descTransitions, descEjections, descProbes, descProbeFailures, descReloads, descLastReload,
	} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	now := time.Now()

	snap := m.duration.snapshot(now)
	buckets, count, sum := snap.prometheusBuckets()
	ch <- prometheus.MustNewConstHistogram(descRequestDuration, count, sum, buckets)
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(m.inFlight.Load()))
	ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(m.retries.Load()))
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(m.reloadsOK.Load()), "success")
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(m.reloadsFailed.Load()), "failure")
	if t := m.lastReload.Load(); t != 0 {
		ch <- prometheus.MustNewConstMetric(descLastReload, prometheus.GaugeValue, float64(t)/1e9)
	}
	collectRequests(ch, m.none, false, now)

	src := m.src()
	if src == nil {
		for _, st := range *m.stats.Load() {
			collectRequests(ch, st, true, now)
		}
		return
	}
	members := src.Members()
	m.prune(members)
	stats := *m.stats.Load()
	m.transitionsMu.Lock()
	transitions := make(map[string][2]uint64, len(m.transitions))
	for k, v := range m.transitions {
		transitions[k] = *v
	}
	m.transitionsMu.Unlock()

	seen := make(map[*upstream.Backend]bool, len(members))
	for _, mb := range members {
		b := mb.Backend
		if seen[b] {
			continue
		}
		seen[b] = true
		key := b.String()
		if st := stats[b]; st != nil {
			collectRequests(ch, st, true, now)
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, key)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, key)
		}
		gauge(descBackendUp, boolFloat(b.Healthy()))
		gauge(descBackendWeight, float64(mb.Weight))
		gauge(descBackendDraining, boolFloat(b.Draining()))
		gauge(descBackendInFlight, float64(b.InFlight()))
		counter(descBackendAttempts, float64(b.Requests()))
		counter(descBackendFailures, float64(b.Failures()))
		if conns := src.Conns(b); conns != nil {
			gauge(descConnsOpen, float64(conns.Open()))
			gauge(descConnsIdle, float64(conns.Idle(b.InFlight())))
			counter(descConnsDialed, float64(conns.Dialed()))
		}
		t := transitions[key]
		ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(t[0]), key, "down")
		ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(t[1]), key, "up")
		if hs, ok := src.BackendHealth(b); ok {
			counter(descEjections, float64(hs.Ejections))
			if hs.ActiveChecks {
				counter(descProbes, float64(hs.Probes))
				gauge(descProbeFailures, float64(hs.ConsecutiveFailures))
			}
		}
	}
}

// collectRequests exports one backend's request counters (the non-zero
// ones: a label combination appears once it happened), bytes and, for real
// backends, response time histogram.
func collectRequests(ch chan<- prometheus.Metric, st *backendStats, backend bool, now time.Time) {
	var any bool
	for c := range st.requests {
		for i := range st.requests[c] {
			if n := st.requests[c][i].Load(); n > 0 {
				any = true
				ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), st.key, statusClasses[c], methods[i])
			}
		}
	}
	if !backend && !any {
		return
	}
	ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(st.bytesIn.Load()), st.key)
	ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(st.bytesOut.Load()), st.key)
	if backend {
		snap := st.latency.snapshot(now)
		buckets, count, sum := snap.prometheusBuckets()
		ch <- prometheus.MustNewConstHistogram(descBackendDuration, count, sum, buckets, st.key)
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
