package e2e

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCLIHelp: -h and --help exit 0 and document every flag of the seed,
// short and long form, with its default.
func TestCLIHelp(t *testing.T) {
	t.Parallel()
	flags := []struct {
		short, long string
		want        []string // more strings the flag's line must hold
	}{
		{"-h", "--help", nil},
		{"-H", "--host", []string{"0.0.0.0"}},
		{"-p", "--port", []string{"9000"}},
		{"-c", "--config", nil},
		{"-s", "--strategy", []string{"random", "round-robin", "weighted-round-robin", "sticky"}},
		{"", "--cookie-name", []string{"ZZZ_BACKEND_ID"}},
		{"", "--log-file", []string{"logs/lb-<timestamp>.log"}},
		{"", "--log-level", []string{"info"}},
		{"", "--log-format", []string{"text"}},
		{"-w", "--watch", nil},
		{"-i", "--interval", []string{"2000"}},
	}
	for _, arg := range []string{"--help", "-h"} {
		r := runLB(t, "", 20*time.Second, arg)
		if r.Code != 0 {
			t.Errorf("%s: exit status %d, want 0; stderr: %s", arg, r.Code, r.Stderr)
		}
		out := r.Stdout + r.Stderr
		lines := strings.Split(out, "\n")
		for _, f := range flags {
			line := flagLine(lines, f.long)
			if line == "" {
				t.Errorf("%s: no line documents %s\n%s", arg, f.long, out)
				continue
			}
			if f.short != "" && !strings.Contains(line, f.short+",") {
				t.Errorf("%s: the line of %s does not give its short form %s: %q", arg, f.long, f.short, line)
			}
			for _, w := range f.want {
				if !strings.Contains(line, w) {
					t.Errorf("%s: the line of %s does not mention %q: %q", arg, f.long, w, line)
				}
			}
		}
		// The -c line says what happens without it.
		if !strings.Contains(out, "9001") || !strings.Contains(out, "9002") {
			t.Errorf("%s: the help does not say that without -c the balancer uses 127.0.0.1:9001 and :9002", arg)
		}
		for _, sub := range []string{"check", "version"} {
			if !strings.Contains(out, sub) {
				t.Errorf("%s: the help does not mention the %s subcommand", arg, sub)
			}
		}
	}
}

// flagLine returns the help line that documents the flag long ("--host"):
// the first one that starts with it, after an optional "-H, ".
func flagLine(lines []string, long string) string {
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if len(t) > 4 && t[0] == '-' && t[1] != '-' && t[2] == ',' {
			t = strings.TrimSpace(t[3:])
		}
		rest, ok := strings.CutPrefix(t, long)
		if ok && (rest == "" || strings.ContainsRune(" [=", rune(rest[0]))) {
			return l
		}
	}
	return ""
}

// TestCLIVersion: --version and the version subcommand print one line with
// a version, the same one.
func TestCLIVersion(t *testing.T) {
	t.Parallel()
	var got []string
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := runLB(t, "", 20*time.Second, args...)
		lines := nonEmptyLines(r.Stdout)
		if r.Code != 0 || len(lines) != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 0 and one line", args, r.Code, r.Stdout, r.Stderr)
			continue
		}
		fields := strings.Fields(lines[0])
		if len(fields) < 2 || fields[0] != "load_balancer" || fields[len(fields)-1] == "" {
			t.Errorf("%v: %q, want \"load_balancer VERSION\"", args, lines[0])
		}
		got = append(got, lines[0])
	}
	if len(got) == 2 && got[0] != got[1] {
		t.Errorf("--version says %q but version says %q", got[0], got[1])
	}
}

