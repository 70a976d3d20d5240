package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/lbproject/load_balancer/internal/upstream"
)

// newPool returns a pool of backends http://127.0.0.1:9001, :9002, ... with
// the given weights, and the backends in pool order.
func newPool(weights ...int) (*upstream.Pool, []*upstream.Backend) {
	pool := &upstream.Pool{}
	var bs []*upstream.Backend
	for i, w := range weights {
		b := upstream.NewBackend(upstream.Address{Scheme: "http", Host: "127.0.0.1", Port: 9001 + i}, nil)
		pool.Members = append(pool.Members, upstream.Member{Backend: b, Weight: w})
		bs = append(bs, b)
	}
	return pool, bs
}

// seeded replaces r's random source with a fixed-seed generator, so that
// tests on its distribution are reproducible. Not safe for concurrent picks.
func seeded(r *RandomPicker, seed uint64) *RandomPicker {
	r.uint64n = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)).Uint64N
	return r
}

// pickers returns every strategy over pool, the random one seeded.
func pickers(pool *upstream.Pool) map[string]Picker {
	return map[string]Picker{
		RoundRobin:         NewRoundRobin(pool),
		WeightedRoundRobin: NewWeightedRoundRobin(pool),
		Random:             seeded(NewRandom(pool), 1),
	}
}

// counts picks n times with f and returns how often each backend came out;
// nil picks are counted under the nil key.
func counts(p Picker, f Filter, n int) map[*upstream.Backend]int {
	c := make(map[*upstream.Backend]int)
	for range n {
		c[p.Pick(nil, f)]++
	}
	return c
}

// sequence returns the next n picks of p.
func sequence(p Picker, f Filter, n int) []*upstream.Backend {
	s := make([]*upstream.Backend, n)
	for i := range s {
		s[i] = p.Pick(nil, f)
	}
	return s
}

// names turns backends into their index in bs ("a" for bs[0], ...), for
// readable failures.
func names(bs []*upstream.Backend, seq []*upstream.Backend) string {
	out := make([]byte, 0, len(seq))
	for _, b := range seq {
		c := byte('?')
		for i, x := range bs {
			if x == b {
				c = byte('a' + i)
			}
		}
		if b == nil {
			c = '-'
		}
		out = append(out, c)
	}
	return string(out)
}

