package e2e

// Hot reload through the watched config file (-w) and SIGHUP: backends
// added, removed (their requests in flight finish) and reweighted; a bad
// file keeps the running config; atomic renames, in-place edits and
// ConfigMap-style symlink swaps are all noticed.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lcReloaded waits for the next "config reloaded" line after offset from
// and returns the offset after it.
func lcReloaded(t testing.TB, lb *balancer, from int) int {
	t.Helper()
	_, next := lb.WaitForLine(from, 10*time.Second, `msg="config reloaded"`)
	return next
}

// TestReloadAddRemoveReweight: with -w -i 100, weighted-round-robin over A
// and B; the file is rewritten (write + rename) to add C (it gets its
// share at once), to remove B while a slow request to B is in flight (B
// gets no new request, the slow one completes with 200 and the log says
// B was removed with one request in flight), and to reweight A:C to 3:1
// (the next 40 requests split 30:10).
func TestReloadAddRemoveReweight(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "A"), newTestBackend(t, "B"), newTestBackend(t, "C")
	const strategy = "weighted-round-robin"
	lb := startBalancer(t, lbConfig(strategy, "", backendsOf(a, b)...), "-w", "-i", "100")
	path := filepath.Join(lb.Dir, "lb.yaml")
	cl := client(t)
	if got := servedBy(t, cl, lb.URL("/"), 20); !lcNear(got, map[string]int{"A": 10, "B": 10}) {
		t.Fatalf("A:B at 1:1 served %v, want 10 each (±1)", got)
	}

	// Add C.
	from := len(lb.Output())
	writeFileAtomic(t, path, lbConfig(strategy, "", backendsOf(a, b, c)...))
	from = lcReloaded(t, lb, from)
	if got := servedBy(t, cl, lb.URL("/"), 30); !lcNear(got, map[string]int{"A": 10, "B": 10, "C": 10}) {
		t.Errorf("after adding C: served %v, want 10 each (±1)", got)
	}

	// A slow request to B, then remove B.
	slow := lcAsyncGet(cl, lb.URL("/delay?d=1500ms&only=B"))
	for placed := false; !placed; {
		select {
		case <-b.started:
			placed = true
		case r := <-slow: // answered by A or C at once: try again
			if r.Err != nil || r.Status != http.StatusOK {
				t.Fatalf("slow request: %v, status %d", r.Err, r.Status)
			}
			slow = lcAsyncGet(cl, lb.URL("/delay?d=1500ms&only=B"))
		case <-time.After(5 * time.Second):
			t.Fatal("no slow request reached B within 5s")
		}
	}
	writeFileAtomic(t, path, lbConfig(strategy, "", backendsOf(a, c)...))
	removed, _ := lb.WaitForLine(from, 10*time.Second, `msg="backend removed"`, "backend=http://"+b.addr)
	if !strings.Contains(removed, "in_flight=1") {
		t.Errorf("removal line %q, want in_flight=1 (the slow request)", removed)
	}
	from = lcReloaded(t, lb, from)
	bBefore := b.requests.Load()
	if got := servedBy(t, cl, lb.URL("/"), 30); !lcNear(got, map[string]int{"A": 15, "C": 15}) {
		t.Errorf("after removing B: served %v, want A and C 15 each (±1)", got)
	}
	if n := b.requests.Load() - bBefore; n != 0 {
		t.Errorf("removed backend B received %d new requests", n)
	}
	r := lcRecv(t, slow, 10*time.Second)
	if r.Err != nil || r.Status != http.StatusOK || r.Backend != "B" || !strings.Contains(r.Body, "B waited 1.5s") {
		t.Errorf("slow request in flight to the removed backend: err %v, status %d from %q, body %q; want 200 from B",
			r.Err, r.Status, r.Backend, r.Body)
	}

	// Reweight A:C to 3:1.
	writeFileAtomic(t, path, lbConfig(strategy, "", backendEntry{Addr: a.addr, Weight: 3}, backendEntry{Addr: c.addr, Weight: 1}))
	lcReloaded(t, lb, from)
	var seq []string
	got := map[string]int{}
	for range 40 {
		r := get(t, cl, lb.URL("/"))
		seq = append(seq, r.Backend)
		got[r.Backend]++
	}
	if !lcNear(got, map[string]int{"A": 30, "C": 10}) {
		t.Errorf("after reweighting A:C to 3:1: served %v, want 30:10 (±1)", got)
	}
	// Smooth: C comes every fourth request or so, never after a long run of A.
	if run, who := longestRun(seq); who == "A" && run > 4 {
		t.Errorf("after reweighting A:C to 3:1, %d requests in a row went to A, want a smooth interleaving: %v", run, seq)
	}
}

// lcNear reports whether got has the backends of want, and only those, each
// with its wanted count ±1 (a smooth weighted round robin carried across a
// reload may be one pick ahead or behind).
func lcNear(got, want map[string]int) bool {
	for k, v := range got {
		if w, ok := want[k]; !ok || v < w-1 || v > w+1 {
			return false
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			return false
		}
	}
	return true
}

