package telemetry

import (
	"slices"
	"testing"
	"time"
)

func TestLatencyBounds(t *testing.T) {
	if len(latencyBounds)+1 != numLatencyBuckets {
		t.Fatalf("%d bounds, %d buckets", len(latencyBounds), numLatencyBuckets)
	}
	if !slices.IsSorted(latencyBounds) || latencyBounds[0] != 10*time.Microsecond || latencyBounds[len(latencyBounds)-1] != 75*time.Second {
		t.Fatalf("bounds %v", latencyBounds)
	}
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{-time.Second, 0}, {0, 0}, {10 * time.Microsecond, 0}, {10*time.Microsecond + 1, 1},
		{time.Millisecond, 20}, {time.Hour, len(latencyBounds)},
	} {
		if got := bucketOf(c.d); got != c.want {
			t.Errorf("bucketOf(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}

func TestQuantile(t *testing.T) {
	var h latencyHistogram
	for ms := 1; ms <= 1000; ms++ {
		h.observe(time.Duration(ms) * time.Millisecond)
	}
	s := h.snapshot(time.Now())
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := s.quantile(c.q)
		if d := got - c.want; d > c.want/10 || d < -c.want/10 {
			t.Errorf("quantile(%v) = %v, want %v ± 10%%", c.q, got, c.want)
		}
	}
	if s.count() != 1000 || s.sum != 500500*time.Millisecond {
		t.Errorf("count %d sum %v", s.count(), s.sum)
	}
	var empty latencySnapshot
	if q := empty.quantile(0.5); q != 0 {
		t.Errorf("quantile of nothing = %v", q)
	}
	var slow latencyHistogram
	slow.observe(time.Hour)
	ss := slow.snapshot(time.Now())
	if q := ss.quantile(0.99); q != 75*time.Second {
		t.Errorf("quantile of an overflow = %v, want the last bound", q)
	}
}

func TestPrometheusBuckets(t *testing.T) {
	var h latencyHistogram
	h.observe(50 * time.Microsecond) // ≤ 0.0001
	h.observe(time.Millisecond)      // ≤ 0.001 exactly
	h.observe(3 * time.Second)       // ≤ 5
	h.observe(2 * time.Minute)       // +Inf only
	s := h.snapshot(time.Now())
	buckets, count, sum := s.prometheusBuckets()
	want := map[float64]uint64{0.0001: 1, 0.0005: 1, 0.001: 2, 2.5: 2, 5: 3, 60: 3}
	for le, n := range want {
		if buckets[le] != n {
			t.Errorf("le=%v: %d, want %d", le, buckets[le], n)
		}
	}
	if len(buckets) != len(exportedBounds) || count != 4 {
		t.Errorf("%d buckets, count %d", len(buckets), count)
	}
	if sum < 123 || sum > 123.01 {
		t.Errorf("sum %v", sum)
	}
}

func TestRecentWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := newWindowed(t0)
	for range 10 {
		w.observe(time.Millisecond)
	}
	p := w.recent(t0.Add(10 * time.Second))
	if p.Count != 10 || p.Window != 10*time.Second || p.P50 > time.Millisecond || p.P50 < 750*time.Microsecond {
		t.Fatalf("first look: %+v", p)
	}
	for range 5 {
		w.observe(100 * time.Millisecond)
	}
	// 80s later the first ten are out of the window; the look at 10s is the
	// newest snapshot older than the window, so the window goes back to it.
	p = w.recent(t0.Add(80 * time.Second))
	if p.Count != 5 || p.Window != 70*time.Second || p.P50 < 75*time.Millisecond || p.P50 > 100*time.Millisecond {
		t.Fatalf("later look: %+v", p)
	}
	// Frequent looks keep the window at most a minute long.
	for s := 85; s <= 300; s += 5 {
		p = w.recent(t0.Add(time.Duration(s) * time.Second))
	}
	if p.Window > RecentWindow || p.Count != 0 {
		t.Fatalf("after steady looks: %+v", p)
	}
	if len(w.ring) > ringSize {
		t.Fatalf("ring grew to %d", len(w.ring))
	}
}
