package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// switchServer answers probes with a status the test can change and counts
// them.
type switchServer struct {
	*httptest.Server
	status atomic.Int32
	hits   atomic.Int64
}

func newSwitchServer(t *testing.T, status int) *switchServer {
	t.Helper()
	s := &switchServer{}
	s.status.Store(int32(status))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		w.WriteHeader(int(s.status.Load()))
	}))
	t.Cleanup(s.Close)
	return s
}

// TestFallRise checks the thresholds exactly. The prober applies a result
// before it sends the next probe, so the state the server sees when probe n
// arrives is the verdict after probes 1..n-1.
func TestFallRise(t *testing.T) {
	script := []int{503, 200, 503, 503, 200, 200} // then 200
	type seen struct {
		healthy bool
		events  int
	}
	var (
		c, events = newTestChecker(t)
		b         *upstream.Backend
		mu        sync.Mutex
		log       []seen
		reached   = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		log = append(log, seen{b.Healthy(), len(c.Recent())})
		n := len(log)
		mu.Unlock()
		if n == len(script)+2 {
			close(reached)
		}
		status := 200
		if n <= len(script) {
			status = script[n-1]
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	b = backendAt(t, srv.URL)
	c.Update([]Target{{Backend: b, Check: httpCheck(20*time.Millisecond, 2, 2)}})

	select {
	case <-reached:
	case <-time.After(waitLimit):
		t.Fatal("probes did not arrive")
	}
	c.Close() // no more probes; pending events delivered

	want := []seen{
		{true, 0},  // before any probe
		{true, 0},  // 1 failure < fall 2
		{true, 0},  // failure, success
		{true, 0},  // 1 failure again
		{false, 1}, // 2 failures: down
		{false, 1}, // 1 success < rise 2
		{true, 2},  // 2 successes: up
		{true, 2},
	}
	mu.Lock()
	got := log[:len(want)]
	mu.Unlock()
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("at probe %d: healthy=%v after %d events, want healthy=%v after %d", i+1, got[i].healthy, got[i].events, want[i].healthy, want[i].events)
		}
	}

	down, up := waitEvent(t, events), waitEvent(t, events)
	if down.Healthy || down.Reason != "http status 503 not in 200-399" || down.Source != "active" || down.Backend != b.String() {
		t.Errorf("down event %+v", down)
	}
	if !up.Healthy || up.Reason != "2 consecutive successes" || up.Source != "active" || !up.Time.After(down.Time) {
		t.Errorf("up event %+v", up)
	}
	noEvent(t, events)
	if n := c.Transitions(); n != 2 {
		t.Errorf("Transitions() = %d, want 2", n)
	}
	if r := c.Recent(); len(r) != 2 || r[0] != down || r[1] != up {
		t.Errorf("Recent() = %+v, want the two events", r)
	}
}

// TestTransitionOnce checks that a backend that stays down makes one event.
func TestTransitionOnce(t *testing.T) {
	c, events := newTestChecker(t)
	b := backendAt(t, closedPortURL(t))
	c.Update([]Target{{Backend: b, Check: tcpCheck(20*time.Millisecond, 2, 2)}})
	ev := waitEvent(t, events)
	if ev.Healthy || ev.Reason != "tcp connect: connection refused" || ev.Source != "active" {
		t.Errorf("event %+v", ev)
	}
	if b.Healthy() {
		t.Error("backend still healthy after the down event")
	}
	waitFor(t, "more probes", func() bool { return status(t, c, b).Probes >= 6 })
	s := status(t, c, b)
	if s.Healthy || s.Reason != ev.Reason || s.Source != "active" || !s.Since.Equal(ev.Time) ||
		s.Transitions != 1 || s.ConsecutiveFailures < 6 || s.LastError != ev.Reason || !s.ActiveChecks {
		t.Errorf("status %+v", s)
	}
	c.Close()
	noEvent(t, events)
	if c.Transitions() != 1 || len(c.Recent()) != 1 {
		t.Errorf("Transitions() = %d, Recent() = %+v; want one transition", c.Transitions(), c.Recent())
	}
}

