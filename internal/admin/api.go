package admin

import (
	"encoding/json"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lbproject/load_balancer/internal/health"
	"github.com/lbproject/load_balancer/internal/server"
	"github.com/lbproject/load_balancer/internal/telemetry"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// BackendID returns the id of a backend in the API's paths: its address
// made URL-safe, "<scheme>-<host>-<port>" with the colons of an IPv6
// literal (and its zone's %) written "_", e.g. "http-127.0.0.1-9001" or
// "https-__1-8443". It is stable across reloads and restarts, and unique
// because scheme and port cannot contain "-".
func BackendID(a upstream.Address) string {
	host := strings.NewReplacer(":", "_", "%", "_").Replace(a.Host)
	return a.Scheme + "-" + host + "-" + strconv.Itoa(a.Port)
}

// latencyJSON is a set of percentiles in seconds.
type latencyJSON struct {
	P50           float64 `json:"p50"`
	P90           float64 `json:"p90"`
	P99           float64 `json:"p99"`
	Samples       uint64  `json:"samples"`
	WindowSeconds float64 `json:"window_seconds"`
}

func latencyOf(p telemetry.Percentiles) latencyJSON {
	return latencyJSON{
		P50: p.P50.Seconds(), P90: p.P90.Seconds(), P99: p.P99.Seconds(),
		Samples: p.Count, WindowSeconds: p.Window.Round(time.Second).Seconds(),
	}
}

type connectionsJSON struct {
	Open   int64  `json:"open"`
	Idle   int64  `json:"idle"`
	Dialed uint64 `json:"dialed_total"`
}

type healthJSON struct {
	ActiveChecks        bool       `json:"active_checks"`
	Probes              uint64     `json:"probes_total"`
	LastProbe           *time.Time `json:"last_probe,omitempty"`
	LastError           string     `json:"last_error,omitempty"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	Ejected             bool       `json:"ejected"`
	Ejections           uint64     `json:"ejections_total"`
	EjectedUntil        *time.Time `json:"ejected_until,omitempty"`
	Transitions         uint64     `json:"transitions_total"`
}

// backendJSON is one backend in GET /api/v1/backends.
type backendJSON struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Weight  int    `json:"weight"`
	// State is "up", "down" (health checking says so) or "draining" (up,
	// but taking no new requests).
	State   string `json:"state"`
	Healthy bool   `json:"healthy"`
	// Reason, Source and Since describe the last health transition; Since
	// is when checking began if there was none.
	Reason string    `json:"reason"`
	Source string    `json:"source,omitempty"`
	Since  time.Time `json:"since"`

	Draining     bool     `json:"draining"`
	DrainSources []string `json:"drain_sources"` // "config", "admin"

	InFlight      int64             `json:"in_flight"`
	RequestsTotal uint64            `json:"requests_total"` // attempts sent, retries included
	FailuresTotal uint64            `json:"failures_total"` // attempts failed: refused, reset, timeout
	ErrorsTotal   uint64            `json:"errors_total"`   // failures plus 5xx answers of the backend itself
	Responses     map[string]uint64 `json:"responses"`      // requests it served last, by status class
	BytesIn       uint64            `json:"request_bytes_total"`
	BytesOut      uint64            `json:"response_bytes_total"`
	Latency       latencyJSON       `json:"latency_seconds"` // response header time, recent window
	Connections   *connectionsJSON  `json:"connections,omitempty"`
	Health        *healthJSON       `json:"health,omitempty"`
}

// backendView assembles the JSON of one backend.
func (a *Admin) backendView(m upstream.Member) backendJSON {
	b := m.Backend
	srv := a.opts.Server
	v := backendJSON{
		ID:            BackendID(b.Address()),
		Address:       b.String(),
		Weight:        m.Weight,
		Healthy:       b.Healthy(),
		Draining:      b.Draining(),
		DrainSources:  []string{},
		InFlight:      b.InFlight(),
		RequestsTotal: b.Requests(),
		FailuresTotal: b.Failures(),
	}
	switch {
	case !v.Healthy:
		v.State = "down"
	case v.Draining:
		v.State = "draining"
	default:
		v.State = "up"
	}
	if cfg, adm := b.DrainSources(); cfg || adm {
		if cfg {
			v.DrainSources = append(v.DrainSources, "config")
		}
		if adm {
			v.DrainSources = append(v.DrainSources, "admin")
		}
	}
	st := a.opts.Metrics.Backend(b)
	v.Responses, v.BytesIn, v.BytesOut = st.Responses, st.BytesIn, st.BytesOut
	v.ErrorsTotal = v.FailuresTotal + st.ServerErrors
	v.Latency = latencyOf(st.Latency)
	if c := srv.Conns(b); c != nil {
		v.Connections = &connectionsJSON{Open: c.Open(), Idle: c.Idle(b.InFlight()), Dialed: c.Dialed()}
	}
	if hs, ok := srv.BackendHealth(b); ok {
		v.Reason, v.Source, v.Since = hs.Reason, hs.Source, hs.Since
		h := &healthJSON{
			ActiveChecks: hs.ActiveChecks, Probes: hs.Probes, LastError: hs.LastError,
			ConsecutiveFailures: hs.ConsecutiveFailures, Ejected: hs.Ejected,
			Ejections: hs.Ejections, Transitions: hs.Transitions,
		}
		if !hs.LastProbe.IsZero() {
			h.LastProbe = &hs.LastProbe
		}
		if !hs.EjectedUntil.IsZero() {
			h.EjectedUntil = &hs.EjectedUntil
		}
		v.Health = h
	}
	return v
}

// members returns the backends in service, each once.
func (a *Admin) members() []upstream.Member {
	all := a.opts.Server.Members()
	out := make([]upstream.Member, 0, len(all))
	for _, m := range all {
		if !slices.ContainsFunc(out, func(o upstream.Member) bool { return o.Backend == m.Backend }) {
			out = append(out, m)
		}
	}
	return out
}

// find returns the backend in service that id names: its id, its address
// ("http://127.0.0.1:9001") or its host:port.
func (a *Admin) find(id string) (upstream.Member, bool) {
	for _, m := range a.members() {
		b := m.Backend
		if id == BackendID(b.Address()) || id == b.String() || id == b.HostPort() {
			return m, true
		}
	}
	return upstream.Member{}, false
}

// GET /api/v1/backends
func (a *Admin) backends(w http.ResponseWriter, r *http.Request) {
	ms := a.members()
	out := struct {
		Time     time.Time     `json:"time"`
		Backends []backendJSON `json:"backends"`
	}{Time: time.Now(), Backends: make([]backendJSON, 0, len(ms))}
	for _, m := range ms {
		out.Backends = append(out.Backends, a.backendView(m))
	}
	writeJSON(w, http.StatusOK, out)
}

// GET /api/v1/backends/{id}
func (a *Admin) backend(w http.ResponseWriter, r *http.Request) {
	m, ok := a.find(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "no backend "+strconv.Quote(r.PathValue("id"))+" in service")
		return
	}
	writeJSON(w, http.StatusOK, a.backendView(m))
}

// drain returns the handler of POST /api/v1/backends/{id}/drain (on) and
// /enable (off).
func (a *Admin) drain(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, ok := a.find(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, "no backend "+strconv.Quote(r.PathValue("id"))+" in service")
			return
		}
		m.Backend.SetAdminDrain(on)
		verb := "enabled"
		if on {
			verb = "drained"
		}
		cfg, _ := m.Backend.DrainSources()
		a.opts.Log.Info("admin: backend "+verb, "backend", m.Backend.String(), "client", r.RemoteAddr,
			"still_drained_by_config", !on && cfg)
		writeJSON(w, http.StatusOK, a.backendView(m))
	}
}

// GET /api/v1/config: the configuration in service, secrets redacted.
func (a *Admin) config(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.opts.Server.Config().Redacted())
}

// reloadJSON is one reload in the API.
type reloadJSON struct {
	Time            time.Time `json:"time"`
	Trigger         string    `json:"trigger"`
	OK              bool      `json:"ok"`
	Error           string    `json:"error,omitempty"`
	DurationSeconds float64   `json:"duration_seconds"`
	Source          string    `json:"source"`
	Backends        int       `json:"backends"`
	Strategy        string    `json:"strategy"`
}

func reloadOf(r server.Reload) reloadJSON {
	return reloadJSON{
		Time: r.Time, Trigger: r.Trigger, OK: r.OK, Error: r.Error,
		DurationSeconds: r.Duration.Seconds(), Source: r.Source, Backends: r.Backends, Strategy: r.Strategy,
	}
}

// POST /api/v1/reload: 200 with the result, 422 with the loader's error
// (naming file:line) when the file is bad; the running config stays then.
func (a *Admin) reload(w http.ResponseWriter, r *http.Request) {
	if a.opts.Reload == nil {
		writeError(w, http.StatusNotImplemented, "reload is not available")
		return
	}
	a.opts.Log.Info("admin: reload requested", "client", r.RemoteAddr)
	res := a.opts.Reload()
	status := http.StatusOK
	if !res.OK {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, reloadOf(res))
}

// healthEventJSON is one health transition in the API.
type healthEventJSON struct {
	Time      time.Time `json:"time"`
	Backend   string    `json:"backend"`
	BackendID string    `json:"backend_id"`
	State     string    `json:"state"` // "up" or "down"
	Healthy   bool      `json:"healthy"`
	Reason    string    `json:"reason"`
	Source    string    `json:"source"`
}

// GET /api/v1/events: recent health transitions and reloads, newest first.
func (a *Admin) events(w http.ResponseWriter, r *http.Request) {
	evs := a.opts.Server.Health().Recent()
	reloads := a.opts.Server.Reloads()
	out := struct {
		Health  []healthEventJSON `json:"health"`
		Reloads []reloadJSON      `json:"reloads"`
	}{make([]healthEventJSON, 0, len(evs)), make([]reloadJSON, 0, len(reloads))}
	for i := len(evs) - 1; i >= 0; i-- {
		out.Health = append(out.Health, healthEventOf(evs[i]))
	}
	for i := len(reloads) - 1; i >= 0; i-- {
		out.Reloads = append(out.Reloads, reloadOf(reloads[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

func healthEventOf(ev health.Event) healthEventJSON {
	state := "down"
	if ev.Healthy {
		state = "up"
	}
	id := ev.Backend
	if u, ok := parseKey(ev.Backend); ok {
		id = BackendID(u)
	}
	return healthEventJSON{Time: ev.Time, Backend: ev.Backend, BackendID: id, State: state,
		Healthy: ev.Healthy, Reason: ev.Reason, Source: ev.Source}
}

// parseKey parses a backend key ("http://host:port") back to an Address.
func parseKey(key string) (upstream.Address, bool) {
	scheme, hostPort, ok := strings.Cut(key, "://")
	if !ok {
		return upstream.Address{}, false
	}
	host, port, err := splitHostPort(hostPort)
	if err != nil {
		return upstream.Address{}, false
	}
	return upstream.Address{Scheme: scheme, Host: host, Port: port}, true
}

func splitHostPort(hostPort string) (string, int, error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	return host, n, err
}

// GET /api/v1/status: the balancer as a whole.
func (a *Admin) status(w http.ResponseWriter, r *http.Request) {
	srv, m := a.opts.Server, a.opts.Metrics
	cfg := srv.Config()
	ms := a.members()
	healthy := 0
	for _, mb := range ms {
		if mb.Backend.Available() {
			healthy++
		}
	}
	out := struct {
		Version       string      `json:"version"`
		GoVersion     string      `json:"go_version"`
		Started       time.Time   `json:"started"`
		UptimeSeconds float64     `json:"uptime_seconds"`
		Ready         bool        `json:"ready"`
		Listen        string      `json:"listen"`
		ConfigSource  string      `json:"config_source"`
		Strategy      string      `json:"strategy"`
		Backends      int         `json:"backends"`
		Available     int         `json:"backends_available"`
		RequestsTotal uint64      `json:"requests_total"`
		InFlight      int64       `json:"in_flight"`
		RetriesTotal  uint64      `json:"retries_total"`
		Latency       latencyJSON `json:"latency_seconds"`
	}{
		Version: a.opts.Version, GoVersion: runtime.Version(), Started: a.started,
		UptimeSeconds: time.Since(a.started).Round(time.Second).Seconds(), Ready: srv.Ready(),
		Listen: cfg.Listen.Addr(), ConfigSource: cfg.Source, Strategy: cfg.Strategy,
		Backends: len(ms), Available: healthy,
		RequestsTotal: m.Requests(), InFlight: m.InFlight(), RetriesTotal: m.Retries(),
		Latency: latencyOf(m.RequestLatency()),
	}
	if srv.Ready() {
		out.Listen = srv.Addr().String()
	}
	writeJSON(w, http.StatusOK, out)
}

// GET /healthz: the process is alive.
func (a *Admin) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
}

// GET /readyz: 200 while a configuration is in service and the proxy
// listener serves, 503 before and once shutdown began.
func (a *Admin) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !a.opts.Server.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready\n"))
		return
	}
	w.Write([]byte("ready\n"))
}

// writeJSON writes v indented (operators read it with curl).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError writes {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}
