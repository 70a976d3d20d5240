package balancer

import (
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/upstream"
)

// benchPick runs Pick from b.RunParallel's goroutines, one per -cpu, so that
// `go test -bench Pick -cpu 1,2,8` shows how a strategy scales.
func benchPick(b *testing.B, p Picker) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if p.Pick(nil, Filter{}) == nil {
				b.Fatal("no backend")
			}
		}
	})
}

func benchStrategies(b *testing.B, pool *upstream.Pool) {
	for _, s := range []string{RoundRobin, WeightedRoundRobin, Random} {
		p, err := New(s, pool)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s, func(b *testing.B) { benchPick(b, p) })
	}
}

// BenchmarkPick: four healthy backends with weights 5,1,1,3.
func BenchmarkPick(b *testing.B) {
	pool, _ := newPool(5, 1, 1, 3)
	benchStrategies(b, pool)
}

// BenchmarkPickOneDown: the same pool with the heaviest backend down, so
// half the weighted picks take the miss path.
func BenchmarkPickOneDown(b *testing.B) {
	pool, bs := newPool(5, 1, 1, 3)
	bs[0].SetHealthy(false)
	benchStrategies(b, pool)
}

// BenchmarkPick64: 64 healthy backends with weights 1..64, where round
// robin's scan over the members shows.
func BenchmarkPick64(b *testing.B) {
	ws := make([]int, 64)
	for i := range ws {
		ws[i] = i + 1
	}
	pool, _ := newPool(ws...)
	benchStrategies(b, pool)
}

// BenchmarkStickyLookup finds the sticky cookie among a few typical others.
func BenchmarkStickyLookup(b *testing.B) {
	pool, bs := newPool(1, 1, 1, 1)
	s := NewStickyCookies(pool, "ZZZ_BACKEND_ID", testSecret, time.Hour)
	req := requestWithCookie("_ga=GA1.2.1234567890.1234567890; theme=dark; ZZZ_BACKEND_ID=" + s.Value(bs[2]) + "; lang=en-US")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if s.Lookup(req) != bs[2] {
				b.Fatal("lookup failed")
			}
		}
	})
}
