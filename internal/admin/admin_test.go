package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/server"
	"github.com/lbproject/load_balancer/internal/telemetry"
	"github.com/lbproject/load_balancer/internal/upstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a running balancer (proxy and admin) over test backends.
type fixture struct {
	srv     *server.Server
	metrics *telemetry.Metrics
	admin   *Admin
	file    string // the config file Reload reads
	proxy   string // URL of the proxy listener
}

// newFixture writes yaml to a config file, starts a server on it with
// metrics and serves the proxy; token, if set, guards the admin API.
func newFixture(t *testing.T, yaml, token string) *fixture {
	t.Helper()
	f := &fixture{file: filepath.Join(t.TempDir(), "lb.yaml")}
	if err := os.WriteFile(f.file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f.file)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	f.metrics = telemetry.NewMetrics(telemetry.MetricsOptions{Version: "test"})
	f.srv, err = server.NewWithOptions(cfg, log, server.Options{
		Metrics:       f.metrics,
		OnHealthEvent: f.metrics.HealthEvent,
		OnReload:      func(r server.Reload) { f.metrics.ConfigReloaded(r.OK, r.Time) },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.metrics.SetSource(f.srv)
	if err := f.srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- f.srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.srv.Shutdown(ctx)
		<-served
	})
	f.proxy = "http://" + f.srv.Addr().String()
	for !f.srv.Ready() {
		time.Sleep(time.Millisecond) // Serve has not started yet
	}
	f.admin = New(Options{
		Server: f.srv, Metrics: f.metrics, Token: token, Version: "test", Log: log,
		Reload: func() server.Reload {
			return f.srv.Reload("admin API", func() (*config.Config, error) { return config.Load(f.file) })
		},
	})
	return f
}

// do sends a request to the admin handler.
func (f *fixture) do(method, target, token string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.admin.Handler().ServeHTTP(rec, req)
	return rec
}

// getJSON GETs target, wants 200 and decodes the body into v.
func (f *fixture) getJSON(t *testing.T, target string, v any) {
	t.Helper()
	rec := f.do("GET", target, "")
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s: Content-Type %q", target, ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", target, err, rec.Body)
	}
}

// testBackend is an HTTP backend that says its name.
func testBackend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