func TestNew(t *testing.T) {
	pool, _ := newPool(1, 1)
	for _, s := range Strategies {
		p, err := New(s, pool)
		if err != nil || p == nil {
			t.Errorf("New(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := New("least-conn", pool); err == nil {
		t.Error("New(unknown strategy) returned no error")
	}
	if p, _ := New(Sticky, pool); fmt.Sprintf("%T", p) != "*balancer.RoundRobinPicker" {
		t.Errorf("sticky's fallback picker is %T, want round robin", p)
	}
}

func TestEmptyPools(t *testing.T) {
	zeroOnly, _ := newPool(0, 0)
	for name, pool := range map[string]*upstream.Pool{"nil": nil, "empty": {}, "weight0": zeroOnly} {
		for s, p := range pickers(pool) {
			if b := p.Pick(nil, Filter{}); b != nil {
				t.Errorf("%s over %s pool picked %v", s, name, b)
			}
		}
	}
}

func TestWeightZeroNeverPicked(t *testing.T) {
	pool, bs := newPool(0, 3, 0, 1, 0)
	for s, p := range pickers(pool) {
		c := counts(p, Filter{}, 4000)
		if c[bs[0]]+c[bs[2]]+c[bs[4]] != 0 {
			t.Errorf("%s picked a weight-0 member: %v", s, c)
		}
		if c[bs[1]] == 0 || c[bs[3]] == 0 {
			t.Errorf("%s never picked a weighted member: %v", s, c)
		}
	}
	// Even when the weighted members are all unavailable.
	bs[1].SetHealthy(false)
	bs[3].SetHealthy(false)
	for s, p := range pickers(pool) {
		if b := p.Pick(nil, Filter{}); b != nil {
			t.Errorf("%s picked %v with only weight-0 members up", s, b)
		}
	}
}

func TestFilterExcludesTried(t *testing.T) {
	pool, bs := newPool(3, 1, 2, 1)
	for s, p := range pickers(pool) {
		var f Filter
		f.Exclude(bs[0])
		f.Exclude(bs[2])
		c := counts(p, f, 2000)
		if c[bs[0]]+c[bs[2]] != 0 || c[bs[1]]+c[bs[3]] != 2000 {
			t.Errorf("%s with a, c tried: %v", s, c)
		}
		f.Exclude(bs[1])
		f.Exclude(bs[3])
		if b := p.Pick(nil, f); b != nil {
			t.Errorf("%s with everyone tried picked %v", s, b)
		}
	}
}

func TestAllUnavailable(t *testing.T) {
	pool, bs := newPool(1, 2, 3)
	bs[0].SetHealthy(false)
	bs[1].SetDraining(true)
	bs[2].SetHealthy(false)
	for s, p := range pickers(pool) {
		if b := p.Pick(nil, Filter{}); b != nil {
			t.Errorf("%s picked %v with every backend down or draining", s, b)
		}
	}
}

func TestIgnoreHealth(t *testing.T) {
	pool, bs := newPool(1, 1, 1, 1)
	for _, b := range bs {
		b.SetHealthy(false)
	}
	bs[3].SetDraining(true)
	for s, p := range pickers(pool) {
		f := Filter{IgnoreHealth: true}
		f.Exclude(bs[2])
		c := counts(p, f, 3000)
		if c[bs[0]] == 0 || c[bs[1]] == 0 || c[bs[0]]+c[bs[1]] != 3000 {
			t.Errorf("%s in panic mode (c tried, d draining): %v", s, c)
		}
		if b := p.Pick(nil, Filter{}); b != nil {
			t.Errorf("%s picked unhealthy %v without IgnoreHealth", s, b)
		}
	}
}

// TestConcurrentPicks hammers every strategy from many goroutines while
// backends go up and down; run it with -race.
func TestConcurrentPicks(t *testing.T) {
	pool, bs := newPool(5, 1, 1, 3)
	const goroutines, picks = 16, 5000

	// All up: round robin's shared counter keeps its shares exact under
	// any interleaving.
	rr := NewRoundRobin(pool)
	var mu sync.Mutex
	total := make(map[*upstream.Backend]int)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			c := counts(rr, Filter{}, picks)
			mu.Lock()
			for b, n := range c {
				total[b] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, b := range bs {
		if total[b] != goroutines*picks/len(bs) {
			t.Errorf("round robin under concurrency: %v got %d, want %d", b, total[b], goroutines*picks/len(bs))
		}
	}

	// Health flapping: never a nil while bs[0] stays up, never a backend
	// that was down during the whole pick.
	stop := make(chan struct{})
	var flapper sync.WaitGroup
	flapper.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			bs[1+i%3].SetHealthy(i%2 == 0)
			bs[1+(i+1)%3].SetDraining(i%5 == 0)
		}
	})
	strategies := map[string]Picker{
		RoundRobin:         NewRoundRobin(pool),
		WeightedRoundRobin: NewWeightedRoundRobin(pool),
		Random:             NewRandom(pool), // the real, concurrent source
	}
	for s, p := range strategies {
		for range goroutines {
			wg.Go(func() {
				for range picks {
					if p.Pick(nil, Filter{}) == nil {
						t.Errorf("%s returned nil with a backend up", s)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(stop)
	flapper.Wait()
}

// chiSquareCritical approximates the chi-square quantile for df degrees of
// freedom whose upper tail has probability p, for the z score of p (3.090
// for p = 0.001), by the Wilson–Hilferty transformation (within about 1% for
// two or more degrees of freedom, 3% too high, so stricter never, at one).
func chiSquareCritical(df int, z float64) float64 {
	k := float64(df)
	h := 2 / (9 * k)
	return k * math.Pow(1-h+z*math.Sqrt(h), 3)
}

func TestChiSquareCritical(t *testing.T) {
	// Table values at p = 0.001.
	for df, want := range map[int]float64{1: 10.828, 2: 13.816, 3: 16.266, 5: 20.515, 10: 29.588} {
		if got := chiSquareCritical(df, 3.0902); math.Abs(got-want)/want > 0.035 {
			t.Errorf("chiSquareCritical(%d) = %.3f, want %.3f", df, got, want)
		}
	}
}

// chiSquare returns the chi-square statistic of observed counts against
// expected shares (summing to 1) of n draws.
func chiSquare(observed []int, shares []float64, n int) float64 {
	var x float64
	for i, o := range observed {
		e := shares[i] * float64(n)
		x += (float64(o) - e) * (float64(o) - e) / e
	}
	return x
}
