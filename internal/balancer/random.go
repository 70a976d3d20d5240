package balancer

import (
	"math/rand/v2"
	"net/http"

	"github.com/lbproject/load_balancer/internal/upstream"
)

// maxDraws is how many random draws RandomPicker makes before it stops
// hoping to land on an allowed backend and scans for the allowed ones instead.
const maxDraws = 4

// RandomPicker picks a member of the pool at random, each with probability
// proportional to its weight (uniformly when all weights are equal); members
// with weight 0 are never picked.
//
// It keeps no shared mutable state: the draw comes from math/rand/v2's
// top-level functions, which use a per-thread generator without locking, so
// picks scale with cores, and a pick allocates nothing.
//
// When a draw lands on a backend the Filter rejects, it draws again, up
// to maxDraws times, then picks among the allowed backends by a draw over
// their weights only. Both steps give every allowed backend a probability
// exactly proportional to its weight among the allowed ones, so a missing
// backend's share is spread over the others by weight, not uniformly.
type RandomPicker struct {
	backends []*upstream.Backend // members with weight > 0, in pool order
	weights  []int               // their weights, reduced (see reduceWeights)
	cumul    []uint64            // cumul[i] = weights[0] + ... + weights[i]
	total    uint64              // the sum of all weights
	uniform  bool                // all weights equal: draw an index directly

	// uint64n returns a uniform number in [0, n). It is rand.Uint64N; tests
	// set a seeded generator to get reproducible draws.
	uint64n func(n uint64) uint64
}

var _ Picker = (*RandomPicker)(nil)

// NewRandom returns a weighted random picker over the members of pool with a
// positive weight. The pool must not change afterwards. A nil or empty pool,
// or one with only weight-0 members, gives a picker that always returns nil.
func NewRandom(pool *upstream.Pool) *RandomPicker {
	backends, weights := candidates(pool)
	// The cap only guards the sums against overflow; random picks need no
	// table, so it is far above anything a config would hold.
	total := reduceWeights(weights, 1<<52)
	r := &RandomPicker{
		backends: backends,
		weights:  weights,
		cumul:    make([]uint64, len(weights)),
		total:    uint64(total),
		uniform:  true,
		uint64n:  rand.Uint64N,
	}
	var sum uint64
	for i, w := range weights {
		sum += uint64(w)
		r.cumul[i] = sum
		if w != weights[0] {
			r.uniform = false
		}
	}
	return r
}

// Pick returns a random allowed member, or nil when f allows none. req is
// not used.
func (r *RandomPicker) Pick(_ *http.Request, f Filter) *upstream.Backend {
	bs := r.backends
	if len(bs) == 0 {
		return nil
	}
	for range maxDraws {
		var i int
		if r.uniform {
			i = int(r.uint64n(uint64(len(bs))))
		} else {
			i = r.index(r.uint64n(r.total))
		}
		if b := bs[i]; f.Allows(b) {
			return b
		}
	}
	total := allowedWeight(bs, r.weights, &f)
	if total == 0 {
		return nil
	}
	return pickByWeight(bs, r.weights, &f, r.uint64n(total))
}

// index returns the backend whose stretch of [0, total) contains x: the
// first i with x < cumul[i].
func (r *RandomPicker) index(x uint64) int {
	lo, hi := 0, len(r.cumul)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if x < r.cumul[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
