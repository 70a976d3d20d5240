// Package e2e runs the real load_balancer and lb_backend binaries on
// loopback and talks to them with real clients. TestMain builds the
// binaries once into a temporary directory.
//
// This file holds the helpers every group of tests shares: the binaries
// as processes, their output and log lines, generated configs, backends in
// the test process (HTTP and raw TCP) and clients. The *_helpers_test.go
// files add what one group needs.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// binDir holds the binaries built by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lb-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-race", "-o", dir+string(os.PathSeparator), "../cmd/load_balancer", "../cmd/lb_backend")
	if os.Getenv("E2E_NO_RACE") != "" {
		build = exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "../cmd/load_balancer", "../cmd/lb_backend")
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binaryEnv is the environment of the binaries: a race-enabled build exits
// at once instead of sleeping a second first (to let goroutines report
// races), so that tests can time exits and commands return at once.
func binaryEnv() []string {
	return append(os.Environ(), strings.TrimSpace("GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// deadAddr returns a loopback address where nothing listens (connections
// are refused).
func deadAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}

// waitForPort waits until something accepts TCP connections on addr.
func waitForPort(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after %s: %v", addr, within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// refusesConnections reports whether a new TCP connection to addr is
// refused: nothing listens there.
func refusesConnections(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	c.Close()
	return false
}

// eventually polls cond every 10ms until it holds or within passes, and
// reports whether it held.
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// process is a started binary whose output is kept for assertions and
// shown when the test fails.
type process struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error // exit error, valid after done is closed
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output returns everything the process wrote to stdout and stderr so far.
func (p *process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// WaitForLine waits until a complete line that the process wrote after
// offset from of its output contains every one of subs, and returns it with
// the offset just after it (to look for the next event from there).
func (p *process) WaitForLine(from int, within time.Duration, subs ...string) (string, int) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		out := p.Output()
		pos := from
		for pos < len(out) {
			nl := strings.IndexByte(out[pos:], '\n')
			if nl < 0 {
				break
			}
			line := out[pos : pos+nl]
			pos += nl + 1
			if hasAll(line, subs) {
				return line, pos
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no line with %q in the output of %s within %s; output since offset %d:\n%s",
				subs, p.name, within, from, lastLines(out[min(from, len(out)):], 60))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Signal sends sig to the process.
func (p *process) Signal(sig os.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Logf("signal %v: %v", sig, err)
	}
}

// Wait waits for the process to exit and returns its exit error.
func (p *process) Wait(within time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		p.t.Fatalf("%s did not exit within %s; output:\n%s", p.name, within, lastLines(p.Output(), 40))
		return nil
	}
}

// WaitExit waits for the process to exit and returns its exit code and when
// it was seen to exit.
func (p *process) WaitExit(within time.Duration) (int, time.Time) {
	p.t.Helper()
	err := p.Wait(within)
	return exitCode(err), time.Now()
}

// exitCode returns the exit code of a process that ended with err (from
// process.Wait or exec.Cmd.Run): 0 for nil, -1 when it did not exit on its
// own.
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// start runs binary name (load_balancer or lb_backend) with args in dir
// (a fresh temp dir when ""). The process is killed at the end of the test.
func start(t testing.TB, name string, dir string, args ...string) *process {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	p := &process{t: t, name: name, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, name), args...)
	p.cmd.Dir = dir
	p.cmd.Env = binaryEnv()
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s %v output:\n%s", name, args, p.Output())
		}
	})
	return p
}

// kill stops p with SIGKILL and waits until it is gone, so that its port
// refuses connections from then on.
func kill(t testing.TB, p *process) {
	t.Helper()
	p.Signal(syscall.SIGKILL)
	p.Wait(10 * time.Second)
}

// waitLogged waits until the process wrote a line containing s (true) or
// exited without writing one (false).
func (p *process) waitLogged(s string, within time.Duration) bool {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.Output(), s) {
		select {
		case <-p.done:
			return strings.Contains(p.Output(), s)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not log %q within %s; output:\n%s", p.name, s, within, lastLines(p.Output(), 40))
		}
	}
	return true
}

// startListening starts binary name with the args (and in the directory,
// "" for a fresh one) that launch gives for a free port, and returns once
// it logged ready. freePort can only say that a port was free a moment
// ago: when another process took it first, it tries another one.
func startListening(t testing.TB, name, ready string, within time.Duration, launch func(port int) (dir string, args []string)) (*process, int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		dir, args := launch(port)
		p := start(t, name, dir, args...)
		if p.waitLogged(ready, within) {
			return p, port
		}
		if attempt == 3 || !strings.Contains(p.Output(), "address already in use") {
			t.Fatalf("%s %v exited before it logged %q; output:\n%s", name, args, ready, p.Output())
		}
	}
}

