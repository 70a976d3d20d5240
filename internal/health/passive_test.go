package health

import (
	"sync"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/upstream"
)

func passive(failures, fives int, base, maxEjection time.Duration) config.Passive {
	return config.Passive{
		ConsecutiveFailures: failures,
		Consecutive5xx:      fives,
		BaseEjection:        config.Duration(base),
		MaxEjection:         config.Duration(maxEjection),
	}
}

// passiveOnly returns a checker and a backend with active checks off.
func passiveOnly(t *testing.T, p config.Passive) (*Checker, <-chan Event, *upstream.Backend) {
	t.Helper()
	c, events := newTestChecker(t)
	c.SetPassive(p)
	b := backendAt(t, "http://127.0.0.1:1")
	c.Update([]Target{{Backend: b, Check: disabled(tcpCheck(time.Second, 2, 2))}})
	return c, events, b
}

func observe(c *Checker, b *upstream.Backend, o Outcome, n int) {
	for range n {
		c.Observe(b, o)
	}
}

func TestPassiveEjectionActiveOff(t *testing.T) {
	const cooldown = 50 * time.Millisecond
	c, events, b := passiveOnly(t, passive(3, 0, cooldown, time.Second))

	observe(c, b, ConnectFailure, 2)
	if s := status(t, c, b); !b.Healthy() || s.PassiveFailures != 2 {
		t.Fatalf("after 2 failures: healthy=%v status %+v", b.Healthy(), s)
	}
	c.Observe(b, Success)
	if s := status(t, c, b); s.PassiveFailures != 0 {
		t.Fatalf("a success did not reset the run: %+v", s)
	}
	observe(c, b, ConnectFailure, 2)
	if !b.Healthy() {
		t.Fatal("ejected after 2 failures following a success")
	}
	c.Observe(b, ConnectFailure)
	if b.Healthy() {
		t.Fatal("not ejected after 3 consecutive failures")
	}
	down := waitEvent(t, events)
	if down.Healthy || down.Source != "passive" || down.Reason != "passive: 3 consecutive connect failures" {
		t.Errorf("down event %+v", down)
	}
	s := status(t, c, b)
	if !s.Ejected || s.Ejections != 1 || !s.EjectedUntil.Equal(down.Time.Add(cooldown)) || s.PassiveFailures != 0 {
		t.Errorf("status while ejected %+v", s)
	}

	up := waitEvent(t, events)
	if !up.Healthy || up.Source != "passive" || up.Reason != "passive: ejection of 50ms over" {
		t.Errorf("up event %+v", up)
	}
	if d := up.Time.Sub(down.Time); d < cooldown {
		t.Errorf("back after %v, before the %v cooldown", d, cooldown)
	}
	if s := status(t, c, b); s.Ejected || !s.EjectedUntil.IsZero() || !s.Healthy {
		t.Errorf("status after the cooldown %+v", s)
	}
}

func TestPassiveReasonMixed(t *testing.T) {
	c, events, b := passiveOnly(t, passive(3, 0, time.Hour, time.Hour))
	c.Observe(b, Reset)
	c.Observe(b, Timeout)
	c.Observe(b, ConnectFailure)
	if ev := waitEvent(t, events); ev.Reason != "passive: 3 consecutive failures (connect failure, reset, timeout)" {
		t.Errorf("reason %q", ev.Reason)
	}
}

// recoveredAgo pretends that b's last ejection ended d ago, so that the
// test does not depend on how fast it runs.
func recoveredAgo(c *Checker, b *upstream.Backend, d time.Duration) {
	st := (*c.states.Load())[b]
	st.mu.Lock()
	st.lastRecovery = time.Now().Add(-d)
	st.mu.Unlock()
}

