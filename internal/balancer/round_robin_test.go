package balancer

import "testing"

func TestRoundRobinRotation(t *testing.T) {
	pool, bs := newPool(1, 1, 1)
	if got := names(bs, sequence(NewRoundRobin(pool), Filter{}, 7)); got != "abcabca" {
		t.Errorf("rotation = %s, want abcabca", got)
	}
}

func TestRoundRobinIgnoresWeights(t *testing.T) {
	pool, bs := newPool(5, 1, 1, 3)
	c := counts(NewRoundRobin(pool), Filter{}, 4000)
	for _, b := range bs {
		if c[b] != 1000 {
			t.Errorf("%v got %d picks of 4000, want 1000 (%v)", b, c[b], c)
		}
	}
}

// TestRoundRobinOneDown checks that a missing backend's share spreads evenly
// over all the others instead of doubling its successor's.
func TestRoundRobinOneDown(t *testing.T) {
	pool, bs := newPool(1, 1, 1, 1)
	rr := NewRoundRobin(pool)
	bs[1].SetHealthy(false)
	c := counts(rr, Filter{}, 3000)
	for i, want := range []int{1000, 0, 1000, 1000} {
		if c[bs[i]] != want {
			t.Errorf("with b down, %v got %d of 3000 picks, want %d", bs[i], c[bs[i]], want)
		}
	}
	if got := names(bs, sequence(rr, Filter{}, 6)); got != "acdacd" {
		t.Errorf("with b down, rotation = %s, want acdacd", got)
	}

	bs[1].SetHealthy(true)
	bs[3].SetDraining(true)
	c = counts(rr, Filter{}, 3000)
	for i, want := range []int{1000, 1000, 1000, 0} {
		if c[bs[i]] != want {
			t.Errorf("with d draining, %v got %d of 3000 picks, want %d", bs[i], c[bs[i]], want)
		}
	}
}

func TestRoundRobinZeroAllocs(t *testing.T) {
	pool, bs := newPool(1, 1, 1, 1)
	rr := NewRoundRobin(pool)
	if n := testing.AllocsPerRun(100, func() { rr.Pick(nil, Filter{}) }); n != 0 {
		t.Errorf("Pick allocates %v times", n)
	}
	bs[2].SetHealthy(false)
	var f Filter
	f.Exclude(bs[0])
	if n := testing.AllocsPerRun(100, func() { rr.Pick(nil, f) }); n != 0 {
		t.Errorf("degraded Pick allocates %v times", n)
	}
}