func TestUpdateDiff(t *testing.T) {
	c, events := newTestChecker(t)
	srvA, srvB, srvC := newSwitchServer(t, 503), newSwitchServer(t, 200), newSwitchServer(t, 200)
	a, b, cc := backendAt(t, srvA.URL), backendAt(t, srvB.URL), backendAt(t, srvC.URL)
	check := httpCheck(20*time.Millisecond, 2, 2)

	c.Update([]Target{{Backend: a, Check: check}, {Backend: b, Check: check}})
	if ev := waitEvent(t, events); ev.Backend != a.String() || ev.Healthy {
		t.Fatalf("event %+v, want %s down", ev, a)
	}
	waitFor(t, "a probe of b", func() bool { return srvB.hits.Load() > 0 })
	before := status(t, c, a)

	// b leaves, c joins, a stays with the same check.
	c.Update([]Target{{Backend: a, Check: check}, {Backend: cc, Check: check}})
	if _, ok := c.Status(b); ok {
		t.Error("removed backend still has a status")
	}
	// A probe sent just before the removal may still reach b's handler
	// after Update returned; none may start later.
	waitFor(t, "probes of a and c", func() bool {
		return status(t, c, a).Probes >= before.Probes+1 && status(t, c, cc).Probes >= 1
	})
	hitsB := srvB.hits.Load()
	waitFor(t, "more probes of a and c", func() bool {
		return status(t, c, a).Probes >= before.Probes+4 && status(t, c, cc).Probes >= 4
	})
	if n := srvB.hits.Load(); n != hitsB {
		t.Errorf("removed backend probed %d more times", n-hitsB)
	}
	if !b.Healthy() {
		t.Error("removing a backend changed its health")
	}
	s := status(t, c, a)
	if s.Healthy || s.Transitions != 1 || s.ConsecutiveFailures < before.ConsecutiveFailures+3 || !s.Since.Equal(before.Since) {
		t.Errorf("unchanged backend lost its state: before %+v, after %+v", before, s)
	}

	// a's check changes: its prober restarts, its state stays.
	changed := check
	changed.Rise = 1
	changed.Interval = config.Duration(25 * time.Millisecond)
	c.Update([]Target{{Backend: a, Check: changed}, {Backend: cc, Check: check}})
	before = status(t, c, a)
	waitFor(t, "probes with the new check", func() bool { return status(t, c, a).Probes >= before.Probes+2 })
	if s := status(t, c, a); s.Healthy || s.Transitions != 1 || s.ConsecutiveFailures < before.ConsecutiveFailures+2 {
		t.Errorf("changed backend lost its state: before %+v, after %+v", before, s)
	}
	srvA.status.Store(200)
	if ev := waitEvent(t, events); ev.Backend != a.String() || !ev.Healthy || ev.Reason != "1 consecutive success" {
		t.Errorf("event %+v, want %s up after 1 success (rise 1)", ev, a)
	}
	c.Close()
	noEvent(t, events)
	if n := c.Transitions(); n != 2 {
		t.Errorf("Transitions() = %d, want 2", n)
	}
}

func TestUpdateDisableActive(t *testing.T) {
	c, events := newTestChecker(t)
	b := backendAt(t, closedPortURL(t))
	check := tcpCheck(20*time.Millisecond, 1, 2)
	c.Update([]Target{{Backend: b, Check: check}})
	if ev := waitEvent(t, events); ev.Healthy {
		t.Fatalf("event %+v, want down", ev)
	}
	c.Update([]Target{{Backend: b, Check: disabled(check)}})
	ev := waitEvent(t, events)
	if !ev.Healthy || ev.Reason != "active checks disabled" {
		t.Errorf("event %+v, want up: active checks disabled", ev)
	}
	if s := status(t, c, b); s.ActiveChecks || !s.Healthy {
		t.Errorf("status %+v", s)
	}
}

