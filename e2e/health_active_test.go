package e2e

// Active health checks with the real binaries: a killed lb_backend leaves
// rotation within the fall threshold and comes back within the rise
// threshold once it runs again; HTTP checks judge status, body and the
// per-backend override.

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestHealthKilledBackendLeavesAndRejoins: three lb_backend processes,
// probes every 100ms with fall 2 and rise 2 (passive checks off, so that
// only probes decide). B is killed: "backend down" follows within the fall
// threshold, after which no request is even tried on B. B is started again
// on the same port: "backend up" follows within the rise threshold and B
// serves again. Two clients send requests the whole time and none fails.
func TestHealthKilledBackendLeavesAndRejoins(t *testing.T) {
	t.Parallel()
	procs, entries := startDemoBackends(t, "A", "B", "C")
	bAddr := entries[1].Addr
	interval, fall, rise, jitter := 100*time.Millisecond, 2, 2, 0.1
	lb := startBalancer(t, lbConfig("round-robin", lcFastHealth, entries...))
	bKey := "backend=http://" + bAddr

	load := lcStartLoad(t, lb.URL("/load"), 2, 5*time.Millisecond)
	load.waitServed(t, "B", 5, 10*time.Second)

	from := len(lb.Output())
	killed := time.Now()
	kill(t, procs["B"])
	down, after := lb.WaitForLine(from, 10*time.Second, `msg="backend down"`, bKey)
	detection := logTime(down).Sub(killed)
	t.Logf("MEASURE detection (SIGKILL → \"backend down\"): %s; line: %s", detection.Round(time.Millisecond), down)
	if !strings.Contains(down, "source=active") || !strings.Contains(down, "connection refused") {
		t.Errorf("down event %q, want source=active with the probe's reason (connection refused)", down)
	}
	// Fall probes, each at most interval·(1+jitter) apart, the first at most
	// that long after the kill, plus slack for a loaded race-enabled build.
	if limit := time.Duration(fall)*time.Duration(float64(interval)*(1+jitter)) + time.Second; detection > limit {
		t.Errorf("B was marked down %s after it was killed, want at most %s (fall %d × interval %s + slack)", detection, limit, fall, interval)
	}

	// Out of rotation: requests sent from now on are never tried on B
	// (their access lines show one attempt).
	c := client(t)
	if got := servedBy(t, c, lb.URL("/after-down"), 30); got["B"] != 0 || got["A"] == 0 || got["C"] == 0 {
		t.Errorf("after B was marked down: served by %v, want A and C only", got)
	}
	if lines := lcAccessLines(t, lb.process, after, "/after-down", 30); lcCount(lines, " attempts=1 ") != 30 {
		t.Errorf("%d of 30 requests after the down event were served at the first attempt, want all (B out of rotation); access lines:\n%s",
			lcCount(lines, " attempts=1 "), strings.Join(lines, "\n"))
	}

	// Revive B on the same port.
	from = len(lb.Output())
	revived := time.Now()
	startDemoBackendAt(t, "B", bAddr)
	listening := time.Now()
	up, _ := lb.WaitForLine(from, 10*time.Second, `msg="backend up"`, bKey)
	recovery := logTime(up).Sub(listening)
	t.Logf("MEASURE recovery (revived B accepts connections → \"backend up\"): %s (%s after starting the process); line: %s",
		recovery.Round(time.Millisecond), logTime(up).Sub(revived).Round(time.Millisecond), up)
	if !strings.Contains(up, "2 consecutive successes") {
		t.Errorf("up event %q, want the reason \"2 consecutive successes\" (rise 2)", up)
	}
	if limit := time.Duration(rise)*time.Duration(float64(interval)*(1+jitter)) + time.Second; recovery > limit {
		t.Errorf("B was marked up %s after it listened again, want at most %s (rise %d × interval %s + slack)", recovery, limit, rise, interval)
	}
	load.waitServed(t, "B", 5, 5*time.Second)

	load.Stop()
	if f := load.failed.Load(); f != 0 {
		t.Errorf("%d of %d requests failed while B died and came back, first: %v", f, f+load.ok.Load(), load.Failures())
	}
	t.Logf("load: %d requests, served %v", load.ok.Load(), load.Served())
}

