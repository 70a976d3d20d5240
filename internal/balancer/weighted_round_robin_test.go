package balancer

import (
	"slices"
	"testing"
)

// nginxSequence is a reference implementation of nginx's smooth weighted
// round robin (ngx_http_upstream_get_peer), stateful as nginx runs it,
// without GCD reduction or precomputed table: it returns the indexes of the
// first n picks for the given positive weights.
func nginxSequence(weights []int, n int) []int {
	current := make([]int, len(weights))
	var seq []int
	for range n {
		best, total := -1, 0
		for i, w := range weights {
			current[i] += w
			total += w
			if best == -1 || current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		seq = append(seq, best)
	}
	return seq
}

func TestNginxReference(t *testing.T) {
	// The sequence nginx's own comment gives for weights 5, 1, 1.
	if got := nginxSequence([]int{5, 1, 1}, 7); !slices.Equal(got, []int{0, 0, 1, 0, 2, 0, 0}) {
		t.Fatalf("reference for 5,1,1 = %v, want a a b a c a a", got)
	}
}

var weightSets = [][]int{
	{1}, {1, 1}, {5, 1, 1}, {1, 5, 1}, {1, 1, 5}, {2, 1, 1}, {3, 2, 1},
	{10, 2, 2}, {4, 6}, {4, 3, 2, 1}, {100, 1}, {7, 5, 3, 2}, {1, 2, 3, 4, 5, 6, 7, 8},
	{9, 9, 9}, {1000, 999, 1}, {12, 18, 30},
}

// TestWeightedRoundRobinMatchesNginx compares three cycles of picks with the
// reference implementation. The reference runs on the raw weights, so this
// also checks that dividing by the GCD changes nothing.
func TestWeightedRoundRobinMatchesNginx(t *testing.T) {
	for _, ws := range weightSets {
		pool, bs := newPool(ws...)
		total := 0
		for _, w := range ws {
			total += w
		}
		want := nginxSequence(ws, 3*total)
		got := sequence(NewWeightedRoundRobin(pool), Filter{}, 3*total)
		for i := range got {
			if got[i] != bs[want[i]] {
				t.Errorf("weights %v: pick %d is %v, nginx picks %v\n got  %s", ws, i, got[i], bs[want[i]], names(bs, got))
				break
			}
		}
	}
}

func TestWeightedRoundRobinExactShares(t *testing.T) {
	for _, ws := range weightSets {
		pool, bs := newPool(ws...)
		w := NewWeightedRoundRobin(pool)
		cycle := len(w.seq)
		reduced := slices.Clone(ws)
		divideByGCD(reduced)
		c := counts(w, Filter{}, 5*cycle)
		for i, b := range bs {
			if c[b] != 5*reduced[i] {
				t.Errorf("weights %v: %v got %d picks in 5 cycles, want %d", ws, b, c[b], 5*reduced[i])
			}
		}
	}
}

// TestWeightedRoundRobinNoBursts checks the point of the smooth variant:
// within a cycle of 5,1,1 the heavy backend never gets more than 2 picks in a
// row, and across cycles (a a b a c a a | a a b a ...) never 5, as the simple
// "index mod total" scheme would give.
func TestWeightedRoundRobinNoBursts(t *testing.T) {
	pool, bs := newPool(5, 1, 1)
	got := names(bs, sequence(NewWeightedRoundRobin(pool), Filter{}, 7*20))
	for i := 0; i < len(got); i += 7 {
		if c := got[i : i+7]; c != "aabacaa" {
			t.Fatalf("cycle %d of 5,1,1 = %s, want aabacaa", i/7, c)
		}
	}
	if r := longestRun(got); r >= 5 {
		t.Errorf("5,1,1 gave %d picks in a row of one backend: %s", r, got)
	}
}

func longestRun(s string) int {
	best, run := 0, 0
	for i := range s {
		if i > 0 && s[i] == s[i-1] {
			run++
		} else {
			run = 1
		}
		best = max(best, run)
	}
	return best
}

// TestWeightedRoundRobinOneDown checks that a missing backend's slots go to
// the others in proportion to their weights, not to its successor in the
// sequence.
func TestWeightedRoundRobinOneDown(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		down    int
		picks   int
		want    []int
		slack   int // allowed deviation from want
	}{
		// a's 5 slots of 7 split evenly, b and c have equal weight.
		{[]int{5, 1, 1}, 0, 7 * 100, []int{0, 350, 350}, 0},
		// A small member down: the others keep their 5:1 ratio.
		{[]int{5, 1, 1}, 2, 7 * 6 * 100, []int{3500, 700, 0}, 0},
		// The others hold 2/102 of the weight: the linear fallback.
		{[]int{100, 1, 1}, 0, 102 * 10, []int{0, 510, 510}, 1},
		{[]int{4, 3, 2, 1}, 0, 10 * 6 * 50, []int{0, 1500, 1000, 500}, 0},
		{[]int{4, 3, 2, 1}, 1, 10 * 7 * 50, []int{2000, 0, 1000, 500}, 0},
	} {
		pool, bs := newPool(tc.weights...)
		bs[tc.down].SetHealthy(false)
		c := counts(NewWeightedRoundRobin(pool), Filter{}, tc.picks)
		for i, b := range bs {
			if d := c[b] - tc.want[i]; d < -tc.slack || d > tc.slack {
				t.Errorf("weights %v, %v down: %v got %d of %d picks, want %d", tc.weights, bs[tc.down], b, c[b], tc.picks, tc.want[i])
			}
		}
	}
}