// startDemoBackend starts lb_backend on a free port and returns the process
// (to kill it) and its address.
func startDemoBackend(t testing.TB, name string) (*process, string) {
	t.Helper()
	p, port := startListening(t, "lb_backend", "msg=listening", 10*time.Second, func(port int) (string, []string) {
		return "", demoBackendArgs(name, "127.0.0.1", strconv.Itoa(port))
	})
	return p, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// startDemoBackendAt starts lb_backend on addr (host:port), as a killed one
// comes back, and returns once it listens.
func startDemoBackendAt(t testing.TB, name, addr string) *process {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p := start(t, "lb_backend", "", demoBackendArgs(name, host, port)...)
	if !p.waitLogged("msg=listening", 10*time.Second) {
		t.Fatalf("lb_backend exited before it listened on %s; output:\n%s", addr, p.Output())
	}
	return p
}

func demoBackendArgs(name, host, port string) []string {
	return []string{"--host", host, "--port", port, "--name", name}
}

// startDemoBackends starts an lb_backend for each name and returns the
// processes by name and config entries for them in the order of names.
func startDemoBackends(t testing.TB, names ...string) (map[string]*process, []backendEntry) {
	t.Helper()
	procs := map[string]*process{}
	var entries []backendEntry
	for _, name := range names {
		p, addr := startDemoBackend(t, name)
		procs[name] = p
		entries = append(entries, backendEntry{Addr: addr})
	}
	return procs, entries
}

// balancer is a running load_balancer.
type balancer struct {
	*process
	Addr string // host:port of the proxy listener
	Dir  string // working directory (config files, logs/)
}

// startBalancer writes configYAML (unless "") to lb.yaml in a fresh
// directory and starts load_balancer on a free loopback port with -c lb.yaml
// plus extra args. The admin listener is off unless extra asks for one (a
// later flag wins): balancers running in parallel must not compete for its
// default port. It returns once the balancer logged that it started: it
// listens, handles signals, watches its config (with -w) and its first
// round of health probes is over. The test fails if the race detector
// reports a data race in the balancer.
func startBalancer(t testing.TB, configYAML string, extra ...string) *balancer {
	t.Helper()
	var dir string
	p, port := startListening(t, "load_balancer", "load balancer started", 15*time.Second, func(port int) (string, []string) {
		dir = balancerDir(t, configYAML)
		return dir, balancerArgs(port, configYAML, append([]string{"--admin-addr", "off"}, extra...))
	})
	return newBalancer(t, p, port, dir)
}

// startBalancerArgs is startBalancer with nothing but --host, --port and
// -c added to args, returning as soon as the proxy port accepts
// connections: for a balancer with its default admin address, or one that
// does not log at info level.
func startBalancerArgs(t testing.TB, configYAML string, args ...string) *balancer {
	t.Helper()
	dir, port := balancerDir(t, configYAML), freePort(t)
	b := newBalancer(t, start(t, "load_balancer", dir, balancerArgs(port, configYAML, args)...), port, dir)
	waitForPort(t, b.Addr, 15*time.Second)
	return b
}

// balancerDir returns a fresh working directory for a balancer, with
// configYAML in lb.yaml unless it is "".
func balancerDir(t testing.TB, configYAML string) string {
	t.Helper()
	dir := t.TempDir()
	if configYAML != "" {
		if err := os.WriteFile(filepath.Join(dir, "lb.yaml"), []byte(configYAML), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func balancerArgs(port int, configYAML string, args []string) []string {
	all := []string{"--host", "127.0.0.1", "--port", strconv.Itoa(port)}
	if configYAML != "" {
		all = append(all, "-c", "lb.yaml")
	}
	return append(all, args...)
}

// newBalancer wraps the load_balancer process p listening on port; the test
// fails if the race detector reports a data race in it.
func newBalancer(t testing.TB, p *process, port int, dir string) *balancer {
	t.Cleanup(func() { // runs before the process is killed
		if strings.Contains(p.Output(), "DATA RACE") {
			t.Errorf("the race detector reported a data race in load_balancer")
		}
	})
	return &balancer{process: p, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir}
}

// URL returns the balancer's URL for path.
func (b *balancer) URL(path string) string { return "http://" + b.Addr + path }

// cmdResult is the outcome of running load_balancer as a command.
type cmdResult struct {
	Stdout, Stderr string
	Code           int
}

// runLB runs load_balancer with args in dir (a fresh temp dir when "")
// and waits for it to exit, at most within.
func runLB(t testing.TB, dir string, within time.Duration, args ...string) cmdResult {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "load_balancer"), args...)
	cmd.Dir = dir
	cmd.Env = binaryEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("load_balancer %q did not exit within %s; stdout:\n%s\nstderr:\n%s", args, within, stdout.String(), stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running load_balancer %q: %v", args, err)
	}
	return cmdResult{Stdout: stdout.String(), Stderr: stderr.String(), Code: exitCode(err)}
}

// backendEntry is one backend of a generated config.
type backendEntry struct {
	Addr   string // host:port
	Weight int    // 0: not written (default 1)
	Drain  bool
	Extra  string // more keys of the entry, one per line, e.g. "health_check:\n  path: /ready"
}

// lbConfig builds a config: the strategy (none when ""), the global YAML
// (top-level keys) and the backends.
func lbConfig(strategy, global string, backends ...backendEntry) string {
	var b strings.Builder
	if strategy != "" {
		fmt.Fprintf(&b, "strategy: %s\n", strategy)
	}
	b.WriteString(global)
	if global != "" && !strings.HasSuffix(global, "\n") {
		b.WriteByte('\n')
	}
	b.WriteString("backends:\n")
	for _, e := range backends {
		host, port, _ := net.SplitHostPort(e.Addr)
		fmt.Fprintf(&b, "  - host: %q\n    port: %s\n", host, port)
		if e.Weight != 0 {
			fmt.Fprintf(&b, "    weight: %d\n", e.Weight)
		}
		if e.Drain {
			b.WriteString("    drain: true\n")
		}
		for l := range strings.Lines(e.Extra) {
			b.WriteString("    " + strings.TrimRight(l, "\n") + "\n")
		}
	}
	return b.String()
}

// backendsAt turns addresses into config entries of default weight.
func backendsAt(addrs ...string) []backendEntry {
	out := make([]backendEntry, len(addrs))
	for i, a := range addrs {
		out[i] = backendEntry{Addr: a}
	}
	return out
}

// backendsOf turns test backends into config entries of default weight.
func backendsOf(bs ...*testBackend) []backendEntry {
	out := make([]backendEntry, len(bs))
	for i, b := range bs {
		out[i] = backendEntry{Addr: b.addr}
	}
	return out
}

// writeFileAtomic replaces path as careful tools do: write a temporary
// file next to it, then rename it over path.
func writeFileAtomic(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// testBackend is an HTTP backend in the test process. It names itself in
// the X-Backend header and the body and counts the requests it serves and
// the TCP connections that carried them. It answers its health paths
// (/health and /ready) with a status and body the test can switch, and
// serves slow requests (/delay?d=DURATION[&only=NAME]), telling the test
// when one starts.
type testBackend struct {
	name string
	addr string // 127.0.0.1:port
	srv  *httptest.Server

	requests atomic.Int64 // requests other than health probes
	probes   atomic.Int64 // requests to a health path
	accepted atomic.Int64 // TCP connections accepted (health probes included)
	used     atomic.Int64 // TCP connections that carried at least one request

	mu        sync.Mutex
	seen      map[net.Conn]bool
	health    map[string]healthAnswer // path → answer
	probeHost string                  // Host header of the last probe

	started chan string // request URI of each slow request as it starts
}

type healthAnswer struct {
	code int
	body string
}

// newTestBackend starts a backend on a loopback port; it is closed at the
// end of the test. Both health paths answer 200 "ready".
func newTestBackend(t testing.TB, name string) *testBackend {
	t.Helper()
	return newTestBackendOn(t, name, nil)
}

// newTestBackendOn is newTestBackend serving on ln (a new loopback
// listener when nil).
func newTestBackendOn(t testing.TB, name string, ln net.Listener) *testBackend {
	t.Helper()
	b := &testBackend{
		name:    name,
		seen:    map[net.Conn]bool{},
		health:  map[string]healthAnswer{"/health": {200, "ready"}, "/ready": {200, "ready"}},
		started: make(chan string, 64),
	}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	if ln != nil {
		b.srv.Listener.Close()
		b.srv.Listener = ln
	}
	b.srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.accepted.Add(1)
		case http.StateActive:
			b.mu.Lock()
			if !b.seen[c] {
				b.seen[c] = true
				b.used.Add(1)
			}
			b.mu.Unlock()
		case http.StateClosed, http.StateHijacked:
			// Keep the map small; a closed conn is never active again.
			b.mu.Lock()
			delete(b.seen, c)
			b.mu.Unlock()
		}
	}
	b.srv.Start()
	b.addr = b.srv.Listener.Addr().String()
	t.Cleanup(b.srv.Close)
	return b
}

// Close stops the backend: it refuses connections from now on.
func (b *testBackend) Close() { b.srv.Close() }

// setHealth makes path answer code with body.
func (b *testBackend) setHealth(path string, code int, body string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.health[path] = healthAnswer{code, body}
}

func (b *testBackend) lastProbeHost() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.probeHost
}

