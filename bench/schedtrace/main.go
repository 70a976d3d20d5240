// Command schedtrace reads a Go runtime execution trace (for instance
// /debug/pprof/trace of a build with net/http/pprof) and prints how long
// goroutines spent in each state, as distributions (p50, p90, p99, p99.9,
// max in µs) rather than the sums of `go tool trace -pprof=sched`: a tail
// latency is in the distribution. States are split by why the goroutine
// entered them (a Gosched, a network wait) and by the two innermost frames of
// the module's code on its stack at that moment.
//
// It also prints the lag-1 correlation of each goroutine's consecutive waits
// in the run queue after a network wake-up: strongly negative means the
// goroutines take turns at the front and the back of the poller's batches
// (docs/BENCHMARKS.md, "The tail at 64 connections").
//
//	go run . trace.out            (from bench/schedtrace: it is a module of its own)
package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"golang.org/x/exp/trace"
)

// module is the prefix of the frames that name where a goroutine waits.
const module = "github.com/lbproject/load_balancer/"

// goroutine is what is known of one goroutine between two transitions.
type goroutine struct {
	since  trace.Time    // when it entered state
	state  trace.GoState // its state since then
	reason string        // the transition's reason ("network", "runtime.Gosched", ...)
	where  string        // the module's innermost frames at that transition
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: schedtrace trace.out")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gs := map[trace.GoID]*goroutine{}
	spans := map[string][]float64{}      // state[reason|where] -> durations in µs
	queued := map[trace.GoID][]float64{} // run-queue waits after a network wake-up, in order
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		id := st.Resource.Goroutine()
		from, to := st.Goroutine()
		g := gs[id]
		if g == nil {
			g = &goroutine{}
			gs[id] = g
		}
		if g.since != 0 && from == g.state {
			d := float64(ev.Time()-g.since) / 1e3
			key := fmt.Sprintf("%v[%s|%s]", from, g.reason, g.where)
			spans[key] = append(spans[key], d)
			if from == trace.GoRunnable && g.reason == "" { // readied by the poller
				queued[id] = append(queued[id], d)
			}
		}
		g.since, g.state, g.reason, g.where = ev.Time(), to, st.Reason, ""
		if to == trace.GoWaiting || to == trace.GoRunnable {
			g.where = moduleFrames(st.Stack, 2)
		}
	}
	fmt.Printf("lag-1 correlation of run-queue waits after network wake-ups: %.3f\n", lag1(queued))
	keys := make([]string, 0, len(spans))
	for k := range spans {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(spans[keys[i]]) > len(spans[keys[j]]) })
	for _, k := range keys {
		v := spans[k]
		if len(v) < 100 {
			continue // too few for percentiles
		}
		sort.Float64s(v)
		q := func(p float64) float64 { return v[int(p*float64(len(v)-1))] }
		fmt.Printf("%-100s n=%7d µs p50=%7.1f p90=%7.1f p99=%7.1f p99.9=%7.1f max=%7.1f\n",
			k, len(v), q(.5), q(.9), q(.99), q(.999), v[len(v)-1])
	}
}

// moduleFrames names the n innermost frames of the module on stack, inner
// first, without the module path.
func moduleFrames(stack trace.Stack, n int) string {
	var names []string
	for f := range stack.Frames() {
		if name, ok := strings.CutPrefix(f.Func, module); ok {
			names = append(names, name)
			if len(names) == n {
				break
			}
		}
	}
	return strings.Join(names, "<")
}

// lag1 is the correlation of each wait with the same goroutine's next one,
// over all goroutines.
func lag1(waits map[trace.GoID][]float64) float64 {
	var n, sx, sy, sxx, syy, sxy float64
	for _, v := range waits {
		for i := 1; i < len(v); i++ {
			x, y := v[i-1], v[i]
			n++
			sx += x
			sy += y
			sxx += x * x
			syy += y * y
			sxy += x * y
		}
	}
	if n < 2 {
		return math.NaN()
	}
	cov := sxy/n - sx/n*sy/n
	return cov / math.Sqrt((sxx/n-sx*sx/n/n)*(syy/n-sy*sy/n/n))
}
