package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// adminYAML is a round-robin config over the test backends, with health
// checks slow enough to stay out of the way.
func adminYAML(bs ...*testBackend) string {
	return lbConfig("round-robin", "health_check:\n  interval: 5s\n", backendsOf(bs...)...)
}

// TestAdminMetricsOnlyOnAdminPort checks that /metrics and the API live on
// the admin listener, and that the same paths on the proxy port are proxied
// to a backend like any other request.
func TestAdminMetricsOnlyOnAdminPort(t *testing.T) {
	t.Parallel()
	a, b := newTestBackend(t, "a"), newTestBackend(t, "b")
	lb := startAdminBalancer(t, adminYAML(a, b))
	c := client(t)

	for _, path := range []string{"/metrics", "/api/v1/backends", "/healthz", "/readyz", "/"} {
		r := get(t, c, lb.URL(path))
		if r.Status != 200 || r.Backend == "" {
			t.Errorf("GET %s on the proxy port: status %d, X-Backend %q; want it served by a backend", path, r.Status, r.Backend)
		}
	}
	if a.requests.Load()+b.requests.Load() != 5 {
		t.Errorf("backends saw %d requests, want 5", a.requests.Load()+b.requests.Load())
	}

	status, body := adminCall(t, "GET", lb.AdminURL("/metrics"), "")
	if status != 200 {
		t.Fatalf("admin /metrics: %d", status)
	}
	for _, want := range []string{
		`load_balancer_requests_total{backend="http://` + a.addr + `",class="2xx",method="GET"} 3`,
		`load_balancer_requests_total{backend="http://` + b.addr + `",class="2xx",method="GET"} 2`,
		`load_balancer_backend_up{backend="http://` + a.addr + `"} 1`,
		`load_balancer_backend_connections_open{backend="http://` + a.addr + `"} 1`,
		`load_balancer_requests_in_flight 0`,
		`load_balancer_request_duration_seconds_count 5`,
		`load_balancer_build_info{`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("admin /metrics lacks %q", want)
		}
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		if status, body := adminCall(t, "GET", lb.AdminURL(path), ""); status != 200 || strings.TrimSpace(body) != want {
			t.Errorf("admin %s: %d %q", path, status, body)
		}
	}
}

// TestAdminDrainAndEnable drains a backend through the API: it gets no new
// requests until it is enabled again.
func TestAdminDrainAndEnable(t *testing.T) {
	t.Parallel()
	a, b := newTestBackend(t, "a"), newTestBackend(t, "b")
	lb := startAdminBalancer(t, adminYAML(a, b))
	c := client(t)
	id := apiBackends(t, lb)[a.addr].ID
	if id == "" {
		t.Fatalf("backend %s not in the API", a.addr)
	}

	var be apiBackend
	adminJSON(t, "POST", lb.AdminURL("/api/v1/backends/"+id+"/drain"), "", 200, &be)
	if !be.Draining || be.State != "draining" {
		t.Fatalf("after drain: %+v", be)
	}
	before := a.requests.Load()
	for range 10 {
		if r := get(t, c, lb.URL("/")); r.Status != 200 || r.Backend != "b" {
			t.Fatalf("while a is drained: status %d from %q", r.Status, r.Backend)
		}
	}
	if a.requests.Load() != before {
		t.Fatalf("the drained backend got %d requests", a.requests.Load()-before)
	}
	lb.WaitForLine(0, 5*time.Second, `msg="admin: backend drained"`)

	// By address works as well as by id.
	adminJSON(t, "POST", lb.AdminURL("/api/v1/backends/"+a.addr+"/enable"), "", 200, &be)
	if be.Draining || be.State != "up" {
		t.Fatalf("after enable: %+v", be)
	}
	if seen := servedBy(t, c, lb.URL("/"), 10); seen["a"] != 5 || seen["b"] != 5 {
		t.Fatalf("after enable, round robin sent %v, want 5 each", seen)
	}
}