// TestReloadChangesStrategyAndCookie: the strategy and the sticky cookie's
// name are reloadable: round-robin becomes sticky with a new cookie name,
// and sessions are pinned with that cookie at once.
func TestReloadChangesStrategyAndCookie(t *testing.T) {
	t.Parallel()
	a, b := newTestBackend(t, "A"), newTestBackend(t, "B")
	lb := startBalancer(t, lbConfig("round-robin", "", backendsOf(a, b)...), "-w", "-i", "100")
	cl := client(t)
	if got := servedBy(t, cl, lb.URL("/"), 10); got["A"] != 5 || got["B"] != 5 {
		t.Fatalf("round-robin: served %v", got)
	}
	from := len(lb.Output())
	writeFileAtomic(t, filepath.Join(lb.Dir, "lb.yaml"), lbConfig("sticky", "sticky:\n  cookie_name: LB_PIN\n", backendsOf(a, b)...))
	line, _ := lb.WaitForLine(from, 10*time.Second, `msg="config reloaded"`)
	if !strings.Contains(line, "strategy=sticky") {
		t.Errorf("reload line %q, want strategy=sticky", line)
	}
	r := get(t, cl, lb.URL("/"))
	_, pin := cookieFrom(r.Header, "LB_PIN")
	if pin == "" {
		t.Fatalf("after the reload to sticky with cookie_name LB_PIN: no LB_PIN cookie in %v", r.Header.Values("Set-Cookie"))
	}
	if got := servedBy(t, cl, lb.URL("/"), 10, "Cookie: LB_PIN="+pin); got[r.Backend] != 10 {
		t.Errorf("pinned to %s by LB_PIN: served %v", r.Backend, got)
	}
}

// TestReloadInvalidConfigKeepsServing: a file with a YAML syntax error,
// then one with an unknown key, keep the running config in service; each
// is logged once, naming the file and line (and the key). Fixing the file
// reloads it.
func TestReloadInvalidConfigKeepsServing(t *testing.T) {
	t.Parallel()
	a, b := newTestBackend(t, "A"), newTestBackend(t, "B")
	good := lbConfig("round-robin", "", backendsOf(a)...)
	lb := startBalancer(t, good, "-w", "-i", "100")
	path := filepath.Join(lb.Dir, "lb.yaml")
	cl := client(t)

	for _, tc := range []struct {
		name, yaml string
		want       []string // in the error line
	}{
		{
			name: "syntax error",
			yaml: good + "  - host: a: b\n",
			want: []string{fmt.Sprintf("lb.yaml:%d", strings.Count(good, "\n")+1), "YAML syntax error"},
		},
		{
			name: "unknown key",
			yaml: good + "    wieght: 3\n",
			want: []string{fmt.Sprintf("lb.yaml:%d", strings.Count(good, "\n")+1), "backends[0].wieght", "unknown key"},
		},
	} {
		from := len(lb.Output())
		writeFileAtomic(t, path, tc.yaml)
		line, _ := lb.WaitForLine(from, 10*time.Second, `msg="config reload failed; running config kept"`)
		for _, w := range tc.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: error line %q does not contain %q", tc.name, line, w)
			}
		}
		// Still serving the old config, and the watcher, polling every
		// 100ms, does not report the same bad file again.
		start := time.Now()
		if got := servedBy(t, cl, lb.URL("/"), 20); got["A"] != 20 {
			t.Errorf("%s: after the bad file, served by %v, want A", tc.name, got)
		}
		time.Sleep(time.Until(start.Add(600 * time.Millisecond))) // an observation window of 6 polls
		if errs := linesContaining(lb.Output()[from:], "level=ERROR"); len(errs) != 1 {
			t.Errorf("%s: %d error lines for one bad file, want 1:\n%s", tc.name, len(errs), strings.Join(errs, "\n"))
		}
		if n := len(linesContaining(lb.Output()[from:], `msg="config reloaded"`)); n != 0 {
			t.Errorf("%s: the bad file was applied (%d reloads)", tc.name, n)
		}
	}

	from := len(lb.Output())
	writeFileAtomic(t, path, lbConfig("round-robin", "", backendsOf(b)...))
	lcReloaded(t, lb, from)
	if got := servedBy(t, cl, lb.URL("/"), 10); got["B"] != 10 {
		t.Errorf("after fixing the file: served by %v, want B", got)
	}
}