// TestCLIBadValues: a bad command line exits non-zero at once with one clear
// line on stderr that names the problem, and never listens.
func TestCLIBadValues(t *testing.T) {
	t.Parallel()
	be := newTestBackend(t, "a")
	good := lbConfig("round-robin", "", backendsOf(be)...)
	for _, tc := range []struct {
		name    string
		args    []string
		mention []string // the message must hold each (case-insensitive)
		late    bool     // found only when binding: the log file may exist
	}{
		{"unknown strategy", []string{"-s", "fastest"}, []string{"strategy", "fastest"}, false},
		{"unknown strategy long", []string{"--strategy=least-conn"}, []string{"strategy", "least-conn"}, false},
		{"port out of range", []string{"-p", "70000"}, []string{"port", "70000"}, false},
		{"port not a number", []string{"--port", "http"}, []string{"port", "http"}, false},
		{"port zero", []string{"-p", "0"}, []string{"port"}, false},
		{"missing config file", []string{"-c", "no-such-file.yaml"}, []string{"no-such-file.yaml"}, false},
		{"interval zero", []string{"-w", "-i", "0"}, []string{"interval"}, false},
		{"interval negative", []string{"-i", "-5"}, []string{"interval"}, false},
		{"log level", []string{"--log-level", "loud"}, []string{"loud"}, false},
		{"log format", []string{"--log-format", "xml"}, []string{"xml"}, false},
		{"cookie name", []string{"-s", "sticky", "--cookie-name", "bad name;"}, []string{"cookie"}, false},
		{"unknown flag", []string{"--frobnicate"}, []string{"frobnicate"}, false},
		{"stray argument", []string{"extra"}, []string{"extra"}, false},
		{"bad host", []string{"-H", "256.1.1.1"}, []string{"256.1.1.1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "lb.yaml"), []byte(good), 0o644); err != nil {
				t.Fatal(err)
			}
			port := strconv.Itoa(freePort(t))
			args := append([]string{"-H", "127.0.0.1", "-p", port, "-c", "lb.yaml"}, tc.args...)
			// (-H and -p given twice: the last one counts.)
			r := runLB(t, dir, 5*time.Second, args...)
			if r.Code == 0 {
				t.Fatalf("%v: exit status 0, want non-zero; stderr %q", tc.args, r.Stderr)
			}
			lines := nonEmptyLines(r.Stderr)
			if len(lines) != 1 {
				t.Errorf("%v: stderr has %d lines, want one clear line:\n%s", tc.args, len(lines), r.Stderr)
			}
			for _, m := range tc.mention {
				if !strings.Contains(strings.ToLower(r.Stderr), strings.ToLower(m)) {
					t.Errorf("%v: stderr %q does not mention %q", tc.args, r.Stderr, m)
				}
			}
			if strings.Contains(r.Stderr+r.Stdout, "started") {
				t.Errorf("%v: the balancer started before failing: %s", tc.args, r.Stderr)
			}
			if !refusesConnections(net.JoinHostPort("127.0.0.1", port)) {
				t.Errorf("%v: something listens on port %s", tc.args, port)
			}
			if _, err := os.Stat(filepath.Join(dir, "logs")); err == nil && !tc.late {
				t.Errorf("%v: a logs/ directory was created although the command line is bad", tc.args)
			}
		})
	}
}

// TestCLINoConfigUsesSeedBackends: without -c the balancer balances
// 127.0.0.1:9001 and 127.0.0.1:9002 (only when both ports are free here).
func TestCLINoConfigUsesSeedBackends(t *testing.T) {
	t.Parallel()
	var lns []net.Listener
	for _, addr := range []string{"127.0.0.1:9001", "127.0.0.1:9002"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			t.Skipf("port %s is busy (%v): cannot stand in for the default backends", addr, err)
		}
		lns = append(lns, ln)
	}
	newTestBackendOn(t, "9001", lns[0])
	newTestBackendOn(t, "9002", lns[1])
	lb := startBalancer(t, "", "-s", "round-robin")
	res := spread(client(t), lb.URL("/"), 20, 2)
	if len(res.Failures) > 0 {
		t.Fatalf("without -c: %d failures, first %s", len(res.Failures), res.Failures[0])
	}
	if res.ByBackend["9001"] != 10 || res.ByBackend["9002"] != 10 {
		t.Errorf("without -c, round robin over 20 requests: %v, want 10 on each of 9001 and 9002", res.ByBackend)
	}
}