func TestWeightedRoundRobinLargeWeights(t *testing.T) {
	// The sum is far above maxCycle: the table is capped, small weights
	// stay at least 1, large ones keep their ratio.
	ws := []int{1 << 40, 3 << 39, 1, 1 << 30}
	pool, bs := newPool(ws...)
	w := NewWeightedRoundRobin(pool)
	if len(w.seq) > maxCycle+len(ws) {
		t.Fatalf("sequence of %d entries, want at most %d", len(w.seq), maxCycle+len(ws))
	}
	c := counts(w, Filter{}, len(w.seq))
	for i, b := range bs {
		if c[b] == 0 {
			t.Errorf("weight %d never picked", ws[i])
		}
	}
	if r := float64(c[bs[1]]) / float64(c[bs[0]]); r < 1.499 || r > 1.501 {
		t.Errorf("ratio of 3<<39 to 1<<40 is %v, want 1.5 (%v)", r, c)
	}
}

func TestReduceWeights(t *testing.T) {
	for _, tc := range []struct {
		in, want []int
		max, sum int
	}{
		{[]int{10, 2, 2}, []int{5, 1, 1}, 100, 7},
		{[]int{7}, []int{1}, 100, 1},
		{[]int{3, 5}, []int{3, 5}, 100, 8},
		{[]int{900, 100}, []int{4, 1}, 5, 5},     // GCD to 9,1, then 10 > 5: halved, floor, min 1
		{[]int{1000, 1}, []int{99, 1}, 100, 100}, // ×100/1001: 99.9 → 99, 0.0999 → 1
		{[]int{1, 1, 1}, []int{1, 1, 1}, 2, 3},   // never below 1, even above the cap
	} {
		w := slices.Clone(tc.in)
		sum := reduceWeights(w, tc.max)
		if !slices.Equal(w, tc.want) || sum != tc.sum {
			t.Errorf("reduceWeights(%v, %d) = %v, %d; want %v, %d", tc.in, tc.max, w, sum, tc.want, tc.sum)
		}
	}
}

func TestWeightedRoundRobinZeroAllocs(t *testing.T) {
	pool, bs := newPool(5, 1, 1, 3)
	w := NewWeightedRoundRobin(pool)
	if n := testing.AllocsPerRun(100, func() { w.Pick(nil, Filter{}) }); n != 0 {
		t.Errorf("Pick allocates %v times", n)
	}
	bs[0].SetHealthy(false)
	if n := testing.AllocsPerRun(100, func() { w.Pick(nil, Filter{}) }); n != 0 {
		t.Errorf("degraded Pick allocates %v times", n)
	}
}
