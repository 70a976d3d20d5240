package balancer

import (
	"math"

	"github.com/lbproject/load_balancer/internal/upstream"
)

// maxCycle caps the sum of the weights a weighted strategy works with, and so
// the length of WeightedRoundRobinPicker's precomputed sequence (4 bytes an entry:
// at most 256 KiB a pool). Sums above it are scaled down; see reduceWeights.
const maxCycle = 1 << 16

// candidates returns the members of pool that can ever be picked, those with
// a positive weight, in pool order. Weight 0 (or a negative weight, which the
// config rejects anyway) means "no traffic", so such members are dropped once
// here instead of being skipped on every pick. A nil pool has no candidates.
func candidates(pool *upstream.Pool) (backends []*upstream.Backend, weights []int) {
	if pool == nil {
		return nil, nil
	}
	for _, m := range pool.Members {
		if m.Weight > 0 && m.Backend != nil {
			backends = append(backends, m.Backend)
			weights = append(weights, m.Weight)
		}
	}
	return backends, weights
}

// reduceWeights rewrites the positive weights w in place into the smallest
// integers with the same ratios (it divides them by their GCD), so that 50,10,10
// and 5,1,1 behave identically and tables stay small. It returns their sum.
//
// If the sum still exceeds maxSum, every weight is scaled by maxSum/sum and
// rounded down, but kept at least 1 so that no backend loses all its traffic;
// shares then deviate from the configured ratios by less than one part in
// maxSum per member (more for members lifted to 1). The result may exceed
// maxSum by at most len(w) because of that floor of 1.
func reduceWeights(w []int, maxSum int) int {
	if len(w) == 0 {
		return 0
	}
	divideByGCD(w)
	var sumf float64
	for _, x := range w {
		sumf += float64(x)
	}
	if sumf > float64(maxSum) {
		scale := float64(maxSum) / sumf
		for i, x := range w {
			w[i] = max(1, int(math.Floor(float64(x)*scale)))
		}
		divideByGCD(w)
	}
	sum := 0
	for _, x := range w {
		sum += x
	}
	return sum
}

// divideByGCD divides the positive integers w by their greatest common divisor.
func divideByGCD(w []int) {
	g := 0
	for _, x := range w {
		g = gcd(g, x)
		if g == 1 {
			return
		}
	}
	if g > 1 {
		for i := range w {
			w[i] /= g
		}
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// allowedWeight returns the total weight of the backends f allows. It is the
// slow path of the weighted strategies, taken only when their fast pick hit a
// backend f rejects, so a linear scan is fine.
func allowedWeight(backends []*upstream.Backend, weights []int, f *Filter) uint64 {
	var total uint64
	for i, b := range backends {
		if f.Allows(b) {
			total += uint64(weights[i])
		}
	}
	return total
}

// pickByWeight returns the allowed backend whose slice of the allowed weight
// contains r, where r < allowedWeight(backends, weights, f): the backends f
// allows laid end to end, each as long as its weight. If health changed since
// allowedWeight was computed and r falls past the end, it returns the last
// allowed backend, or nil if none is left.
func pickByWeight(backends []*upstream.Backend, weights []int, f *Filter, r uint64) *upstream.Backend {
	var last *upstream.Backend
	for i, b := range backends {
		if !f.Allows(b) {
			continue
		}
		if w := uint64(weights[i]); r < w {
			return b
		} else {
			r -= w
		}
		last = b
	}
	return last
}
