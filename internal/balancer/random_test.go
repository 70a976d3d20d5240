package balancer

import (
	"testing"

	"github.com/lbproject/load_balancer/internal/upstream"
)

// zP001 and zP1e6 are the z scores whose upper tails hold 0.001 and 1e-6 of
// a standard normal, for chiSquareCritical.
const (
	zP001 = 3.0902
	zP1e6 = 4.7534
)

// checkShares draws n picks from p and applies a chi-square goodness-of-fit
// test against shares proportional to weights (0 for backends that must
// never come out) at the significance whose z score is z.
func checkShares(t *testing.T, p Picker, f Filter, bs []*upstream.Backend, weights []int, n int, z float64) {
	t.Helper()
	c := counts(p, f, n)
	var observed []int
	var shares []float64
	total := 0
	for _, w := range weights {
		total += w
	}
	for i, b := range bs {
		if weights[i] == 0 {
			if c[b] != 0 {
				t.Errorf("weights %v: %v picked %d times, want never", weights, b, c[b])
			}
			continue
		}
		observed = append(observed, c[b])
		shares = append(shares, float64(weights[i])/float64(total))
	}
	if len(observed) < 2 {
		return // one candidate: the zero checks above are the whole test
	}
	x := chiSquare(observed, shares, n)
	if crit := chiSquareCritical(len(observed)-1, z); x > crit {
		t.Errorf("weights %v: chi-square %.2f > critical %.2f; counts %v", weights, x, crit, observed)
	}
}

func TestRandomShares(t *testing.T) {
	for seed, ws := range [][]int{{1, 1, 1, 1}, {5, 1, 1, 3}, {1, 2}, {100, 1, 10, 1, 1}, {7}} {
		pool, bs := newPool(ws...)
		checkShares(t, seeded(NewRandom(pool), uint64(seed)), Filter{}, bs, ws, 200_000, zP001)
	}
}

// TestRandomSharesUnseeded runs the production source (math/rand/v2's
// global, unseedable): a p of 1e-6 keeps a false alarm out of reach.
func TestRandomSharesUnseeded(t *testing.T) {
	pool, bs := newPool(5, 1, 1, 3)
	checkShares(t, NewRandom(pool), Filter{}, bs, []int{5, 1, 1, 3}, 200_000, zP1e6)
}

// TestRandomOneDown checks that a missing backend's share spreads over the
// others by weight, through redraws and, when the others are rarely drawn,
// through the fallback.
func TestRandomOneDown(t *testing.T) {
	for seed, tc := range []struct {
		weights []int
		down    int
	}{
		{[]int{1, 1, 1, 1}, 1},
		{[]int{5, 1, 1, 3}, 0},
		{[]int{5, 1, 1, 3}, 3},
		{[]int{1000, 1, 2}, 0}, // mostly the fallback
	} {
		pool, bs := newPool(tc.weights...)
		bs[tc.down].SetHealthy(false)
		want := append([]int(nil), tc.weights...)
		want[tc.down] = 0
		checkShares(t, seeded(NewRandom(pool), uint64(seed)), Filter{}, bs, want, 200_000, zP001)
	}
}

func TestRandomTried(t *testing.T) {
	pool, bs := newPool(5, 1, 1, 3)
	var f Filter
	f.Exclude(bs[0])
	checkShares(t, seeded(NewRandom(pool), 7), f, bs, []int{0, 1, 1, 3}, 100_000, zP001)
}

func TestRandomIndex(t *testing.T) {
	pool, _ := newPool(2, 1, 3)
	r := NewRandom(pool)
	for x, want := range []int{0, 0, 1, 2, 2, 2} {
		if got := r.index(uint64(x)); got != want {
			t.Errorf("index(%d) = %d, want %d", x, got, want)
		}
	}
}

func TestRandomZeroAllocs(t *testing.T) {
	pool, bs := newPool(5, 1, 1, 3)
	r := NewRandom(pool)
	if n := testing.AllocsPerRun(100, func() { r.Pick(nil, Filter{}) }); n != 0 {
		t.Errorf("Pick allocates %v times", n)
	}
	bs[0].SetHealthy(false)
	bs[3].SetHealthy(false)
	if n := testing.AllocsPerRun(100, func() { r.Pick(nil, Filter{}) }); n != 0 {
		t.Errorf("degraded Pick allocates %v times", n)
	}
}