func TestPassiveCooldownDoubles(t *testing.T) {
	const base, maxEjection = 25 * time.Millisecond, 200 * time.Millisecond
	c, events, b := passiveOnly(t, passive(1, 0, base, maxEjection))
	for i, want := range []time.Duration{25, 50, 100, 200, 200} {
		want *= time.Millisecond
		if i > 0 {
			recoveredAgo(c, b, 0) // ejected again right after coming back
		}
		c.Observe(b, Timeout)
		down := waitEvent(t, events)
		if down.Healthy || down.Reason != "passive: 1 consecutive timeout" {
			t.Fatalf("ejection %d: event %+v", i+1, down)
		}
		if got := status(t, c, b).EjectedUntil.Sub(down.Time); got != want {
			t.Errorf("ejection %d: cooldown %v, want %v", i+1, got, want)
		}
		up := waitEvent(t, events)
		if !up.Healthy || up.Time.Sub(down.Time) < want {
			t.Errorf("ejection %d: up event %+v after %v", i+1, up, up.Time.Sub(down.Time))
		}
	}
	// In service for a whole MaxEjection: the next cooldown is the base.
	recoveredAgo(c, b, maxEjection)
	c.Observe(b, Timeout)
	down := waitEvent(t, events)
	if got := status(t, c, b).EjectedUntil.Sub(down.Time); got != base {
		t.Errorf("cooldown after a quiet period %v, want %v", got, base)
	}
	if s := status(t, c, b); s.Ejections != 6 {
		t.Errorf("Ejections = %d, want 6", s.Ejections)
	}
}

func TestPassive5xx(t *testing.T) {
	c, events, b := passiveOnly(t, passive(3, 0, time.Hour, time.Hour))
	observe(c, b, ServerError, 10)
	if s := status(t, c, b); !b.Healthy() || s.Passive5xx != 0 {
		t.Fatalf("5xx counted with consecutive_5xx 0: %+v", s)
	}
	c.SetPassive(passive(3, 2, time.Hour, time.Hour))
	c.Observe(b, ServerError)
	c.Observe(b, ConnectFailure) // another run: does not break this one
	if s := status(t, c, b); s.Passive5xx != 1 || s.PassiveFailures != 1 {
		t.Fatalf("status %+v", s)
	}
	c.Observe(b, ServerError)
	if b.Healthy() {
		t.Fatal("not ejected after 2 consecutive 5xx")
	}
	if ev := waitEvent(t, events); ev.Reason != "passive: 2 consecutive 5xx responses" {
		t.Errorf("reason %q", ev.Reason)
	}
}

func TestPassiveDisabled(t *testing.T) {
	off := false
	p := passive(1, 1, time.Hour, time.Hour)
	p.Enabled = &off
	c, _, b := passiveOnly(t, p)
	observe(c, b, ConnectFailure, 10)
	observe(c, b, ServerError, 10)
	if !b.Healthy() || c.Transitions() != 0 {
		t.Error("ejected with passive checks disabled")
	}
	c.Observe(backendAt(t, "http://127.0.0.1:9"), ConnectFailure) // unknown: ignored
}

// TestPassiveConcurrent ejects once however many requests fail at once.
func TestPassiveConcurrent(t *testing.T) {
	c, _, b := passiveOnly(t, passive(3, 0, time.Hour, time.Hour))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 200 {
				if i%50 == 0 {
					c.Observe(b, Success)
				}
				c.Observe(b, ConnectFailure)
			}
		})
	}
	wg.Wait()
	if s := status(t, c, b); b.Healthy() || s.Ejections != 1 || c.Transitions() != 1 {
		t.Errorf("healthy=%v status %+v transitions %d, want one ejection", b.Healthy(), s, c.Transitions())
	}
}

// TestPassiveNotWhenDown: a backend the probes hold down is not ejected.
func TestPassiveNotWhenDown(t *testing.T) {
	c, events := newTestChecker(t)
	c.SetPassive(passive(1, 0, time.Hour, time.Hour))
	b := backendAt(t, closedPortURL(t))
	c.Update([]Target{{Backend: b, Check: tcpCheck(20*time.Millisecond, 1, 2)}})
	if ev := waitEvent(t, events); ev.Source != "active" {
		t.Fatalf("event %+v", ev)
	}
	observe(c, b, ConnectFailure, 5)
	if s := status(t, c, b); s.Ejections != 0 || s.Ejected {
		t.Errorf("down backend ejected: %+v", s)
	}
}

