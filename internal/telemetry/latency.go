package telemetry

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// latencyBounds are the upper bounds of the latency buckets, from 10µs to
// 75s: ten per decade (mantissas 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5), so
// that a percentile interpolated inside a bucket is off by less than 25%.
// Observations above the last bound fall in an overflow bucket.
var latencyBounds = func() []time.Duration {
	mantissas := [...]int64{100, 125, 150, 200, 250, 300, 400, 500, 600, 750} // hundredths
	var out []time.Duration
	for decade := int64(100); decade <= 100_000_000; decade *= 10 { // ×100 ns = 10µs .. 10s
		for _, m := range mantissas {
			out = append(out, time.Duration(m*decade))
		}
	}
	return out
}()

// numLatencyBuckets counts the buckets: one per bound plus the overflow.
const numLatencyBuckets = 71

// exportedBounds are the bucket bounds of the Prometheus histograms, in
// seconds; each is one of latencyBounds, so the fine buckets add up into
// them exactly.
var exportedBounds = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// latencyHistogram counts durations in fixed buckets of atomic counters:
// observing is a binary search and two atomic adds, with no lock, so every
// request can afford it. A snapshot of it gives percentiles and the
// Prometheus histogram alike.
type latencyHistogram struct {
	counts [numLatencyBuckets]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

// observe counts one duration; negative ones count as 0.
func (h *latencyHistogram) observe(d time.Duration) {
	h.counts[bucketOf(d)].Add(1)
	h.sum.Add(int64(max(d, 0)))
}

// bucketOf returns the index of the first bound ≥ d (the overflow bucket
// past the last one).
func bucketOf(d time.Duration) int {
	lo, hi := 0, len(latencyBounds)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if latencyBounds[mid] < d {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// latencySnapshot is a histogram's content at one moment.
type latencySnapshot struct {
	at     time.Time
	counts [numLatencyBuckets]uint64
	sum    time.Duration
}

func (h *latencyHistogram) snapshot(now time.Time) latencySnapshot {
	s := latencySnapshot{at: now, sum: time.Duration(h.sum.Load())}
	for i := range h.counts {
		s.counts[i] = h.counts[i].Load()
	}
	return s
}

// count returns the number of observations.
func (s *latencySnapshot) count() uint64 {
	var n uint64
	for _, c := range s.counts {
		n += c
	}
	return n
}

// minus returns the observations of s made after old.
func (s latencySnapshot) minus(old *latencySnapshot) latencySnapshot {
	for i := range s.counts {
		s.counts[i] -= min(old.counts[i], s.counts[i])
	}
	s.sum -= min(old.sum, s.sum)
	return s
}

// quantile estimates the q-quantile (0 < q ≤ 1) by linear interpolation
// inside the bucket that holds it. It returns 0 without observations, and
// the last bound for observations in the overflow bucket.
func (s *latencySnapshot) quantile(q float64) time.Duration {
	total := s.count()
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum float64
	for i, c := range s.counts {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			if i == len(latencyBounds) {
				return latencyBounds[i-1]
			}
			lower := time.Duration(0)
			if i > 0 {
				lower = latencyBounds[i-1]
			}
			upper := latencyBounds[i]
			frac := (rank - cum) / float64(c)
			return lower + time.Duration(frac*float64(upper-lower))
		}
		cum += float64(c)
	}
	return latencyBounds[len(latencyBounds)-1]
}

// exportedIndex maps each of exportedBounds to its index in latencyBounds.
var exportedIndex = func() []int {
	idx := make([]int, len(exportedBounds))
	for j, e := range exportedBounds {
		d := time.Duration(math.Round(e * float64(time.Second)))
		i := bucketOf(d)
		if i >= len(latencyBounds) || latencyBounds[i] != d {
			panic("telemetry: exported bound is not a latency bound")
		}
		idx[j] = i
	}
	return idx
}()

// prometheusBuckets returns the cumulative counts at exportedBounds, the
// total count and the sum in seconds, as prometheus.NewConstHistogram
// takes them.
func (s *latencySnapshot) prometheusBuckets() (map[float64]uint64, uint64, float64) {
	var cum [numLatencyBuckets]uint64
	var n uint64
	for i, c := range s.counts {
		n += c
		cum[i] = n
	}
	buckets := make(map[float64]uint64, len(exportedBounds))
	for j, e := range exportedBounds {
		buckets[e] = cum[exportedIndex[j]]
	}
	return buckets, n, s.sum.Seconds()
}

// Percentiles are latency percentiles over some window. Count is the number
// of observations they come from; with none, the percentiles are 0.
type Percentiles struct {
	P50, P90, P99 time.Duration
	Count         uint64
	Window        time.Duration // how far back the observations go
}

// windowed is a latency histogram that also answers "over the last
// minute". The hot path only touches the histogram; readers keep a ring of
// snapshots taken at least snapshotEvery apart, and a recent percentile is
// the difference between now and the oldest snapshot of the window.
type windowed struct {
	latencyHistogram

	mu   sync.Mutex // readers only
	ring []latencySnapshot
}

const (
	// RecentWindow is the window of recent percentiles.
	RecentWindow  = time.Minute
	snapshotEvery = 5 * time.Second
	ringSize      = int(RecentWindow/snapshotEvery) + 2
)

// newWindowed returns a histogram whose window starts empty at now.
func newWindowed(now time.Time) *windowed {
	w := &windowed{}
	w.ring = append(w.ring, latencySnapshot{at: now})
	return w
}

// recent returns the percentiles of the observations of the last
// RecentWindow; when no reader looked during that window, of those since
// the previous look.
func (w *windowed) recent(now time.Time) Percentiles {
	cur := w.snapshot(now)
	w.mu.Lock()
	base := &w.ring[0]
	for i := range w.ring {
		if now.Sub(w.ring[i].at) <= RecentWindow {
			base = &w.ring[i]
			break
		}
		base = &w.ring[i] // newest so far older than the window
	}
	delta := cur.minus(base)
	window := now.Sub(base.at)
	if last := w.ring[len(w.ring)-1]; now.Sub(last.at) >= snapshotEvery {
		if len(w.ring) == ringSize {
			copy(w.ring, w.ring[1:])
			w.ring = w.ring[:ringSize-1]
		}
		w.ring = append(w.ring, cur)
	}
	w.mu.Unlock()
	return Percentiles{
		P50: delta.quantile(0.50), P90: delta.quantile(0.90), P99: delta.quantile(0.99),
		Count: delta.count(), Window: window,
	}
}
