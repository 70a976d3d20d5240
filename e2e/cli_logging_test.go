package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// linesWith returns the lines of the file at path that contain s (none
// when it cannot be read).
func linesWith(path, s string) []string {
	data, _ := os.ReadFile(path)
	return linesContaining(string(data), s)
}

// waitForLines waits until the file at path holds a line containing each
// of subs, and returns the matching lines per sub.
func waitForLines(t *testing.T, path string, subs ...string) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	ok := eventually(10*time.Second, func() bool {
		for _, s := range subs {
			got[s] = linesWith(path, s)
			if len(got[s]) == 0 {
				return false
			}
		}
		return true
	})
	if !ok {
		data, _ := os.ReadFile(path)
		t.Fatalf("log file %s does not get lines for all of %v within 10s; it holds:\n%s", path, subs, data)
	}
	return got
}

// sendPaths sends one GET per path over one keep-alive connection and
// checks the statuses.
func sendPaths(t *testing.T, lb *balancer, want int, paths ...string) {
	t.Helper()
	oc := newOneConnClient(t)
	for _, p := range paths {
		if r := get(t, oc.Client, lb.URL(p)); r.Status != want {
			t.Fatalf("GET %s: status %d, want %d", p, r.Status, want)
		}
	}
}

func uniquePaths(prefix string, n int) []string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("/%s-%d-%d", prefix, time.Now().UnixNano(), i)
	}
	return ps
}

// TestLogDefaultFile: without --log-file the log goes to
// logs/lb-<timestamp>.log under the working directory (created), with one
// access line per request naming method, path, status and backend; the
// same lines go to stderr.
func TestLogDefaultFile(t *testing.T) {
	t.Parallel()
	be := newTestBackend(t, "a")
	lb := startBalancer(t, lbConfig("round-robin", "", backendsOf(be)...))
	paths := uniquePaths("default-log", 5)
	sendPaths(t, lb, http.StatusOK, paths...)

	var file string
	name := regexp.MustCompile(`^lb-[0-9][0-9TZ:._+-]*\.log$`)
	if !eventually(10*time.Second, func() bool {
		ents, _ := os.ReadDir(filepath.Join(lb.Dir, "logs"))
		for _, e := range ents {
			if name.MatchString(e.Name()) {
				file = filepath.Join(lb.Dir, "logs", e.Name())
				return true
			}
		}
		return false
	}) {
		ents, _ := os.ReadDir(lb.Dir)
		t.Fatalf("no logs/lb-<timestamp>.log under the working directory %s; it holds %v", lb.Dir, ents)
	}
	got := waitForLines(t, file, paths...)
	for _, p := range paths {
		lines := got[p]
		if len(lines) != 1 {
			t.Errorf("%d log lines for GET %s, want exactly one access line: %q", len(lines), p, lines)
			continue
		}
		for _, want := range []string{"GET", p, "200", be.addr} {
			if !strings.Contains(lines[0], want) {
				t.Errorf("access line for %s lacks %q: %s", p, want, lines[0])
			}
		}
	}
	// stderr gets the same lines.
	lb.WaitForLine(0, 5*time.Second, paths[len(paths)-1])
}

// TestLogFileFlagJSON: --log-file writes to the given path (directories
// created, relative to the working directory), no default file appears,
// and --log-format json gives one JSON object per access with method,
// path, status and backend.
func TestLogFileFlagJSON(t *testing.T) {
	t.Parallel()
	be := newTestBackend(t, "a")
	lb := startBalancer(t, lbConfig("round-robin", "", backendsOf(be)...), "--log-file", "var/log/e2e.log", "--log-format", "json")
	paths := uniquePaths("json-log", 3)
	sendPaths(t, lb, http.StatusOK, paths...)
	file := filepath.Join(lb.Dir, "var", "log", "e2e.log")
	got := waitForLines(t, file, paths...)
	for _, p := range paths {
		if len(got[p]) != 1 {
			t.Errorf("%d log lines for GET %s, want one: %q", len(got[p]), p, got[p])
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(got[p][0]), &m); err != nil {
			t.Errorf("--log-format json: line is not JSON (%v): %s", err, got[p][0])
			continue
		}
		if m["method"] != "GET" || m["path"] != p || fmt.Sprint(m["status"]) != "200" || !strings.Contains(fmt.Sprint(m["backend"]), be.addr) {
			t.Errorf("access line for %s: method %v, path %v, status %v, backend %v; want GET, %s, 200, %s",
				p, m["method"], m["path"], m["status"], m["backend"], p, be.addr)
		}
	}
	if _, err := os.Stat(filepath.Join(lb.Dir, "logs")); err == nil {
		t.Errorf("with --log-file the default logs/ directory was created too")
	}
}

// TestLogFileFlagWinsOverFile: --log-file wins over log.file in the config.
func TestLogFileFlagWinsOverFile(t *testing.T) {
	t.Parallel()
	be := newTestBackend(t, "a")
	lb := startBalancer(t, lbConfig("round-robin", "log:\n  file: from-file.log\n", backendsOf(be)...), "--log-file", "from-flag.log")
	paths := uniquePaths("flag-wins", 2)
	sendPaths(t, lb, http.StatusOK, paths...)
	waitForLines(t, filepath.Join(lb.Dir, "from-flag.log"), paths...)
	if lines := linesWith(filepath.Join(lb.Dir, "from-file.log"), paths[0]); len(lines) > 0 {
		t.Errorf("the config's log.file got access lines although --log-file was given")
	}
}

// TestLogLevelFlag: --log-level warn drops the info access lines of
// successful requests but keeps the warning of a failed one.
func TestLogLevelFlag(t *testing.T) {
	t.Parallel()
	be := newTestBackend(t, "a")
	// At level warn the balancer does not log that it started.
	lb := startBalancerArgs(t, lbConfig("round-robin", "", backendsOf(be)...), "--admin-addr", "off", "--log-file", "lb.log", "--log-level", "warn")
	quiet := uniquePaths("quiet", 3)
	oc := newOneConnClient(t)
	for _, p := range quiet {
		if r := get(t, oc.Client, lb.URL(p)); r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d", p, r.Status)
		}
	}
	be.Close()
	marker := uniquePaths("marker", 1)[0]
	if r := get(t, oc.Client, lb.URL(marker)); r.Status < 500 {
		t.Fatalf("GET %s with the only backend down: status %d", marker, r.Status)
	}
	// The requests share one client connection, so the server logged the
	// quiet ones (if at all) before it read the marker request.
	file := filepath.Join(lb.Dir, "lb.log")
	got := waitForLines(t, file, marker)
	if !strings.Contains(strings.ToUpper(got[marker][0]), "WARN") && !strings.Contains(strings.ToUpper(got[marker][0]), "ERROR") {
		t.Errorf("line for the failed request is not a warning or error: %s", got[marker][0])
	}
	for _, p := range quiet {
		if lines := linesWith(file, p); len(lines) > 0 {
			t.Errorf("--log-level warn: info access line logged for %s: %s", p, lines[0])
		}
	}
}