// TestPassiveRecoveryWithActive: with probes on, an ejected backend needs
// both the cooldown and Rise good probes.
func TestPassiveRecoveryWithActive(t *testing.T) {
	const cooldown = 150 * time.Millisecond
	c, events := newTestChecker(t)
	c.SetPassive(passive(3, 0, cooldown, cooldown))
	srv := newSwitchServer(t, 200)
	b := backendAt(t, srv.URL)
	c.Update([]Target{{Backend: b, Check: httpCheck(20*time.Millisecond, 2, 2)}})

	// Probes keep failing past the cooldown: the backend stays out.
	observe(c, b, Reset, 3)
	srv.status.Store(503)
	down := waitEvent(t, events)
	if down.Healthy || down.Source != "passive" || down.Reason != "passive: 3 consecutive resets" {
		t.Fatalf("down event %+v", down)
	}
	until := status(t, c, b).EjectedUntil
	waitFor(t, "failed probes after the cooldown", func() bool {
		s := status(t, c, b)
		return s.LastProbe.After(until) && s.ConsecutiveFailures >= 3
	})
	if s := status(t, c, b); s.Healthy || s.Transitions != 1 || !s.Ejected {
		t.Errorf("back in service while probes fail: %+v", s)
	}
	srv.status.Store(200)
	up := waitEvent(t, events)
	if !up.Healthy || up.Source != "active" || up.Reason != "passive: ejection of 150ms over, 2 consecutive successes" {
		t.Errorf("up event %+v", up)
	}

	// Probes succeed all along: the backend still waits for the cooldown.
	observe(c, b, Timeout, 3)
	down = waitEvent(t, events)
	if down.Healthy {
		t.Fatalf("event %+v, want down", down)
	}
	up = waitEvent(t, events)
	if !up.Healthy || up.Time.Sub(down.Time) < cooldown {
		t.Errorf("up event %+v %v after the ejection, cooldown %v", up, up.Time.Sub(down.Time), cooldown)
	}
	if s := status(t, c, b); s.Ejections != 2 || s.Transitions != 4 {
		t.Errorf("status %+v", s)
	}
}

func TestObserveSuccessAllocs(t *testing.T) {
	c, _, b := passiveOnly(t, passive(3, 0, time.Hour, time.Hour))
	c.Observe(b, ConnectFailure)
	if n := testing.AllocsPerRun(1000, func() { c.Observe(b, Success) }); n != 0 {
		t.Errorf("Observe(Success) allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { c.Observe(b, ServerError) }); n != 0 {
		t.Errorf("Observe(ServerError) with 5xx off allocates %v times", n)
	}
}

func BenchmarkObserveSuccess(b *testing.B) {
	c := NewChecker(nil, nil)
	defer c.Close()
	var backends []*upstream.Backend
	var targets []Target
	for i := range 16 {
		be := upstream.NewBackend(upstream.Address{Scheme: "http", Host: "127.0.0.1", Port: 10000 + i}, nil)
		backends = append(backends, be)
		targets = append(targets, Target{Backend: be, Check: disabled(tcpCheck(time.Second, 2, 2))})
	}
	c.Update(targets)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Observe(backends[i&15], Success)
			i++
		}
	})
}

// TestPassiveEjectedThenActiveOff: an ejection that waits for probes ends
// when active checks are turned off and its cooldown is over.
func TestPassiveEjectedThenActiveOff(t *testing.T) {
	c, events := newTestChecker(t)
	c.SetPassive(passive(1, 0, 30*time.Millisecond, 30*time.Millisecond))
	b := backendAt(t, closedPortURL(t))
	check := tcpCheck(20*time.Millisecond, 1000, 2) // failing probes, never enough to fall
	c.Update([]Target{{Backend: b, Check: check}})
	c.Observe(b, ConnectFailure)
	if ev := waitEvent(t, events); ev.Healthy || ev.Source != "passive" {
		t.Fatalf("event %+v", ev)
	}
	until := status(t, c, b).EjectedUntil
	waitFor(t, "a failed probe after the cooldown", func() bool { return status(t, c, b).LastProbe.After(until) })
	if b.Healthy() {
		t.Fatal("back in service without good probes")
	}
	c.Update([]Target{{Backend: b, Check: disabled(check)}})
	if ev := waitEvent(t, events); !ev.Healthy || ev.Reason != "passive: ejection of 30ms over" {
		t.Errorf("event %+v, want up: passive: ejection of 30ms over", ev)
	}
}