// TestAdminReload reloads through the API: a changed file takes effect, a
// broken one is reported with file:line and the old config keeps serving.
func TestAdminReload(t *testing.T) {
	t.Parallel()
	a, b := newTestBackend(t, "a"), newTestBackend(t, "b")
	lb := startAdminBalancer(t, adminYAML(a))
	c := client(t)
	file := filepath.Join(lb.Dir, "lb.yaml")

	if err := os.WriteFile(file, []byte(adminYAML(a, b)), 0o644); err != nil {
		t.Fatal(err)
	}
	var r struct {
		OK       bool   `json:"ok"`
		Error    string `json:"error"`
		Backends int    `json:"backends"`
		Trigger  string `json:"trigger"`
	}
	adminJSON(t, "POST", lb.AdminURL("/api/v1/reload"), "", 200, &r)
	if !r.OK || r.Backends != 2 || r.Trigger != "admin API" {
		t.Fatalf("reload: %+v", r)
	}
	if seen := servedBy(t, c, lb.URL("/"), 4); seen["a"] != 2 || seen["b"] != 2 {
		t.Fatalf("after the reload: %v, want 2 each", seen)
	}

	broken := adminYAML(a, b) + "retries:\n  attempts: 99\n"
	if err := os.WriteFile(file, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	adminJSON(t, "POST", lb.AdminURL("/api/v1/reload"), "", http.StatusUnprocessableEntity, &r)
	line := strings.Count(broken, "\n") // "attempts" is on the last line
	if r.OK || !strings.Contains(r.Error, "lb.yaml:"+strconv.Itoa(line)+":") || !strings.Contains(r.Error, "retries.attempts") {
		t.Fatalf("broken reload: %+v; want an error naming lb.yaml:%d and retries.attempts", r, line)
	}
	if seen := servedBy(t, c, lb.URL("/"), 4); seen["a"] != 2 || seen["b"] != 2 {
		t.Fatalf("after the failed reload: %v, want the old config (2 each)", seen)
	}

	var ev struct {
		Reloads []struct {
			OK      bool   `json:"ok"`
			Trigger string `json:"trigger"`
			Error   string `json:"error"`
		} `json:"reloads"`
	}
	adminJSON(t, "GET", lb.AdminURL("/api/v1/events"), "", 200, &ev)
	if len(ev.Reloads) != 3 || ev.Reloads[0].OK || !ev.Reloads[1].OK || ev.Reloads[2].Trigger != "startup" {
		t.Fatalf("reload history: %+v", ev.Reloads)
	}
	_, metrics := adminCall(t, "GET", lb.AdminURL("/metrics"), "")
	for _, want := range []string{`load_balancer_config_reloads_total{result="success"} 1`, `load_balancer_config_reloads_total{result="failure"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// A SIGHUP reload counts too.
	lb.Signal(syscall.SIGHUP)
	lb.WaitForLine(0, 5*time.Second, `trigger=SIGHUP`)
	if !eventually(5*time.Second, func() bool {
		_, m := adminCall(t, "GET", lb.AdminURL("/metrics"), "")
		return strings.Contains(m, `load_balancer_config_reloads_total{result="failure"} 2`)
	}) {
		t.Errorf("the SIGHUP reload of the broken file was not counted")
	}
}

// TestAdminToken requires the token for POSTs and leaves GETs open.
func TestAdminToken(t *testing.T) {
	t.Parallel()
	a := newTestBackend(t, "a")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("correct-horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lb := startAdminBalancer(t, adminYAML(a), "--admin-token-file", tokenFile)
	drain := lb.AdminURL("/api/v1/backends/" + a.addr + "/drain")

	for _, tok := range []string{"", "wrong"} {
		if status, _ := adminCall(t, "POST", drain, tok); status != 401 {
			t.Errorf("POST with token %q: %d, want 401", tok, status)
		}
		if status, _ := adminCall(t, "POST", lb.AdminURL("/api/v1/reload"), tok); status != 401 {
			t.Errorf("reload with token %q: %d, want 401", tok, status)
		}
	}
	if apiBackends(t, lb)[a.addr].Draining {
		t.Fatalf("a POST without the token drained the backend")
	}
	if status, body := adminCall(t, "POST", drain, "correct-horse"); status != 200 {
		t.Fatalf("POST with the token: %d %s", status, body)
	}
	if !apiBackends(t, lb)[a.addr].Draining {
		t.Fatalf("the drain with the token did not drain")
	}
	for _, path := range []string{"/metrics", "/api/v1/config", "/api/v1/events", "/"} {
		if status, _ := adminCall(t, "GET", lb.AdminURL(path), ""); status != 200 {
			t.Errorf("GET %s without token: %d", path, status)
		}
	}
	if strings.Contains(lb.Output(), "without a token") {
		t.Errorf("warned about a missing token although there is one")
	}
}

// TestAdminFlags covers --admin-addr off, a bad value, and the warning for
// an admin listener beyond loopback without a token.
func TestAdminFlags(t *testing.T) {
	t.Parallel()
	a := newTestBackend(t, "a")

	off := startBalancer(t, adminYAML(a), "--admin-addr", "off")
	off.WaitForLine(0, 5*time.Second, "admin listener off")
	if r := get(t, client(t), off.URL("/")); r.Status != 200 {
		t.Errorf("with the admin listener off: status %d", r.Status)
	}

	res := runLB(t, "", 10*time.Second, "--admin-addr", "nowhere")
	if res.Code != 2 || !strings.Contains(res.Stderr, `invalid admin address "nowhere"`) {
		t.Errorf("--admin-addr nowhere: exit %d, stderr %q", res.Code, res.Stderr)
	}
	res = runLB(t, "", 10*time.Second, "--admin-addr", "127.0.0.1:0", "--admin-token-file", "missing-token")
	if res.Code != 1 || !strings.Contains(res.Stderr, "missing-token") {
		t.Errorf("missing token file: exit %d, stderr %q", res.Code, res.Stderr)
	}

	open := startBalancer(t, adminYAML(a), "--admin-addr", "0.0.0.0:0")
	open.WaitForLine(0, 5*time.Second, "admin listener reachable beyond loopback without a token")
}

// TestAdminDefaultAddressTaken starts a balancer whose admin listener's
// default address is taken: the balancer serves anyway and says why there
// is no admin listener.
func TestAdminDefaultAddressTaken(t *testing.T) {
	t.Parallel()
	a := newTestBackend(t, "a")
	ln, err := net.Listen("tcp", "127.0.0.1:9901")
	if err != nil {
		t.Skipf("cannot hold the default admin address for the test: %v", err)
	}
	defer ln.Close()
	lb := startBalancerArgs(t, adminYAML(a)) // no --admin-addr: the default
	lb.WaitForLine(0, 5*time.Second, "admin listener not started: its default address is taken")
	if r := get(t, client(t), lb.URL("/")); r.Status != 200 {
		t.Errorf("status %d", r.Status)
	}
}

// TestAdminDuringShutdown checks that the admin listener outlives the
// proxy's drain, reporting not ready, and closes with the process.
func TestAdminDuringShutdown(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	arrived := make(chan struct{}, 1)
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go slow.Serve(ln)
	defer slow.Close()

	lb := startAdminBalancer(t, lbConfig("", "health_check:\n  enabled: false\n", backendsAt(ln.Addr().String())...))
	c := client(t)
	done := make(chan getResult, 1)
	go func() {
		r, _ := tryGet(c, lb.URL("/slow"))
		done <- r
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never reached the backend")
	}
	lb.Signal(syscall.SIGTERM)
	if !eventually(5*time.Second, func() bool {
		status, _ := adminCall(t, "GET", lb.AdminURL("/readyz"), "")
		return status == http.StatusServiceUnavailable
	}) {
		t.Fatalf("/readyz did not turn 503 while draining")
	}
	if status, _ := adminCall(t, "GET", lb.AdminURL("/healthz"), ""); status != 200 {
		t.Errorf("/healthz while draining: %d", status)
	}
	once.Do(func() { close(release) })
	if r := <-done; r.Status != 200 || r.Body != "done" {
		t.Errorf("the request in flight: %+v", r)
	}
	if err := lb.Wait(15 * time.Second); err != nil {
		t.Errorf("exit: %v", err)
	}
	if !refusesConnections(lb.Admin) {
		t.Errorf("the admin listener still accepts connections after exit")
	}
}
