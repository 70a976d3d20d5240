// Package balancer chooses which backend of a pool serves a request. Each
// strategy lives in its own file behind the small Picker interface; sticky
// sessions (sticky.go) sit in front of any of them.
//
// Every strategy is safe for concurrent use and takes no lock on the request
// path: its state is immutable after construction or updated atomically.
package balancer

import (
	"fmt"
	"net/http"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// MaxAttempts bounds how many backends one request may be tried on (the first
// attempt plus retries). It sizes Filter's fixed array so that a filter lives
// on the stack.
const MaxAttempts = 8

// Filter says which backends a pick may return. The zero Filter allows every
// available (healthy, not draining) backend.
type Filter struct {
	tried [MaxAttempts]*upstream.Backend
	n     int

	// IgnoreHealth makes unhealthy backends candidates too ("panic mode":
	// when every backend is marked down, trying them beats failing every
	// request). Draining and already tried backends stay excluded.
	IgnoreHealth bool
}

// Exclude records that b was tried, so that later picks skip it. Beyond
// MaxAttempts backends it records nothing more.
func (f *Filter) Exclude(b *upstream.Backend) {
	if f.n < len(f.tried) {
		f.tried[f.n] = b
		f.n++
	}
}

// Tried returns the number of backends excluded so far.
func (f *Filter) Tried() int { return f.n }

// Allows reports whether b may be picked.
func (f *Filter) Allows(b *upstream.Backend) bool {
	if b.Draining() || (!f.IgnoreHealth && !b.Healthy()) {
		return false
	}
	for _, t := range f.tried[:f.n] {
		if t == b {
			return false
		}
	}
	return true
}

// Picker chooses a backend for a request.
type Picker interface {
	// Pick returns a member of the pool that f allows, or nil when there is
	// none. req may be nil (health probes, benchmarks); only strategies that
	// look at the request need it. Weight 0 members are never picked. Under
	// the proxy, req.Header may already be the header of the request to
	// the backend (hop-by-hop fields gone, X-Forwarded-* set): a strategy
	// that reads the client's fields reads them as forwarded.
	Pick(req *http.Request, f Filter) *upstream.Backend
}

// Strategy names as accepted by the -s flag and the config file (which
// defines them, since it validates the file).
const (
	RoundRobin         = config.StrategyRoundRobin
	WeightedRoundRobin = config.StrategyWeightedRoundRobin
	Random             = config.StrategyRandom
	Sticky             = config.StrategySticky
)

// Strategies lists the accepted strategy names, for help texts and errors.
var Strategies = []string{RoundRobin, WeightedRoundRobin, Random, Sticky}

// New returns the Picker for strategy over pool. For "sticky" it returns the
// fallback picker (round-robin); cookie handling is StickyCookies' job.
func New(strategy string, pool *upstream.Pool) (Picker, error) {
	switch strategy {
	case RoundRobin, Sticky:
		return NewRoundRobin(pool), nil
	case WeightedRoundRobin:
		return NewWeightedRoundRobin(pool), nil
	case Random:
		return NewRandom(pool), nil
	}
	return nil, fmt.Errorf("unknown strategy %q (expected one of %v)", strategy, Strategies)
}