// TestCLIFlagsWinOverFile: -s, --cookie-name and -p given on the command
// line win over strategy, sticky.cookie_name and listen.port in the file.
func TestCLIFlagsWinOverFile(t *testing.T) {
	t.Parallel()
	a, b := newTestBackend(t, "a"), newTestBackend(t, "b")

	t.Run("file sticky, flag round-robin", func(t *testing.T) {
		t.Parallel()
		filePort := freePort(t)
		extra := "listen:\n  host: 127.0.0.1\n  port: " + strconv.Itoa(filePort) + "\n"
		lb := startBalancer(t, lbConfig("sticky", extra, backendsOf(a, b)...), "-s", "round-robin")
		oc := newOneConnClient(t)
		var seq []string
		for i := range 10 {
			r := get(t, oc.Client, lb.URL("/"))
			if sc := r.Header.Values("Set-Cookie"); len(sc) > 0 {
				t.Fatalf("request %d: Set-Cookie %q: the file's sticky strategy is in use, not -s round-robin", i, sc)
			}
			seq = append(seq, r.Backend)
		}
		for i := 1; i < len(seq); i++ {
			if seq[i] == seq[i-1] {
				t.Fatalf("with -s round-robin consecutive requests went to the same backend: %v", seq)
			}
		}
		if !refusesConnections(net.JoinHostPort("127.0.0.1", strconv.Itoa(filePort))) {
			t.Errorf("the balancer also listens on the file's listen.port %d although -p was given", filePort)
		}
	})
	t.Run("file round-robin, flag sticky", func(t *testing.T) {
		t.Parallel()
		extra := "sticky:\n  cookie_name: FROM_FILE\n"
		lb := startBalancer(t, lbConfig("round-robin", extra, backendsOf(a, b)...), "--strategy", "sticky", "--cookie-name", "FROM_FLAG")
		r := get(t, client(t), lb.URL("/"))
		if _, v := cookieFrom(r.Header, "FROM_FLAG"); v == "" {
			t.Errorf("-s sticky --cookie-name FROM_FLAG: no FROM_FLAG cookie; Set-Cookie %q", r.Header.Values("Set-Cookie"))
		}
		if _, v := cookieFrom(r.Header, "FROM_FILE"); v != "" {
			t.Errorf("the file's cookie name won over --cookie-name")
		}
	})
	t.Run("file strategy without flag", func(t *testing.T) {
		t.Parallel()
		lb := startBalancer(t, lbConfig("sticky", "", backendsOf(a, b)...))
		if r := get(t, client(t), lb.URL("/")); r.Header.Get("Set-Cookie") == "" {
			t.Errorf("strategy: sticky in the file is not applied without -s")
		}
	})
}

// TestCLIWatchReloads: with -w -i 100 a changed config file is applied
// without a restart: a new backend gets traffic, a removed one none.
func TestCLIWatchReloads(t *testing.T) {
	t.Parallel()
	a, b := newTestBackend(t, "a"), newTestBackend(t, "b")
	lb := startBalancer(t, lbConfig("round-robin", "", backendsOf(a)...), "-w", "-i", "100")
	cl := client(t)
	if r := get(t, cl, lb.URL("/")); r.Backend != "a" {
		t.Fatalf("before the change: served by %q", r.Backend)
	}
	path := filepath.Join(lb.Dir, "lb.yaml")
	writeFileAtomic(t, path, lbConfig("round-robin", "", backendsOf(b)...))
	var last getResult
	if !eventually(10*time.Second, func() bool {
		last = get(t, cl, lb.URL("/watch"))
		return last.Status == http.StatusOK && last.Backend == "b"
	}) {
		t.Fatalf("10s after lb.yaml changed from backend a to b (-w -i 100), requests still go to %q", last.Backend)
	}
	for i := range 20 {
		if r := get(t, cl, lb.URL("/watch")); r.Backend != "b" {
			t.Fatalf("request %d after the reload went to %q, want b only", i, r.Backend)
		}
	}

	// A broken file changes nothing but a log line naming it...
	from := len(lb.Output())
	writeFileAtomic(t, path, "backends:\n  - host: \"127.0.0.1\"\n    port: 70000\n")
	if !eventually(10*time.Second, func() bool { return strings.Contains(lb.Output()[from:], "lb.yaml:3") }) {
		t.Fatalf("no log line names lb.yaml:3 within 10s of writing a bad file; output since:\n%s", lb.Output()[from:])
	}
	for i := range 10 {
		if r := get(t, cl, lb.URL("/watch")); r.Status != http.StatusOK || r.Backend != "b" {
			t.Fatalf("request %d after a bad file: status %d from %q, want 200 from b", i, r.Status, r.Backend)
		}
	}
	// ...and the watcher keeps watching.
	writeFileAtomic(t, path, lbConfig("round-robin", "", backendsOf(a)...))
	if !eventually(10*time.Second, func() bool {
		last = get(t, cl, lb.URL("/watch"))
		return last.Status == http.StatusOK && last.Backend == "a"
	}) {
		t.Fatalf("10s after lb.yaml was fixed to backend a, requests still go to %q", last.Backend)
	}
}
