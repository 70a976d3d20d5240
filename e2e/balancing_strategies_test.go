package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestBalancingRoundRobin: strict rotation, seen both on one keep-alive
// client connection (consecutive requests cycle through all backends) and
// as exact shares under concurrency.
func TestBalancingRoundRobin(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "a"), newTestBackend(t, "b"), newTestBackend(t, "c")
	lb := startBalancer(t, lbConfig("round-robin", "", backendsOf(a, b, c)...))

	oc := newOneConnClient(t)
	seq := sequenceOver(t, oc, lb.URL("/rr"), 30)
	first := seq[:3]
	if first[0] == first[1] || first[1] == first[2] || first[0] == first[2] {
		t.Fatalf("first three requests went to %v, want three different backends\nsequence: %v", first, seq)
	}
	for i, s := range seq {
		if s != seq[i%3] {
			t.Fatalf("request %d went to %s, want %s: the rotation is not a cycle of the three backends\nsequence: %v", i, s, seq[i%3], seq)
		}
	}

	const n = 2997
	res := spread(client(t), lb.URL("/rr-concurrent"), n, 8)
	if len(res.Failures) > 0 {
		t.Fatalf("%d of %d requests failed, first: %s", len(res.Failures), n, res.Failures[0])
	}
	for _, name := range []string{"a", "b", "c"} {
		if got := res.ByBackend[name]; got < n/3-1 || got > n/3+1 {
			t.Errorf("backend %s served %d of %d requests, want %d ± 1 (all: %v)", name, got, n, n/3, res.ByBackend)
		}
	}
}

// TestBalancingRoundRobinOneDown: when one of four backends is down, its
// share spreads over all three others, not onto its successor only.
func TestBalancingRoundRobinOneDown(t *testing.T) {
	t.Parallel()
	a, b, c, d := newTestBackend(t, "a"), newTestBackend(t, "b"), newTestBackend(t, "c"), newTestBackend(t, "d")
	lb := startBalancer(t, lbConfig("round-robin", "", backendsOf(a, b, c, d)...))
	cl := client(t)
	if r := get(t, cl, lb.URL("/")); r.Status != http.StatusOK {
		t.Fatalf("status %d before the failure", r.Status)
	}
	d.Close()

	const n = 900
	res := spread(cl, lb.URL("/one-down"), n, 4)
	if len(res.Failures) > 0 {
		t.Fatalf("%d of %d requests failed with one backend of four down, first: %s", len(res.Failures), n, res.Failures[0])
	}
	if res.ByBackend["d"] != 0 {
		t.Errorf("the closed backend d served %d requests", res.ByBackend["d"])
	}
	// Even spreading gives 300 each; "skip to the successor" gives one of
	// them 450. Allow for the moments before d is known to be down.
	for _, name := range []string{"a", "b", "c"} {
		if got := res.ByBackend[name]; got < 250 || got > 350 {
			t.Errorf("backend %s served %d of %d requests, want about %d: the down backend's share is not spread evenly (all: %v)", name, got, n, n/3, res.ByBackend)
		}
	}
}

// nginxSmoothWRR is the reference algorithm (nginx's
// ngx_http_upstream_get_peer): the first n picks for weights, as indexes.
func nginxSmoothWRR(weights []int, n int) []int {
	current := make([]int, len(weights))
	total := 0
	for _, w := range weights {
		total += w
	}
	seq := make([]int, n)
	for k := range seq {
		best := -1
		for i, w := range weights {
			current[i] += w
			if best < 0 || current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		seq[k] = best
	}
	return seq
}

func longestRun(seq []string) (run int, who string) {
	cur := 0
	for i := range seq {
		if i > 0 && seq[i] == seq[i-1] {
			cur++
		} else {
			cur = 1
		}
		if cur > run {
			run, who = cur, seq[i]
		}
	}
	return run, who
}

// TestBalancingWeightedRoundRobin: weights 5,1,1 give nginx's smooth
// sequence a a b a c a a, repeated: exact shares in every cycle of 7 and
// never 5 in a row; and exact shares under concurrency.
func TestBalancingWeightedRoundRobin(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "a"), newTestBackend(t, "b"), newTestBackend(t, "c")
	weights := []int{5, 1, 1}
	lb := startBalancer(t, lbConfig("weighted-round-robin", "",
		backendEntry{Addr: a.addr, Weight: 5}, backendEntry{Addr: b.addr, Weight: 1}, backendEntry{Addr: c.addr, Weight: 1}))

	names := []string{"a", "b", "c"}
	const cycle = 7
	oc := newOneConnClient(t)
	got := sequenceOver(t, oc, lb.URL("/wrr"), 10*cycle)

	// The whole sequence must be the reference's, from some point of its
	// cycle (a fresh balancer should start at its beginning).
	ref := nginxSmoothWRR(weights, 12*cycle)
	matched := -1
	for phase := range cycle {
		ok := true
		for i, g := range got {
			if g != names[ref[i+phase]] {
				ok = false
				break
			}
		}
		if ok {
			matched = phase
			break
		}
	}
	if matched < 0 {
		want := make([]string, cycle)
		for i := range want {
			want[i] = names[ref[i]]
		}
		t.Fatalf("weighted round robin 5,1,1 sequence is not nginx's smooth sequence %v repeated\ngot %v", want, got)
	}
	if matched != 0 {
		t.Logf("sequence matches the reference from position %d of its cycle", matched)
	}
	// Consequences, checked on their own for clearer failures: every
	// window of 7 consecutive picks holds exactly 5 a, 1 b, 1 c; no run
	// of 5.
	for i := 0; i+cycle <= len(got); i++ {
		w := got[i : i+cycle]
		for j, name := range names {
			if n := count(w, name); n != weights[j] {
				t.Fatalf("picks %d..%d %v hold %d of %s, want %d", i, i+cycle-1, w, n, name, weights[j])
			}
		}
	}
	if run, who := longestRun(got); run >= 5 {
		t.Errorf("backend %s got %d requests in a row (a burst): %v", who, run, got)
	}

	const n = 300 * cycle
	res := spread(client(t), lb.URL("/wrr-concurrent"), n, 8)
	if len(res.Failures) > 0 {
		t.Fatalf("%d of %d requests failed, first: %s", len(res.Failures), n, res.Failures[0])
	}
	for j, name := range names {
		if want := n / cycle * weights[j]; res.ByBackend[name] != want {
			t.Errorf("backend %s (weight %d) served %d of %d requests, want exactly %d (all: %v)", name, weights[j], res.ByBackend[name], n, want, res.ByBackend)
		}
	}
}

