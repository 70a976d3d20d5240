package server

import (
	"log/slog"
	"testing"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/h1server"
)

// TestLeanAboveConns: limits.lean_above_conns reaches the client server,
// and its default is the server's own.
func TestLeanAboveConns(t *testing.T) {
	if config.DefaultLeanAboveConns != h1server.DefaultLeanAbove {
		t.Errorf("limits.lean_above_conns defaults to %d, the server to %d", config.DefaultLeanAboveConns, h1server.DefaultLeanAbove)
	}
	for _, tc := range []struct {
		yaml string
		want int
	}{
		{"", h1server.DefaultLeanAbove},
		{"limits:\n  lean_above_conns: 7\n", 7},
		{"limits:\n  lean_above_conns: -1\n", -1},
	} {
		s, err := New(mustParse(t, "backends:\n  - {host: 127.0.0.1, port: 9101}\n"+tc.yaml), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		s.checker.Close()
		if got := s.front.LeanAbove; got != tc.want {
			t.Errorf("%q: LeanAbove %d, want %d", tc.yaml, got, tc.want)
		}
	}
}
