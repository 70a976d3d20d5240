package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCLICheckGood: "check -c FILE" on a valid file (the seed's format, and
// one using the optional sections) exits 0 and says ok.
func TestCLICheckGood(t *testing.T) {
	t.Parallel()
	for name, yaml := range map[string]string{
		"seed.yaml": "backends:\n  - host: \"127.0.0.1\"\n    port: 9001\n    weight: 2\n  - host: \"127.0.0.1\"\n    port: 9002\n",
		"full.yaml": `listen:
  host: 127.0.0.1
  port: 8080
strategy: sticky
sticky:
  cookie_name: SID
  secret: "s3cr3t"
  max_age: 2h
backends:
  - host: "127.0.0.1"
    port: 9001
    weight: 0
  - host: "http://localhost"
    port: 9002
  - host: "https://api.example.com"
    port: 8443
`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, name), []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			r := runLB(t, dir, 20*time.Second, "check", "-c", name)
			if r.Code != 0 || !strings.Contains(strings.ToLower(r.Stdout), "ok") {
				t.Errorf("check -c %s: exit %d, stdout %q, stderr %q; want exit 0 and ok", name, r.Code, r.Stdout, r.Stderr)
			}
		})
	}
}

// TestCLICheckBad: "check -c FILE" on an invalid file exits 1 and names
// FILE:LINE and the field; the balancer itself refuses the file the same
// way before listening.
func TestCLICheckBad(t *testing.T) {
	t.Parallel()
	const head = "backends:\n  - host: \"127.0.0.1\"\n" // lines 1, 2
	for _, tc := range []struct {
		name  string
		yaml  string
		line  int
		field string
	}{
		{"unknown key", head + "    port: 9001\n    wieght: 2\n", 4, "wieght"},
		{"unknown top-level key", "strategyy: random\n" + head + "    port: 9001\n", 1, "strategyy"},
		{"wrong type", head + "    port: \"ninety\"\n", 3, "backends[0].port"},
		{"wrong type weight", head + "    port: 9001\n    weight: [1]\n", 4, "backends[0].weight"},
		{"port out of range", head + "    port: 70000\n", 3, "backends[0].port"},
		{"port zero", head + "    port: 0\n", 3, "backends[0].port"},
		{"negative weight", head + "    port: 9001\n    weight: -1\n", 4, "backends[0].weight"},
		{"duplicate backend", head + "    port: 9001\n  - host: \"127.0.0.1\"\n    port: 9002\n  - host: \"127.0.0.1\"\n    port: 9001\n", 6, "backends[2]"},
		{"unknown strategy", "strategy: fastest\n" + head + "    port: 9001\n", 1, "strategy"},
		{"listen port out of range", "listen:\n  port: 65536\n" + head + "    port: 9001\n", 2, "listen.port"},
		{"missing port", head + "    weight: 1\n", 2, "backends[0].port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			where := "bad.yaml:" + strconv.Itoa(tc.line) + ":"
			r := runLB(t, dir, 20*time.Second, "check", "-c", "bad.yaml")
			out := r.Stdout + r.Stderr
			if r.Code != 1 {
				t.Errorf("check -c bad.yaml: exit status %d, want 1; output %q", r.Code, out)
			}
			if !strings.Contains(r.Stderr, where) || !strings.Contains(r.Stderr, tc.field) {
				t.Errorf("check -c bad.yaml: stderr %q does not name %s and the field %s\nfile:\n%s", r.Stderr, where, tc.field, tc.yaml)
			}
			if strings.Contains(strings.ToLower(r.Stdout), "ok") {
				t.Errorf("check -c bad.yaml says ok: %q", r.Stdout)
			}

			// Starting with the file fails the same way, before listening.
			port := strconv.Itoa(freePort(t))
			r = runLB(t, dir, 10*time.Second, "-H", "127.0.0.1", "-p", port, "-c", "bad.yaml")
			if r.Code == 0 || !strings.Contains(r.Stderr, where) || !strings.Contains(r.Stderr, tc.field) {
				t.Errorf("load_balancer -c bad.yaml: exit %d, stderr %q; want non-zero naming %s and %s", r.Code, r.Stderr, where, tc.field)
			}
			if !refusesConnections("127.0.0.1:" + port) {
				t.Errorf("load_balancer -c bad.yaml listens on %s", port)
			}
		})
	}
}

// TestCLICheckReportsEveryProblem: each problem of a file is reported on a
// line of its own with its own FILE:LINE.
func TestCLICheckReportsEveryProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	yaml := "backends:\n  - host: \"127.0.0.1\"\n    port: 70000\n  - host: \"127.0.0.1\"\n    port: 9002\n    weight: -3\n"
	if err := os.WriteFile(filepath.Join(dir, "two.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runLB(t, dir, 20*time.Second, "check", "-c", "two.yaml")
	if r.Code != 1 {
		t.Errorf("exit status %d, want 1", r.Code)
	}
	var l3, l6 bool
	for _, l := range nonEmptyLines(r.Stderr) {
		l3 = l3 || (strings.Contains(l, "two.yaml:3:") && strings.Contains(l, "backends[0].port"))
		l6 = l6 || (strings.Contains(l, "two.yaml:6:") && strings.Contains(l, "backends[1].weight"))
	}
	if !l3 || !l6 {
		t.Errorf("stderr does not report both problems (two.yaml:3: backends[0].port and two.yaml:6: backends[1].weight) on lines of their own:\n%s", r.Stderr)
	}
}

// TestCLICheckMissingFile: check -c on a missing file exits 1 naming it;
// check without -c is a usage error.
func TestCLICheckMissingFile(t *testing.T) {
	t.Parallel()
	r := runLB(t, "", 20*time.Second, "check", "-c", "absent.yaml")
	if r.Code != 1 || !strings.Contains(r.Stderr, "absent.yaml") {
		t.Errorf("check -c absent.yaml: exit %d, stderr %q; want 1 naming absent.yaml", r.Code, r.Stderr)
	}
	r = runLB(t, "", 20*time.Second, "check")
	if r.Code == 0 || len(nonEmptyLines(r.Stderr)) == 0 {
		t.Errorf("check without -c: exit %d, stderr %q; want a non-zero exit and a message", r.Code, r.Stderr)
	}
}