func (b *testBackend) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Backend", b.name)
	b.mu.Lock()
	h, isHealth := b.health[r.URL.Path]
	if isHealth {
		b.probeHost = r.Host
	}
	b.mu.Unlock()
	if isHealth {
		b.probes.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(h.code)
		io.WriteString(w, h.body)
		return
	}
	b.requests.Add(1)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch r.URL.Path {
	case "/delay":
		q := r.URL.Query()
		d, err := time.ParseDuration(q.Get("d"))
		if only := q.Get("only"); only != "" && only != b.name {
			d = 0 // slow on one backend only; the others answer at once
		}
		if err != nil || d < 0 {
			d = 0
		}
		if d > 0 {
			select {
			case b.started <- r.RequestURI:
			default:
			}
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "%s waited %s\n", b.name, d)
	case "/set-app-cookie":
		w.Header().Add("Set-Cookie", "app_session=from-backend; Path=/")
		io.WriteString(w, b.name+"\n")
	case "/status500":
		if b.name == "broken" {
			w.WriteHeader(http.StatusInternalServerError)
		}
		io.WriteString(w, b.name+"\n")
	default:
		io.WriteString(w, b.name+"\n")
	}
}

// waitStarted waits for the next slow request to start on b.
func (b *testBackend) waitStarted(t testing.TB, within time.Duration) string {
	t.Helper()
	select {
	case uri := <-b.started:
		return uri
	case <-time.After(within):
		t.Fatalf("no slow request started on backend %s within %s", b.name, within)
		return ""
	}
}

