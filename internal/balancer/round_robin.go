package balancer

import (
	"net/http"
	"sync/atomic"

	"github.com/lbproject/load_balancer/internal/upstream"
)

// cacheLine is the assumed size of a CPU cache line. Counters that every
// request increments are padded to it so that they do not share a line with
// fields that are only read (false sharing would make the readers' loads miss).
const cacheLine = 64

// RoundRobinPicker hands requests to the members of a pool in turn, ignoring
// weights except that members with weight 0 are never picked.
//
// The rotation is over the members the Filter allows at the moment of the
// pick: the n-th request (n from one shared atomic counter) goes to the
// (n mod k)-th of the k allowed members, in pool order. So when one of four
// backends is down, each of the other three gets exactly a third of the
// traffic; the share of the missing backend is not dumped on its successor,
// as "skip to the next available one" would do (which would double the
// successor's load). The same holds for backends a retry already tried.
//
// A pick takes no lock and allocates nothing. It costs one atomic add on a
// shared counter plus one pass over the members (two when some member is not
// allowed), each step two atomic loads: cheap for the tens of backends a pool
// usually has, linear for very large pools.
//
// Under concurrency the counter keeps the shares exact, but two requests
// racing with a health change may briefly see different allowed sets; that
// costs at most a slightly uneven pick, never a pick of a rejected backend
// (except one whose health flips during the pick itself, which no strategy can
// avoid).
type RoundRobinPicker struct {
	next atomic.Uint64
	_    [cacheLine - 8]byte

	backends []*upstream.Backend // members with weight > 0, in pool order
}

var _ Picker = (*RoundRobinPicker)(nil)

// NewRoundRobin returns a round-robin picker over the members of pool with a
// positive weight. The pool must not change afterwards (pools are immutable;
// a reload builds a new pool and a new picker). A nil or empty pool gives a
// picker that always returns nil.
func NewRoundRobin(pool *upstream.Pool) *RoundRobinPicker {
	backends, _ := candidates(pool)
	return &RoundRobinPicker{backends: backends}
}

// Pick returns the next allowed member in rotation, or nil when f allows
// none. req is not used.
func (r *RoundRobinPicker) Pick(_ *http.Request, f Filter) *upstream.Backend {
	bs := r.backends
	if len(bs) == 0 {
		return nil
	}
	n := r.next.Add(1) - 1
	allowed := 0
	for _, b := range bs {
		if f.Allows(b) {
			allowed++
		}
	}
	switch allowed {
	case 0:
		return nil
	case len(bs): // the common case: everyone is in, no second pass
		return bs[n%uint64(len(bs))]
	}
	k := n % uint64(allowed)
	var last *upstream.Backend
	for _, b := range bs {
		if f.Allows(b) {
			if k == 0 {
				return b
			}
			k--
			last = b
		}
	}
	// Some backend went down between the passes: take the last one still
	// allowed (nil if none is left).
	return last
}