// TestReloadDetectsEveryKindOfWrite: with a poll interval of a minute, only
// file notifications can notice a change in time. An in-place edit, an
// atomic rename, turning the file into a symlink, and a Kubernetes
// ConfigMap-style swap of the ..data symlink (the file's path stays the
// same, the directory entry it resolves through changes) are each applied
// within seconds, once each; touching the file reloads nothing.
func TestReloadDetectsEveryKindOfWrite(t *testing.T) {
	t.Parallel()
	bs := []*testBackend{newTestBackend(t, "b0"), newTestBackend(t, "b1"), newTestBackend(t, "b2"), newTestBackend(t, "b3"), newTestBackend(t, "b4")}
	cfg := func(i int) string { return lbConfig("round-robin", "", backendsOf(bs[i])...) }
	lb := startBalancer(t, cfg(0), "-w", "-i", "60000")
	dir := lb.Dir
	path := filepath.Join(dir, "lb.yaml")
	cl := client(t)

	steps := []struct {
		name  string
		write func(content string)
	}{
		{"in-place edit", func(content string) { writeFileInPlace(t, path, content) }},
		{"atomic rename", func(content string) { writeFileAtomic(t, path, content) }},
		{"file replaced by a symlink", func(content string) {
			// ..v1/lb.yaml, ..data -> ..v1, lb.yaml -> ..data/lb.yaml
			lcMust(t, os.Mkdir(filepath.Join(dir, "..v1"), 0o755))
			lcMust(t, os.WriteFile(filepath.Join(dir, "..v1", "lb.yaml"), []byte(content), 0o644))
			lcMust(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
			lcMust(t, os.Symlink(filepath.Join("..data", "lb.yaml"), filepath.Join(dir, "lb.yaml.link")))
			lcMust(t, os.Rename(filepath.Join(dir, "lb.yaml.link"), path))
		}},
		{"ConfigMap symlink swap", func(content string) {
			lcMust(t, os.Mkdir(filepath.Join(dir, "..v2"), 0o755))
			lcMust(t, os.WriteFile(filepath.Join(dir, "..v2", "lb.yaml"), []byte(content), 0o644))
			lcMust(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
			lcMust(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
			lcMust(t, os.RemoveAll(filepath.Join(dir, "..v1")))
		}},
	}
	start := len(lb.Output())
	for i, step := range steps {
		from := len(lb.Output())
		if i == 1 {
			// Touching the file changes no byte: no reload (checked below).
			now := time.Now()
			lcMust(t, os.Chtimes(path, now, now))
		}
		written := time.Now()
		step.write(cfg(i + 1))
		line, _ := lb.WaitForLine(from, 5*time.Second, `msg="config reloaded"`)
		t.Logf("%s: reloaded %s after the write", step.name, logTime(line).Sub(written).Round(time.Millisecond))
		want := bs[i+1].name
		if got := servedBy(t, cl, lb.URL("/"), 5); got[want] != 5 {
			t.Errorf("%s: served by %v, want %s", step.name, got, want)
		}
		if errs := linesContaining(lb.Output()[from:], "level=ERROR"); len(errs) != 0 {
			t.Errorf("%s: errors logged: %v", step.name, errs)
		}
	}
	// One reload per change, however many notifications each write made
	// (observed past the 100ms debounce).
	time.Sleep(300 * time.Millisecond)
	if n := len(linesContaining(lb.Output()[start:], `msg="config reloaded"`)); n != len(steps) {
		t.Errorf("%d reloads for %d changes and a touch, want %d:\n%s", n, len(steps), len(steps), strings.Join(linesContaining(lb.Output()[start:], "config reload"), "\n"))
	}
}

func lcMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestReloadSIGHUP: without -w a changed file is not applied until SIGHUP;
// SIGHUP applies it; SIGHUP with a bad file keeps the running config and
// the process.
func TestReloadSIGHUP(t *testing.T) {
	t.Parallel()
	a, b := newTestBackend(t, "A"), newTestBackend(t, "B")
	lb := startBalancer(t, lbConfig("round-robin", "", backendsOf(a)...))
	path := filepath.Join(lb.Dir, "lb.yaml")
	cl := client(t)

	writeFileAtomic(t, path, lbConfig("round-robin", "", backendsOf(b)...))
	if got := servedBy(t, cl, lb.URL("/"), 10); got["A"] != 10 {
		t.Errorf("file changed, no -w, no SIGHUP: served by %v, want A (unchanged)", got)
	}
	from := len(lb.Output())
	lb.Signal(syscall.SIGHUP)
	line, _ := lb.WaitForLine(from, 10*time.Second, `msg="config reloaded"`)
	if !strings.Contains(line, "trigger=SIGHUP") {
		t.Errorf("reload line %q, want trigger=SIGHUP", line)
	}
	if got := servedBy(t, cl, lb.URL("/"), 10); got["B"] != 10 {
		t.Errorf("after SIGHUP: served by %v, want B", got)
	}

	from = len(lb.Output())
	writeFileAtomic(t, path, "backends:\n  - host: \"127.0.0.1\"\n    port: 0\n")
	lb.Signal(syscall.SIGHUP)
	line, _ = lb.WaitForLine(from, 10*time.Second, `msg="config reload failed; running config kept"`)
	if !strings.Contains(line, "trigger=SIGHUP") || !strings.Contains(line, "lb.yaml:3") {
		t.Errorf("error line %q, want trigger=SIGHUP and lb.yaml:3", line)
	}
	if got := servedBy(t, cl, lb.URL("/"), 10); got["B"] != 10 {
		t.Errorf("after SIGHUP with a bad file: served by %v, want B", got)
	}
	select {
	case <-lb.done:
		t.Fatalf("the balancer exited after SIGHUP with a bad file: %v", lb.err)
	default:
	}
}