func TestInitialRound(t *testing.T) {
	c, events := newTestChecker(t)
	good := newSwitchServer(t, 200)
	okB := backendAt(t, good.URL)
	refused := backendAt(t, closedPortURL(t))
	hang := backendAt(t, hangingServer(t))
	// A long interval keeps the probers out of the way; fall 3 keeps a
	// late result from marking the hanging backend down.
	check := httpCheck(time.Hour, 3, 2)
	check.Timeout = config.Duration(2 * time.Second)
	c.Update([]Target{{Backend: okB, Check: check}, {Backend: refused, Check: check}, {Backend: hang, Check: check}})

	const bound = 100 * time.Millisecond
	start := time.Now()
	c.InitialRound(context.Background(), bound)
	if d := time.Since(start); d < bound || d > 1900*time.Millisecond {
		t.Errorf("InitialRound took %v with a bound of %v and a hanging backend", d, bound)
	}
	if s := status(t, c, hang); s.Probes != 0 {
		t.Errorf("InitialRound waited for the hanging probe: %+v", s)
	}
	if !okB.Healthy() || refused.Healthy() || !hang.Healthy() {
		t.Errorf("after the round: ok=%v refused=%v hanging=%v, want true false true", okB.Healthy(), refused.Healthy(), hang.Healthy())
	}
	ev := waitEvent(t, events)
	if ev.Backend != refused.String() || ev.Healthy || ev.Source != "initial" || ev.Reason != "tcp connect: connection refused" {
		t.Errorf("event %+v, want the refused backend down at once", ev)
	}
	if s := status(t, c, refused); s.ConsecutiveFailures != 1 || s.Source != "initial" {
		t.Errorf("refused status %+v", s)
	}

	// The hanging probe's late result counts as an ordinary probe.
	waitFor(t, "the late probe result", func() bool { return status(t, c, hang).Probes >= 1 })
	if s := status(t, c, hang); !s.Healthy || s.LastError != "http: timeout after 2s" || s.Transitions != 0 {
		t.Errorf("hanging status %+v", s)
	}

	// A second round has nothing new to probe.
	start = time.Now()
	c.InitialRound(context.Background(), time.Minute)
	if d := time.Since(start); d > time.Second {
		t.Errorf("empty round took %v", d)
	}

	// A backend added by a reload gets its own initial verdict; the round
	// returns as soon as it is answered.
	added := backendAt(t, closedPortURL(t))
	c.Update([]Target{{Backend: okB, Check: check}, {Backend: refused, Check: check}, {Backend: hang, Check: check}, {Backend: added, Check: check}})
	start = time.Now()
	c.InitialRound(context.Background(), time.Minute)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("round of one refused backend took %v", d)
	}
	if ev := waitEvent(t, events); ev.Backend != added.String() || ev.Healthy || ev.Source != "initial" {
		t.Errorf("event %+v, want the added backend down at once", ev)
	}
	c.Close()
	noEvent(t, events)
	if good.hits.Load() < 1 {
		t.Error("the good backend was not probed")
	}
}

func TestInitialRoundCanceled(t *testing.T) {
	c, _ := newTestChecker(t)
	hang := backendAt(t, hangingServer(t))
	check := httpCheck(time.Hour, 2, 2)
	check.Timeout = config.Duration(time.Minute)
	c.Update([]Target{{Backend: hang, Check: check}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	c.InitialRound(ctx, time.Minute)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("InitialRound ignored its context: took %v", d)
	}
	if !hang.Healthy() {
		t.Error("unanswered backend marked down")
	}
}

// TestCloseIsPrompt closes a checker whose probes hang for a minute.
func TestCloseIsPrompt(t *testing.T) {
	c, _ := newTestChecker(t)
	var targets []Target
	check := httpCheck(10*time.Millisecond, 2, 2)
	check.Timeout = config.Duration(time.Minute)
	for range 5 {
		targets = append(targets, Target{Backend: backendAt(t, hangingServer(t)), Check: check})
	}
	c.Update(targets)
	c.InitialRound(context.Background(), 20*time.Millisecond) // leaves hanging probes
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	// After Close everything is a no-op.
	c.Close()
	c.Update(targets)
	c.InitialRound(context.Background(), time.Second)
	c.Observe(targets[0].Backend, ConnectFailure)
	if _, ok := c.Status(targets[0].Backend); ok || len(c.Statuses()) != 0 {
		t.Error("closed checker still reports backends")
	}
}

func TestStatuses(t *testing.T) {
	c, _ := newTestChecker(t)
	b1 := backendAt(t, "http://127.0.0.1:2")
	b2 := backendAt(t, "http://127.0.0.1:1")
	off := disabled(tcpCheck(time.Second, 2, 2))
	c.Update([]Target{{Backend: b1, Check: off}, {Backend: b2, Check: off}, {Backend: b2, Check: off}, {}})
	s := c.Statuses()
	if len(s) != 2 || s[0].Backend != b2.String() || s[1].Backend != b1.String() || !s[0].Healthy || s[0].ActiveChecks {
		t.Errorf("Statuses() = %+v", s)
	}
	if _, ok := c.Status(backendAt(t, "http://127.0.0.1:3")); ok {
		t.Error("status of an unknown backend")
	}
	if !strings.HasPrefix(s[0].Backend, "http://") {
		t.Errorf("backend key %q", s[0].Backend)
	}
}