// client is an HTTP client with bounded waits and its own connection pool.
func client(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, ResponseHeaderTimeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// ctxFor returns a context bounded by within, cancelled at test end.
func ctxFor(t testing.TB, within time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	t.Cleanup(cancel)
	return ctx
}

// getResult is what a test keeps of one response.
type getResult struct {
	Status  int
	Backend string // X-Backend
	Body    string
	Header  http.Header
	Reused  bool // the client sent the request on a reused connection
}

// get sends GET url with the given extra header lines ("Name: value") and
// reads the whole response. It fails the test on transport errors.
func get(t testing.TB, c *http.Client, url string, headers ...string) getResult {
	t.Helper()
	r, err := tryGet(c, url, headers...)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return r
}

// tryGet is get returning transport errors; safe to call from goroutines.
func tryGet(c *http.Client, url string, headers ...string) (getResult, error) {
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, url, nil)
	if err != nil {
		return getResult{}, err
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	res, err := c.Do(req)
	if err != nil {
		return getResult{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return getResult{}, fmt.Errorf("reading body: %w", err)
	}
	return getResult{Status: res.StatusCode, Backend: res.Header.Get("X-Backend"), Body: string(body), Header: res.Header, Reused: reused}, nil
}

// servedBy sends n sequential GET requests for url and counts which
// backend answered each; any failure (or a status other than 200) fails
// the test.
func servedBy(t testing.TB, c *http.Client, url string, n int, headers ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for i := range n {
		r, err := tryGet(c, url, headers...)
		if err != nil {
			t.Fatalf("request %d of %d (%s): %v", i+1, n, url, err)
		}
		if r.Status != http.StatusOK {
			t.Fatalf("request %d of %d (%s): status %d from %q, body %q", i+1, n, url, r.Status, r.Backend, r.Body)
		}
		out[r.Backend]++
	}
	return out
}

// dialBalancer opens a raw TCP connection to the balancer with a deadline;
// it is closed at the end of the test.
func dialBalancer(t testing.TB, addr string, within time.Duration) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(within))
	return c, bufio.NewReader(c)
}

// rawExchange sends raw bytes on a fresh TCP connection and returns
// everything the peer sends until it closes, resets, or within passes. It
// reads while it writes and ignores write errors, for requests the peer
// may reject (and hang up on) before reading them whole.
func rawExchange(t testing.TB, addr, request string, within time.Duration) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(within))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		io.WriteString(c, request)
	}()
	var out bytes.Buffer
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	c.Close() // unblocks the writer if the peer stopped reading
	<-wrote
	return out.String()
}

// linesContaining returns the lines of out that contain every one of subs.
func linesContaining(out string, subs ...string) []string {
	var found []string
	for l := range strings.Lines(out) {
		if hasAll(l, subs) {
			found = append(found, strings.TrimRight(l, "\n"))
		}
	}
	return found
}

func hasAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines ...]\n", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "")
}

// logTime returns the time= field of a text log line, or zero.
func logTime(line string) time.Time {
	_, rest, ok := strings.Cut(line, "time=")
	if !ok {
		return time.Time{}
	}
	v, _, _ := strings.Cut(rest, " ")
	ts, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}
	}
	return ts
}