func hostPort(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func configFor(extra string, servers ...*httptest.Server) string {
	var b strings.Builder
	b.WriteString("health_check:\n  enabled: false\nstrategy: round-robin\nbackends:\n")
	for _, s := range servers {
		host, port, _ := strings.Cut(hostPort(s), ":")
		fmt.Fprintf(&b, "  - host: %s\n    port: %s\n", host, port)
	}
	return b.String() + extra
}

type backendsAnswer struct {
	Backends []backendJSON `json:"backends"`
}

func TestBackendsAndTraffic(t *testing.T) {
	a, b := testBackend(t, "a"), testBackend(t, "b")
	f := newFixture(t, configFor("", a, b), "")
	for range 10 {
		res, err := http.Get(f.proxy + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	var got backendsAnswer
	f.getJSON(t, "/api/v1/backends", &got)
	if len(got.Backends) != 2 {
		t.Fatalf("%d backends, want 2", len(got.Backends))
	}
	for i, s := range []*httptest.Server{a, b} {
		be := got.Backends[i]
		if be.Address != s.URL || be.ID != "http-"+strings.ReplaceAll(hostPort(s), ":", "-") {
			t.Errorf("backend %d: address %q id %q", i, be.Address, be.ID)
		}
		if be.State != "up" || !be.Healthy || be.Draining || be.Weight != 1 {
			t.Errorf("%s: state %q healthy %v draining %v weight %d", be.ID, be.State, be.Healthy, be.Draining, be.Weight)
		}
		if be.RequestsTotal != 5 || be.Responses["2xx"] != 5 || be.FailuresTotal != 0 || be.ErrorsTotal != 0 {
			t.Errorf("%s: requests %d responses %v failures %d errors %d, want 5 2xx", be.ID, be.RequestsTotal, be.Responses, be.FailuresTotal, be.ErrorsTotal)
		}
		if be.Latency.Samples != 5 || be.Latency.P50 <= 0 || be.Latency.P99 < be.Latency.P50 {
			t.Errorf("%s: latency %+v", be.ID, be.Latency)
		}
		if be.Connections == nil || be.Connections.Open < 1 || be.Connections.Dialed < 1 {
			t.Errorf("%s: connections %+v", be.ID, be.Connections)
		}
		if be.BytesOut != 5 {
			t.Errorf("%s: response bytes %d, want 5", be.ID, be.BytesOut)
		}
	}

	// One backend by id, by address and by host:port.
	for _, id := range []string{got.Backends[0].ID, a.URL, hostPort(a)} {
		var one backendJSON
		f.getJSON(t, "/api/v1/backends/"+strings.ReplaceAll(id, "/", "%2F"), &one)
		if one.Address != a.URL {
			t.Errorf("backend %q: got %q", id, one.Address)
		}
	}
	if rec := f.do("GET", "/api/v1/backends/http-10.9.9.9-1", ""); rec.Code != 404 {
		t.Errorf("unknown backend: %d", rec.Code)
	}

	var st struct {
		Ready         bool   `json:"ready"`
		RequestsTotal uint64 `json:"requests_total"`
		Backends      int    `json:"backends"`
		Available     int    `json:"backends_available"`
		Strategy      string `json:"strategy"`
	}
	f.getJSON(t, "/api/v1/status", &st)
	if !st.Ready || st.RequestsTotal != 10 || st.Backends != 2 || st.Available != 2 || st.Strategy != "round-robin" {
		t.Errorf("status %+v", st)
	}
}

func TestDrainAndEnable(t *testing.T) {
	a, b := testBackend(t, "a"), testBackend(t, "b")
	f := newFixture(t, configFor("", a, b), "")
	id := BackendID(upstream.Address{Scheme: "http", Host: "127.0.0.1", Port: portOf(a)})

	rec := f.do("POST", "/api/v1/backends/"+id+"/drain", "")
	if rec.Code != 200 {
		t.Fatalf("drain: %d %s", rec.Code, rec.Body)
	}
	var be backendJSON
	json.Unmarshal(rec.Body.Bytes(), &be)
	if !be.Draining || be.State != "draining" || len(be.DrainSources) != 1 || be.DrainSources[0] != "admin" {
		t.Fatalf("after drain: %+v", be)
	}
	for range 6 {
		res, err := http.Get(f.proxy + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != "b" {
			t.Fatalf("a drained backend served a request (%q)", body)
		}
	}
	rec = f.do("POST", "/api/v1/backends/"+id+"/enable", "")
	json.Unmarshal(rec.Body.Bytes(), &be)
	if rec.Code != 200 || be.Draining || be.State != "up" || len(be.DrainSources) != 0 {
		t.Fatalf("after enable: %d %+v", rec.Code, be)
	}
	if rec := f.do("POST", "/api/v1/backends/nope/drain", ""); rec.Code != 404 {
		t.Errorf("drain of an unknown backend: %d", rec.Code)
	}
	if rec := f.do("GET", "/api/v1/backends/"+id+"/drain", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET drain: %d, want 405", rec.Code)
	}
}

func portOf(s *httptest.Server) int {
	_, port, _ := strings.Cut(hostPort(s), ":")
	var n int
	fmt.Sscan(port, &n)
	return n
}

func TestTokenGuardsStateChanges(t *testing.T) {
	a := testBackend(t, "a")
	f := newFixture(t, configFor("", a), "s3cret-token")
	drain := "/api/v1/backends/" + hostPort(a) + "/drain"
	for _, c := range []struct {
		name   string
		header []string
		want   int
	}{
		{"no token", nil, 401},
		{"wrong token", []string{"Authorization", "Bearer nope"}, 401},
		{"not bearer", []string{"Authorization", "Basic czNjcmV0LXRva2Vu"}, 401},
		{"right token", []string{"Authorization", "Bearer s3cret-token"}, 200},
		{"right token, lower-case scheme", []string{"Authorization", "bearer s3cret-token"}, 200},
	} {
		for _, target := range []string{drain, "/api/v1/reload"} {
			rec := f.do("POST", target, "", c.header...)
			if rec.Code != c.want {
				t.Errorf("%s: POST %s: %d, want %d (%s)", c.name, target, rec.Code, c.want, rec.Body)
			}
			if c.want == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: no WWW-Authenticate: Bearer", c.name)
			}
		}
	}
	// Reads stay open.
	for _, target := range []string{"/api/v1/backends", "/api/v1/config", "/api/v1/events", "/api/v1/status", "/metrics", "/healthz", "/readyz", "/"} {
		if rec := f.do("GET", target, ""); rec.Code != 200 {
			t.Errorf("GET %s without token: %d", target, rec.Code)
		}
	}
	// A browser on another origin cannot POST, token or not.
	rec := f.do("POST", drain, "s3cret-token", "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site")
	if rec.Code != http.StatusForbidden {
		t.Errorf("cross-origin POST: %d, want 403", rec.Code)
	}
}

func TestCrossOriginRefusedWithoutToken(t *testing.T) {
	a := testBackend(t, "a")
	f := newFixture(t, configFor("", a), "")
	drain := "/api/v1/backends/" + hostPort(a) + "/drain"
	if rec := f.do("POST", drain, "", "Sec-Fetch-Site", "cross-site"); rec.Code != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", rec.Code)
	}
	if rec := f.do("POST", drain, "", "Sec-Fetch-Site", "same-origin"); rec.Code != 200 {
		t.Errorf("same-origin POST (the dashboard): %d, want 200", rec.Code)
	}
}

func TestConfigIsRedacted(t *testing.T) {
	a := testBackend(t, "a")
	f := newFixture(t, configFor("sticky:\n  secret: hush-hush\n", a), "")
	rec := f.do("GET", "/api/v1/config", "")
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "hush-hush") || !strings.Contains(rec.Body.String(), config.RedactedSecret) {
		t.Fatalf("config: %d\n%s", rec.Code, rec.Body)
	}
	var cfg config.Config
	if err := json.Unmarshal(rec.Body.Bytes(), &cfg); err != nil || len(cfg.Backends) != 1 || cfg.Strategy != "round-robin" {
		t.Fatalf("config %+v: %v", cfg, err)
	}
}

func TestReloadAndEvents(t *testing.T) {
	a, b := testBackend(t, "a"), testBackend(t, "b")
	f := newFixture(t, configFor("", a), "")

	// A good file: 200, the new backend is in service.
	if err := os.WriteFile(f.file, []byte(configFor("", a, b)), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := f.do("POST", "/api/v1/reload", "")
	var r reloadJSON
	json.Unmarshal(rec.Body.Bytes(), &r)
	if rec.Code != 200 || !r.OK || r.Backends != 2 || r.Trigger != "admin API" {
		t.Fatalf("good reload: %d %s", rec.Code, rec.Body)
	}
	var got backendsAnswer
	f.getJSON(t, "/api/v1/backends", &got)
	if len(got.Backends) != 2 {
		t.Fatalf("after reload: %d backends", len(got.Backends))
	}

	// A broken file: 422 naming file:line; the running config stays.
	if err := os.WriteFile(f.file, []byte(configFor("strategy: nope\n", a)), 0o644); err != nil {
		t.Fatal(err)
	}
	rec = f.do("POST", "/api/v1/reload", "")
	json.Unmarshal(rec.Body.Bytes(), &r)
	if rec.Code != http.StatusUnprocessableEntity || r.OK || !strings.Contains(r.Error, f.file+":") || r.Backends != 2 {
		t.Fatalf("bad reload: %d %s", rec.Code, rec.Body)
	}
	f.getJSON(t, "/api/v1/backends", &got)
	if len(got.Backends) != 2 {
		t.Fatalf("after a failed reload: %d backends", len(got.Backends))
	}

	var ev struct {
		Health  []healthEventJSON `json:"health"`
		Reloads []reloadJSON      `json:"reloads"`
	}
	f.getJSON(t, "/api/v1/events", &ev)
	if len(ev.Reloads) != 3 || ev.Reloads[0].OK || !ev.Reloads[1].OK || ev.Reloads[2].Trigger != "startup" {
		t.Fatalf("reloads, newest first: %+v", ev.Reloads)
	}
	if ev.Health == nil {
		t.Errorf("health: null, want a list")
	}

	rec = f.do("GET", "/metrics", "")
	for _, line := range []string{
		`load_balancer_config_reloads_total{result="success"} 1`,
		`load_balancer_config_reloads_total{result="failure"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

func TestHealthEventsShown(t *testing.T) {
	a := testBackend(t, "a")
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // refuses connections
	yaml := strings.Replace(configFor("", a, dead), "health_check:\n  enabled: false\n", "health_check:\n  interval: 10s\n  timeout: 500ms\n", 1)
	f := newFixture(t, yaml, "")
	f.srv.CheckHealth(context.Background(), 2*time.Second)

	var ev struct {
		Health []healthEventJSON `json:"health"`
	}
	f.getJSON(t, "/api/v1/events", &ev)
	if len(ev.Health) != 1 || ev.Health[0].Backend != dead.URL || ev.Health[0].State != "down" || ev.Health[0].Source != "initial" || ev.Health[0].Reason == "" {
		t.Fatalf("health events: %+v", ev.Health)
	}
	var got backendsAnswer
	f.getJSON(t, "/api/v1/backends", &got)
	down := got.Backends[1]
	if down.State != "down" || down.Healthy || down.Reason == "" || down.Health == nil || !down.Health.ActiveChecks {
		t.Errorf("dead backend: %+v", down)
	}
	rec := f.do("GET", "/metrics", "")
	if want := `load_balancer_backend_up{backend="` + dead.URL + `"} 0`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics lacks %s", want)
	}
	if want := `load_balancer_backend_health_transitions_total{backend="` + dead.URL + `",to="down"} 1`; !eventually(func() bool {
		return strings.Contains(f.do("GET", "/metrics", "").Body.String(), want)
	}) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// eventually polls cond for up to 2 seconds.
func eventually(cond func() bool) bool {
	for range 200 {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func TestProbesAndPages(t *testing.T) {
	a := testBackend(t, "a")
	f := newFixture(t, configFor("", a), "")
	for _, c := range []struct {
		target, status, contentType, contains string
	}{
		{"/healthz", "200", "text/plain", "ok"},
		{"/readyz", "200", "text/plain", "ready"},
		{"/", "200", "text/html", "<title>load_balancer"},
		{"/static/app.js", "200", "text/javascript", "/api/v1/backends"},
		{"/static/style.css", "200", "text/css", "--up"},
		{"/static/index.html", "404", "", ""},
		{"/metrics", "200", "text/plain", "load_balancer_build_info"},
		{"/api/v1/nope", "404", "", ""},
		{"/nope", "404", "", ""},
	} {
		rec := f.do("GET", c.target, "")
		if fmt.Sprint(rec.Code) != c.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), c.contentType) || !strings.Contains(rec.Body.String(), c.contains) {
			t.Errorf("GET %s: %d %q, want %s %q containing %q", c.target, rec.Code, rec.Header().Get("Content-Type"), c.status, c.contentType, c.contains)
		}
	}
	if rec := f.do("GET", "/api/v1/reload", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/v1/reload: %d, want 405", rec.Code)
	}
	if csp := f.do("GET", "/", "").Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("dashboard CSP %q", csp)
	}

	// Not ready once shutdown began.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.srv.Shutdown(ctx)
	if rec := f.do("GET", "/readyz", ""); rec.Code != 503 {
		t.Errorf("readyz after shutdown: %d, want 503", rec.Code)
	}
	if rec := f.do("GET", "/healthz", ""); rec.Code != 200 {
		t.Errorf("healthz after shutdown: %d, want 200", rec.Code)
	}
}

func TestListenServeShutdown(t *testing.T) {
	a := testBackend(t, "a")
	f := newFixture(t, configFor("", a), "")
	if err := f.admin.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- f.admin.Serve() }()
	res, err := http.Get("http://" + f.admin.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("healthz: %d", res.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := f.admin.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestBackendID(t *testing.T) {
	for _, c := range []struct {
		addr upstream.Address
		want string
	}{
		{upstream.Address{Scheme: "http", Host: "127.0.0.1", Port: 9001}, "http-127.0.0.1-9001"},
		{upstream.Address{Scheme: "https", Host: "api.example.com", Port: 443}, "https-api.example.com-443"},
		{upstream.Address{Scheme: "http", Host: "::1", Port: 8080}, "http-__1-8080"},
		{upstream.Address{Scheme: "http", Host: "fe80::1%eth0", Port: 80}, "http-fe80__1_eth0-80"},
	} {
		if got := BackendID(c.addr); got != c.want {
			t.Errorf("BackendID(%v) = %q, want %q", c.addr, got, c.want)
		}
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9901": true, "localhost:9901": true, "[::1]:9901": true, "127.0.0.2:0": true,
		":9901": false, "0.0.0.0:9901": false, "[::]:9901": false, "10.1.2.3:9901": false, "admin.example:9901": false, "nonsense": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	if tok, err := ReadToken(write("ok", "  abc123\n")); err != nil || tok != "abc123" {
		t.Errorf("ReadToken: %q %v", tok, err)
	}
	for _, p := range []string{write("empty", " \n"), write("two", "a b\n"), filepath.Join(dir, "missing")} {
		if _, err := ReadToken(p); err == nil {
			t.Errorf("ReadToken(%s): no error", filepath.Base(p))
		}
	}
}