// TestHealthHTTPCheck: an http check of /health expecting status 200 and
// the body "ready". A backend answering 503 there (while it accepts TCP
// and serves /) and one whose body does not match are taken out of
// rotation at startup; one whose own health_check probes /ready instead is
// in. Switching the answers moves backends out and in at run time.
func TestHealthHTTPCheck(t *testing.T) {
	t.Parallel()
	ok, sick, wrongBody, override := newTestBackend(t, "ok"), newTestBackend(t, "sick"), newTestBackend(t, "wrongbody"), newTestBackend(t, "override")
	sick.setHealth("/health", http.StatusServiceUnavailable, "ready")
	wrongBody.setHealth("/health", http.StatusOK, "starting")
	override.setHealth("/health", http.StatusServiceUnavailable, "not here")
	global := "health_check:\n  path: /health\n  expect_status: \"200\"\n  expect_body: ready\n  host: health.internal\n" +
		"  interval: 100ms\n  timeout: 80ms\n  fall: 2\n  rise: 2\npassive_health:\n  enabled: false\n"
	lb := startBalancer(t, lbConfig("round-robin", global,
		backendEntry{Addr: ok.addr}, backendEntry{Addr: sick.addr}, backendEntry{Addr: wrongBody.addr},
		backendEntry{Addr: override.addr, Extra: "health_check:\n  path: /ready"}))
	key := func(b *testBackend) string { return "backend=http://" + b.addr }

	line, _ := lb.WaitForLine(0, 5*time.Second, `msg="backend down"`, key(sick))
	if !strings.Contains(line, "503") {
		t.Errorf("down event of the backend answering 503: %q, want the status in the reason", line)
	}
	line, _ = lb.WaitForLine(0, 5*time.Second, `msg="backend down"`, key(wrongBody))
	if !strings.Contains(line, `does not contain`) || !strings.Contains(line, "ready") {
		t.Errorf("down event of the backend with the wrong body: %q, want a reason naming the expected body", line)
	}
	if h := ok.lastProbeHost(); h != "health.internal" {
		t.Errorf("probes sent Host %q, want health.internal (health_check.host)", h)
	}

	c := client(t)
	got := servedBy(t, c, lb.URL("/"), 40)
	if got["ok"] == 0 || got["override"] == 0 || got["sick"]+got["wrongbody"] != 0 {
		t.Errorf("served by %v, want ok and override only (sick answers 503 on /health, wrongbody lacks \"ready\")", got)
	}
	if n := sick.requests.Load() + wrongBody.requests.Load(); n != 0 {
		t.Errorf("backends failing their check received %d requests", n)
	}
	for _, l := range linesContaining(lb.Output(), `msg="backend down"`) {
		if strings.Contains(l, key(ok)) || strings.Contains(l, key(override)) {
			t.Errorf("a passing backend was marked down: %s", l)
		}
	}

	// sick recovers: up after rise good probes, then it gets traffic.
	from := len(lb.Output())
	sick.setHealth("/health", http.StatusOK, "ready")
	line, _ = lb.WaitForLine(from, 5*time.Second, `msg="backend up"`, key(sick))
	if !strings.Contains(line, "2 consecutive successes") {
		t.Errorf("up event %q, want reason \"2 consecutive successes\"", line)
	}
	if got := servedBy(t, c, lb.URL("/"), 20); got["sick"] == 0 {
		t.Errorf("after sick passed its check again: served by %v, want sick among them", got)
	}

	// ok fails: an answer outside expect_status takes it out.
	from = len(lb.Output())
	ok.setHealth("/health", http.StatusInternalServerError, "ready")
	line, _ = lb.WaitForLine(from, 5*time.Second, `msg="backend down"`, key(ok))
	if !strings.Contains(line, "500 not in 200") {
		t.Errorf("down event %q, want reason \"http status 500 not in 200\"", line)
	}
	before := ok.requests.Load()
	if got := servedBy(t, c, lb.URL("/"), 30); got["ok"] != 0 {
		t.Errorf("after ok failed its check: served by %v, want no ok", got)
	}
	if n := ok.requests.Load() - before; n != 0 {
		t.Errorf("backend ok received %d requests after it was marked down", n)
	}
}