func count(s []string, x string) int {
	n := 0
	for _, v := range s {
		if v == x {
			n++
		}
	}
	return n
}

// TestBalancingRandomUniform: with equal weights every backend is equally
// likely (chi-square at p = 0.001), and consecutive picks are independent
// (a rotation would pass the first test, not the second). A sample that
// fails is drawn again (rejectedTwice), so that a fair picker fails the
// test once in a million runs, not once in a few hundred.
func TestBalancingRandomUniform(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "a"), newTestBackend(t, "b"), newTestBackend(t, "c")
	lb := startBalancer(t, lbConfig("random", "", backendsOf(a, b, c)...))
	names := []string{"a", "b", "c"}
	client := newOneConnClient(t)

	const n = 3000
	if msg := rejectedTwice(func() string {
		seq := sequenceOver(t, client, lb.URL("/random"), n)
		obs := make([]float64, 3)
		for _, s := range seq {
			i := slices.Index(names, s)
			if i < 0 {
				t.Fatalf("response from unknown backend %q", s)
			}
			obs[i]++
		}
		exp := []float64{n / 3.0, n / 3.0, n / 3.0}
		if x := chiSquare(obs, exp); x > chiSquare001[2] {
			return fmt.Sprintf("counts %v of %d picks are not uniform: chi-square %.2f > %.3f (df 2, p 0.001)", obs, n, x, chiSquare001[2])
		}

		// Independence: the 9 kinds of non-overlapping pairs of
		// consecutive picks are equally likely.
		pairs := make([]float64, 9)
		for i := 0; i+1 < n; i += 2 {
			pairs[3*slices.Index(names, seq[i])+slices.Index(names, seq[i+1])]++
		}
		np := float64(n / 2)
		expPairs := slices.Repeat([]float64{np / 9}, 9)
		if x := chiSquare(pairs, expPairs); x > chiSquare001[8] {
			return fmt.Sprintf("pairs of consecutive picks (aa ab ac ba ... cc) %v are not independent: chi-square %.2f > %.3f (df 8, p 0.001); first picks: %s",
				pairs, x, chiSquare001[8], strings.Join(seq[:30], " "))
		}
		return ""
	}); msg != "" {
		t.Error(msg)
	}
}

// TestBalancingRandomWeighted: weights 2 and 1 give shares 2/3 and 1/3
// (chi-square at p = 0.001, a failing sample drawn again).
func TestBalancingRandomWeighted(t *testing.T) {
	t.Parallel()
	a, b := newTestBackend(t, "a"), newTestBackend(t, "b")
	lb := startBalancer(t, lbConfig("random", "", backendEntry{Addr: a.addr, Weight: 2}, backendEntry{Addr: b.addr, Weight: 1}))

	const n = 3000
	if msg := rejectedTwice(func() string {
		res := spread(client(t), lb.URL("/random-weighted"), n, 8)
		if len(res.Failures) > 0 {
			t.Fatalf("%d of %d requests failed, first: %s", len(res.Failures), n, res.Failures[0])
		}
		obs := []float64{float64(res.ByBackend["a"]), float64(res.ByBackend["b"])}
		exp := []float64{n * 2 / 3.0, n / 3.0}
		if x := chiSquare(obs, exp); x > chiSquare001[1] {
			return fmt.Sprintf("weights 2,1: counts %v of %d, want about %v: chi-square %.2f > %.3f (df 1, p 0.001)", obs, n, exp, x, chiSquare001[1])
		}
		return ""
	}); msg != "" {
		t.Error(msg)
	}
}

// TestBalancingDefaultStrategyIsRandom: without strategy in the file or -s,
// the seed's default, random, is used: not a strict rotation.
func TestBalancingDefaultStrategyIsRandom(t *testing.T) {
	t.Parallel()
	a, b := newTestBackend(t, "a"), newTestBackend(t, "b")
	lb := startBalancer(t, lbConfig("", "", backendsOf(a, b)...))
	seq := sequenceOver(t, newOneConnClient(t), lb.URL("/default"), 200)
	// Strict alternation of 200 picks has probability 2^-199 under random.
	alternates := true
	for i := 2; i < len(seq); i++ {
		if seq[i] != seq[i-2] || seq[i] == seq[i-1] {
			alternates = false
		}
	}
	if alternates {
		t.Errorf("default strategy alternates strictly (round robin?), want random: %v", seq[:20])
	}
	if na, nb := count(seq, "a"), count(seq, "b"); na < 50 || nb < 50 {
		t.Errorf("default strategy split 200 requests as %d/%d between a and b", na, nb)
	}
}
