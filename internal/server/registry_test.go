package server

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/upstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustParse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Keep unit tests off the network: no probes.
	off := false
	cfg.HealthCheck.Enabled = &off
	return cfg
}

func backendsOf(s *Server) map[string]*upstream.Backend {
	out := map[string]*upstream.Backend{}
	for _, m := range s.Handler().Snapshot().Pool.Members {
		out[m.String()] = m.Backend
	}
	return out
}

// TestApplyKeepsBackendsAcrossReloads checks the reload diff: a backend that
// stays is the same object (health, counters and pool survive), a new one
// is new, a removed one leaves the pool, and weights change at once.
func TestApplyKeepsBackendsAcrossReloads(t *testing.T) {
	s, err := New(mustParse(t, `
backends:
  - {host: 127.0.0.1, port: 9101}
  - {host: 127.0.0.1, port: 9102}
`), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.checker.Close()
	before := backendsOf(s)
	kept := before["http://127.0.0.1:9101"]
	kept.SetHealthy(false) // state that must survive

	err = s.Apply(mustParse(t, `
strategy: weighted-round-robin
backends:
  - {host: 127.0.0.1, port: 9101, weight: 5}
  - {host: 127.0.0.1, port: 9103}
`))
	if err != nil {
		t.Fatal(err)
	}
	after := backendsOf(s)
	if after["http://127.0.0.1:9101"] != kept {
		t.Fatal("a backend that stays was replaced by a new object")
	}
	if kept.Healthy() {
		t.Fatal("health state was lost across the reload")
	}
	if _, ok := after["http://127.0.0.1:9102"]; ok {
		t.Fatal("removed backend still in the pool")
	}
	if after["http://127.0.0.1:9103"] == nil {
		t.Fatal("added backend missing")
	}
	if w := s.Handler().Snapshot().Pool.Members[0].Weight; w != 5 {
		t.Fatalf("weight %d after reload, want 5", w)
	}
}

// TestApplyRejectsBadConfigAndKeepsRunning checks that a config that fails
// to compile changes nothing.
func TestApplyRejectsBadConfigAndKeepsRunning(t *testing.T) {
	s, err := New(mustParse(t, "backends:\n  - {host: 127.0.0.1, port: 9101}\n"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.checker.Close()
	snap := s.Handler().Snapshot()
	bad := mustParse(t, "backends:\n  - {host: 127.0.0.1, port: 9102}\n")
	bad.Strategy = "no-such-strategy" // passes nothing but compile
	if err := s.Apply(bad); err == nil {
		t.Fatal("Apply accepted an unknown strategy")
	}
	if s.Handler().Snapshot() != snap {
		t.Fatal("a failed Apply replaced the running snapshot")
	}
	if _, ok := s.reg.backends[upstream.Address{Scheme: "http", Host: "127.0.0.1", Port: 9102}]; ok {
		t.Fatal("a failed Apply registered its backends")
	}
}

func TestTransportReplacedWhenSettingsChange(t *testing.T) {
	s, err := New(mustParse(t, "backends:\n  - {host: 127.0.0.1, port: 9101}\n"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.checker.Close()
	b := backendsOf(s)["http://127.0.0.1:9101"]
	tr := b.Transport()
	if err := s.Apply(mustParse(t, "backends:\n  - {host: 127.0.0.1, port: 9101, weight: 3}\n")); err != nil {
		t.Fatal(err)
	}
	if b.Transport() != tr {
		t.Fatal("a weight change replaced the connection pool")
	}
	if err := s.Apply(mustParse(t, "timeouts: {dial: 2s}\nbackends:\n  - {host: 127.0.0.1, port: 9101}\n")); err != nil {
		t.Fatal(err)
	}
	if b.Transport() == tr {
		t.Fatal("a dial timeout change kept the old connection pool")
	}
}