// TestHealthPanicMode: every backend is marked down by its http check, but
// one of them (it answers 503 on /health only) does serve. Requests still
// succeed: with no healthy backend left the balancer tries the ones marked
// down rather than refusing everything.
func TestHealthPanicMode(t *testing.T) {
	t.Parallel()
	alive := newTestBackend(t, "alive")
	alive.setHealth("/health", http.StatusServiceUnavailable, "maintenance")
	dead := deadAddr(t)
	global := "health_check:\n  path: /health\n  interval: 100ms\n  timeout: 80ms\n"
	lb := startBalancer(t, lbConfig("round-robin", global, backendsAt(dead, alive.addr)...))
	lb.WaitForLine(0, 5*time.Second, `msg="backend down"`, "backend=http://"+alive.addr)
	lb.WaitForLine(0, 5*time.Second, `msg="backend down"`, "backend=http://"+dead)

	c := client(t)
	if got := servedBy(t, c, lb.URL("/panic"), 20); got["alive"] != 20 {
		t.Errorf("with every backend marked down: served by %v, want all 20 by the one that answers", got)
	}
	// Concurrent clients too.
	res := spread(c, lb.URL("/panic-concurrent"), 60, 4)
	if len(res.Failures) > 0 {
		t.Errorf("%d of 60 concurrent requests failed in panic mode, first: %s", len(res.Failures), res.Failures[0])
	}
}

// TestHealthTCPRefusedAtStartup: a backend that refuses connections when
// the balancer starts is out of rotation from the first request (the
// initial round of probes), and a first request is never refused because
// probes have not run.
func TestHealthTCPRefusedAtStartup(t *testing.T) {
	t.Parallel()
	a := newTestBackend(t, "a")
	dead := deadAddr(t)
	lb := startBalancer(t, lbConfig("round-robin", "health_check:\n  interval: 1s\n  timeout: 500ms\n", backendsAt(dead, a.addr)...))
	line, _ := lb.WaitForLine(0, time.Second, `msg="backend down"`, "backend=http://"+dead)
	if !strings.Contains(line, "source=initial") {
		t.Errorf("down event %q, want source=initial", line)
	}
	c := client(t)
	servedBy(t, c, lb.URL("/first"), 10)
	if lines := lcAccessLines(t, lb.process, 0, "/first", 10); lcCount(lines, " attempts=1 ") != 10 {
		t.Errorf("%d of 10 first requests were served at the first attempt, want all (the dead backend is known down):\n%s",
			lcCount(lines, " attempts=1 "), strings.Join(lines, "\n"))
	}
}

// TestHealthHTTPSProbes: an https backend is probed over TLS (the probe's
// request arrives on a TLS connection); a plain-HTTP server configured as
// https fails its probes' handshake and is taken out of rotation.
func TestHealthHTTPSProbes(t *testing.T) {
	t.Parallel()
	var tlsProbes, plainProbes atomic.Int64
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", "secure")
		if r.URL.Path == "/health" {
			if r.TLS != nil {
				tlsProbes.Add(1)
			} else {
				plainProbes.Add(1)
			}
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(secure.Close)
	plain := newTestBackend(t, "plain")
	entry := func(addr string) backendEntry {
		host, port, _ := net.SplitHostPort(addr)
		return backendEntry{Addr: net.JoinHostPort("https://"+host, port), Extra: "tls:\n  insecure_skip_verify: true"}
	}
	global := "health_check:\n  path: /health\n  interval: 100ms\n  timeout: 80ms\n"
	lb := startBalancer(t, lbConfig("round-robin", global, entry(secure.Listener.Addr().String()), entry(plain.addr)))
	down, _ := lb.WaitForLine(0, 5*time.Second, `msg="backend down"`, "backend=https://"+plain.addr)
	if !strings.Contains(down, "tls") {
		t.Errorf("down event of the plain server configured as https: %q, want a TLS handshake reason", down)
	}
	if !eventually(3*time.Second, func() bool { return tlsProbes.Load() >= 2 }) || plainProbes.Load() != 0 {
		t.Errorf("the https backend got %d probes over TLS and %d in the clear, want them all over TLS", tlsProbes.Load(), plainProbes.Load())
	}
	if l := linesContaining(lb.Output(), `msg="backend down"`, "backend=https://"+secure.Listener.Addr().String()); len(l) != 0 {
		t.Errorf("the https backend was marked down: %v", l)
	}
	if got := servedBy(t, client(t), lb.URL("/"), 10); got["secure"] != 10 {
		t.Errorf("served %v, want the https backend only", got)
	}
}
