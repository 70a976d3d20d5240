package balancer

import (
	"net/http"
	"sync/atomic"

	"github.com/lbproject/load_balancer/internal/upstream"
)

// missProbes bounds how many entries of the sequence WeightedRoundRobinPicker
// tries for a request whose slot fell on a backend the Filter rejects, before
// it falls back to a linear scan.
const missProbes = 8

// WeightedRoundRobinPicker hands requests to the members of a pool in
// proportion to their weights, spread as evenly as possible: nginx's smooth
// weighted round robin. On each step every member's current value grows by
// its weight, the member with the largest value (the first one on a tie) is
// picked and loses the total weight. Weights 5,1,1 give a a b a c a a: exact
// shares over every cycle of 7 picks and never 5 in a row, unlike the simple
// "index mod total" scheme, which sends bursts of 5.
//
// The algorithm keeps mutable state per member, which would need a lock on
// every pick. Instead the sequence of one cycle is computed once, at
// construction, and requests walk it with an atomic counter: no lock, no
// allocation, O(1) per pick. Weights are first divided by their GCD (10,2,2
// and 5,1,1 give the same sequence, as they do in nginx), and a cycle longer
// than 65536 picks is scaled down to about that, each nonzero weight kept at
// least 1 (see reduceWeights): the table costs 4 bytes an entry, and a
// member's share then moves by about 1/65536 at most (more for a tiny weight
// lifted to 1). Building the table takes O(cycle × members) steps, once per
// reload.
//
// When the counter's slot belongs to a backend the Filter rejects (down,
// draining, or already tried by this request), the request takes the next
// entry of a second cursor that walks the same sequence and advances only on
// such misses, skipping rejected entries. The slots of a missing backend are
// thus dealt out to the others in proportion to their weights: shares stay
// exact, though the merged picks are less smooth than a sequence built for
// the allowed members alone (runs of one backend about twice as long).
// (Moving on along the main sequence to the next allowed entry would hand
// them to whichever member follows the missing one in the sequence: with 5,1,1
// and the first backend down, b would get 5/7 and c 2/7 of the traffic.)
// When missProbes entries in a row are rejected — the allowed members hold
// only a small part of the total weight — the request falls back to a plain
// weighted rotation over the allowed members, still proportional to weight.
type WeightedRoundRobinPicker struct {
	next atomic.Uint64 // cursor of the main sequence, one step per request
	_    [cacheLine - 8]byte

	// Touched only when a pick misses, so off the main counter's line.
	spill    atomic.Uint64 // second cursor into seq, one step per entry tried
	fallback atomic.Uint64 // rotation position of the linear fallback
	_        [cacheLine - 16]byte

	backends []*upstream.Backend // members with weight > 0, in pool order
	weights  []int               // their weights, reduced (see reduceWeights)
	seq      []uint32            // one smooth cycle: indexes into backends
}

var _ Picker = (*WeightedRoundRobinPicker)(nil)

// NewWeightedRoundRobin returns a smooth weighted round-robin picker over the
// members of pool with a positive weight. The pool must not change
// afterwards. A nil or empty pool, or one with only weight-0 members, gives a
// picker that always returns nil.
func NewWeightedRoundRobin(pool *upstream.Pool) *WeightedRoundRobinPicker {
	backends, weights := candidates(pool)
	total := reduceWeights(weights, maxCycle)
	return &WeightedRoundRobinPicker{
		backends: backends,
		weights:  weights,
		seq:      smoothSequence(weights, total),
	}
}

// smoothSequence returns one cycle of nginx's smooth weighted round robin over
// weights (all positive, summing to total), as indexes into weights.
func smoothSequence(weights []int, total int) []uint32 {
	if total == 0 {
		return nil
	}
	current := make([]int, len(weights))
	seq := make([]uint32, total)
	for step := range seq {
		best := 0
		for i, w := range weights {
			current[i] += w
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		seq[step] = uint32(best)
	}
	return seq
}

// Pick returns the next member of the smooth weighted sequence that f
// allows, or nil when f allows none. req is not used.
func (w *WeightedRoundRobinPicker) Pick(_ *http.Request, f Filter) *upstream.Backend {
	seq := w.seq
	if len(seq) == 0 {
		return nil
	}
	n := w.next.Add(1) - 1
	if b := w.backends[seq[n%uint64(len(seq))]]; f.Allows(b) {
		return b
	}
	return w.pickMissed(&f)
}

// pickMissed serves a request whose slot fell on a rejected backend; see the
// type's comment.
func (w *WeightedRoundRobinPicker) pickMissed(f *Filter) *upstream.Backend {
	seq := w.seq
	for range min(missProbes, len(seq)) {
		m := w.spill.Add(1) - 1
		if b := w.backends[seq[m%uint64(len(seq))]]; f.Allows(b) {
			return b
		}
	}
	total := allowedWeight(w.backends, w.weights, f)
	if total == 0 {
		return nil
	}
	return pickByWeight(w.backends, w.weights, f, (w.fallback.Add(1)-1)%total)
}
