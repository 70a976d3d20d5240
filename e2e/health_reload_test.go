package e2e

// Health state belongs to the backend, not to the config snapshot: a
// backend marked down stays down across reloads that change other things
// (other backends, the probe settings), with no flap to healthy.

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHealthStateSurvivesReload: B fails its http check and is down from
// startup. Three reloads follow under continuous load: one adds backends,
// one changes the global probe interval (every prober restarts), one
// changes B's own check (each also adds a backend that refuses
// connections, which must go down before it takes any request). After each, until B has been probed
// three more times, B gets no request and no "backend up" event. When B's
// check passes again it comes back.
func TestHealthStateSurvivesReload(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "A"), newTestBackend(t, "B"), newTestBackend(t, "C")
	b.setHealth("/health", http.StatusServiceUnavailable, "sick")
	dead := []string{deadAddr(t), deadAddr(t), deadAddr(t)}
	health := func(interval string) string {
		return "health_check:\n  path: /health\n  interval: " + interval + "\n  timeout: 80ms\n  fall: 2\n  rise: 2\n" +
			"passive_health:\n  enabled: false\n"
	}
	bKey := "backend=http://" + b.addr
	lb := startBalancer(t, lbConfig("round-robin", health("100ms"), backendsOf(a, b)...), "-w", "-i", "100")
	path := filepath.Join(lb.Dir, "lb.yaml")
	down, _ := lb.WaitForLine(0, 5*time.Second, `msg="backend down"`, bKey)
	if !strings.Contains(down, "source=initial") {
		t.Errorf("B's down event %q, want source=initial (the startup round)", down)
	}

	load := lcStartLoad(t, lb.URL("/load"), 2, 5*time.Millisecond)
	load.waitOK(t, 20, 5*time.Second)

	steps := []struct {
		name string
		cfg  string
	}{
		{"backends added", lbConfig("round-robin", health("100ms"),
			backendsAt(a.addr, b.addr, c.addr, dead[0])...)},
		{"probe interval changed", lbConfig("round-robin", health("150ms"),
			backendsAt(a.addr, b.addr, c.addr, dead[0], dead[1])...)},
		{"B's own check changed", lbConfig("round-robin", health("150ms"),
			backendEntry{Addr: a.addr}, backendEntry{Addr: b.addr, Extra: "health_check:\n  fall: 3\n  rise: 3"}, backendEntry{Addr: c.addr},
			backendEntry{Addr: dead[0]}, backendEntry{Addr: dead[1]}, backendEntry{Addr: dead[2]})},
	}
	from := len(lb.Output())
	for i, step := range steps {
		writeFileAtomic(t, path, step.cfg)
		reloadLine, reloaded := lb.WaitForLine(from, 10*time.Second, `msg="config reloaded"`)
		// B's probes on the new config: three of them span at least two
		// probe intervals, time enough for a lost state to show as traffic.
		probes := b.probes.Load()
		if !eventually(5*time.Second, func() bool { return b.probes.Load() >= probes+3 }) {
			t.Fatalf("%s: B was probed %d times in 5s after the reload, want 3", step.name, b.probes.Load()-probes)
		}
		line, next := lb.WaitForLine(from, 5*time.Second, `msg="backend down"`, "backend=http://"+dead[i])
		tried := len(linesContaining(lb.Output()[from:max(next, reloaded)], "msg=access", "attempts=2"))
		t.Logf("%s: the refusing backend added by the reload went down %s after the reload (%s); requests tried on it first: %d",
			step.name, logTime(line).Sub(logTime(reloadLine)).Round(time.Millisecond),
			strings.TrimSpace(line[strings.Index(line, "source="):]), tried)
		if tried != 0 {
			t.Errorf("%s: %d requests were tried on the refusing backend the reload added, want none (a new backend joins after one probe)", step.name, tried)
		}
		from = max(next, reloaded)
		if ups := linesContaining(lb.Output(), `msg="backend up"`, bKey); len(ups) != 0 {
			t.Fatalf("%s: B flapped to healthy: %v", step.name, ups)
		}
		if n := b.requests.Load(); n != 0 {
			t.Fatalf("%s: B, down by its check, received %d requests", step.name, n)
		}
	}
	if got := load.Served(); got["A"] == 0 || got["C"] == 0 || got["B"] != 0 {
		t.Errorf("served %v, want A and C, never B", got)
	}

	// B's check passes again (rise is now 3): it comes back.
	b.setHealth("/health", http.StatusOK, "ok")
	up, _ := lb.WaitForLine(from, 5*time.Second, `msg="backend up"`, bKey)
	if !strings.Contains(up, "3 consecutive successes") {
		t.Errorf("B's up event %q, want \"3 consecutive successes\" (its own rise: 3)", up)
	}
	load.waitServed(t, "B", 3, 5*time.Second)
	load.Stop()
	if f := load.failed.Load(); f != 0 {
		t.Errorf("%d requests failed, first: %v", f, load.Failures())
	}
}
