package e2e

// Helpers of the health_*, reload_* and shutdown_* end-to-end tests:
// backends whose health answer can be switched and that report slow
// requests as they start, raw TCP backends (WebSocket-style echo, hang-up),
// config files written the ways editors and operators write them, waiting
// for log events of the balancer, and clients that keep load on it.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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

// lcAdminArgs returns "--admin-addr off" once the balancer has that flag
// (it is being added), so that balancers running in parallel never compete
// for the admin listener's default port; until then nothing (the configs
// below also say admin.addr: off).
func lcAdminArgs() []string {
	lcAdminOnce.Do(func() {
		cmd := exec.Command(filepath.Join(binDir, "load_balancer"), "--help")
		cmd.Env = lcEnv()
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), "--admin-addr") {
			lcAdminFlag = []string{"--admin-addr", "off"}
		}
	})
	return lcAdminFlag
}

var (
	lcAdminOnce sync.Once
	lcAdminFlag []string
)

// lcEnv is the environment of the binaries: a race-enabled build exits at
// once instead of sleeping a second first.
func lcEnv() []string {
	return append(os.Environ(), strings.TrimSpace("GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// lcStart is the harness's start, except that a race-enabled binary exits
// at once instead of sleeping a second first, so that tests can time exits.
func lcStart(t testing.TB, name, dir string, args ...string) *process {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	p := &process{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, name), args...)
	p.cmd.Dir = dir
	p.cmd.Env = lcEnv()
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

// lcStartLB writes configYAML to lb.yaml in a fresh directory and starts
// the balancer on it with extra args; see lcStartLBIn.
func lcStartLB(t testing.TB, configYAML string, extra ...string) *balancer {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lb.yaml"), []byte(configYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	return lcStartLBIn(t, dir, "lb.yaml", extra...)
}

// lcStartLBIn starts load_balancer in dir with -c cfg (a path relative to
// dir) on a free loopback port, and returns once the port accepts
// connections and the balancer logged that it started (its first round of
// health probes is over). The test fails if the race detector reports a
// race in the balancer.
func lcStartLBIn(t testing.TB, dir, cfg string, extra ...string) *balancer {
	t.Helper()
	port := freePort(t)
	args := []string{"--host", "127.0.0.1", "--port", strconv.Itoa(port), "-c", cfg}
	args = append(args, lcAdminArgs()...)
	args = append(args, extra...)
	p := lcStart(t, "load_balancer", dir, args...)
	t.Cleanup(func() { // runs before the process is killed
		if strings.Contains(p.Output(), "DATA RACE") {
			t.Errorf("the race detector reported a data race in load_balancer")
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitForPort(t, addr, 15*time.Second)
	p.WaitForOutput("load balancer started", 15*time.Second)
	return &balancer{process: p, Addr: addr, Dir: dir}
}

// lcEntry is one backend of a generated config.
type lcEntry struct {
	Addr   string // host:port
	Weight int    // 0: not written
	Drain  bool
	Extra  string // more keys of the entry, one per line, e.g. "health_check:\n  path: /ready"
}

// lcConfig builds a config: the admin listener off, the strategy (none when
// ""), the global YAML (top-level keys) and the backends.
func lcConfig(strategy, global string, entries ...lcEntry) string {
	var b strings.Builder
	b.WriteString("admin:\n  addr: \"off\"\n")
	if strategy != "" {
		fmt.Fprintf(&b, "strategy: %s\n", strategy)
	}
	b.WriteString(global)
	if global != "" && !strings.HasSuffix(global, "\n") {
		b.WriteByte('\n')
	}
	b.WriteString("backends:\n")
	for _, e := range entries {
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

// lcEntries turns addresses into config entries of default weight.
func lcEntries(addrs ...string) []lcEntry {
	out := make([]lcEntry, len(addrs))
	for i, a := range addrs {
		out[i] = lcEntry{Addr: a}
	}
	return out
}

// lcFastHealth is a global health_check that notices changes within a few
// hundred milliseconds, with passive checks off so that only probes decide.
const lcFastHealth = "health_check:\n  interval: 100ms\n  timeout: 80ms\n  fall: 2\n  rise: 2\n" +
	"passive_health:\n  enabled: false\n"

// lcWriteAtomic replaces path as careful tools do: write a temporary file
// next to it, then rename it over path.
func lcWriteAtomic(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// lcWriteInPlace rewrites path in place (truncate, write), as many editors
// do: the file keeps its inode.
func lcWriteInPlace(t testing.TB, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// lcLines returns the lines of out that contain every one of subs.
func lcLines(out string, subs ...string) []string {
	var found []string
	for l := range strings.Lines(out) {
		if lcHasAll(l, subs) {
			found = append(found, strings.TrimRight(l, "\n"))
		}
	}
	return found
}

func lcHasAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// lcWaitLine waits until a complete line written after offset from of p's
// output contains every one of subs, and returns it with the offset just
// after it (to look for the next event from there).
func lcWaitLine(t testing.TB, p *process, from int, within time.Duration, subs ...string) (string, int) {
	t.Helper()
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
			if lcHasAll(line, subs) {
				return line, pos
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q in the balancer's output within %s; output since offset %d:\n%s", subs, within, from, lcTail(out[min(from, len(out)):], 60))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lcTail returns the last n lines of s.
func lcTail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines ...]\n", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "")
}

// lcLogTime returns the time= field of a text log line, or zero.
func lcLogTime(line string) time.Time {
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

// lcExitCode returns the exit code of a process that ended with err (from
// process.Wait).
func lcExitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// lcWaitExit waits until p has exited, at most within, and returns its exit
// code and when it was seen to exit.
func lcWaitExit(t testing.TB, p *process, within time.Duration) (int, time.Time) {
	t.Helper()
	select {
	case <-p.done:
		return lcExitCode(p.err), time.Now()
	case <-time.After(within):
		t.Fatalf("the balancer did not exit within %s; output:\n%s", within, lcTail(p.Output(), 40))
		return 0, time.Time{}
	}
}

// lcRefused reports whether a new TCP connection to addr is refused.
func lcRefused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	c.Close()
	return false
}

// lcBackend is an HTTP backend in the test process. It names itself in the
// X-Backend header and the body, answers its health paths (/health and
// /ready) with a status and body the test can switch, and serves slow
// (/delay?d=DURATION[&only=NAME]) and streaming (/chunked?n=N&interval=D)
// responses, telling the test when a slow request starts.
type lcBackend struct {
	name string
	addr string
	srv  *httptest.Server

	requests atomic.Int64 // requests other than health probes
	probes   atomic.Int64 // requests to a health path

	mu        sync.Mutex
	health    map[string]lcHealth // path → answer
	probeHost string              // Host header of the last probe

	started chan string // request URI of each slow request as it starts
}

type lcHealth struct {
	code int
	body string
}

// newLCBackend starts a backend on a loopback port; it is closed at the end
// of the test. Both health paths answer 200 "ready".
func newLCBackend(t testing.TB, name string) *lcBackend {
	t.Helper()
	b := &lcBackend{
		name:    name,
		health:  map[string]lcHealth{"/health": {200, "ready"}, "/ready": {200, "ready"}},
		started: make(chan string, 64),
	}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	b.addr = b.srv.Listener.Addr().String()
	t.Cleanup(b.srv.Close)
	return b
}

// setHealth makes path answer code with body.
func (b *lcBackend) setHealth(path string, code int, body string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.health[path] = lcHealth{code, body}
}

func (b *lcBackend) lastProbeHost() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.probeHost
}

func (b *lcBackend) serve(w http.ResponseWriter, r *http.Request) {
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
	q := r.URL.Query()
	switch r.URL.Path {
	case "/delay":
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
	case "/chunked":
		n, _ := strconv.Atoi(q.Get("n"))
		interval, _ := time.ParseDuration(q.Get("interval"))
		rc := http.NewResponseController(w)
		for i := 1; i <= n; i++ {
			if i > 1 {
				select {
				case <-time.After(interval):
				case <-r.Context().Done():
					return
				}
			}
			fmt.Fprintf(w, "%s chunk %d/%d\n", b.name, i, n)
			if rc.Flush() != nil {
				return
			}
		}
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
func (b *lcBackend) waitStarted(t testing.TB, within time.Duration) string {
	t.Helper()
	select {
	case uri := <-b.started:
		return uri
	case <-time.After(within):
		t.Fatalf("no slow request started on backend %s within %s", b.name, within)
		return ""
	}
}

// lcRawBackend is a TCP server in the test process that runs serve on each
// connection: for backends that break HTTP on purpose or switch protocols.
type lcRawBackend struct {
	addr     string
	ln       net.Listener
	accepted atomic.Int64 // connections, health probes included
	requests atomic.Int64 // requests read (serve reports them with seen)

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// lcStartRaw starts a raw backend; serve gets each connection with a
// buffered reader over it and must return when the connection fails. At
// the end of the test the listener and every connection are closed and the
// serving goroutines waited for.
func lcStartRaw(t testing.TB, serve func(rb *lcRawBackend, c net.Conn, br *bufio.Reader)) *lcRawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &lcRawBackend{addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	rb.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rb.accepted.Add(1)
			rb.mu.Lock()
			rb.conns[c] = struct{}{}
			rb.mu.Unlock()
			rb.wg.Go(func() {
				defer func() {
					c.Close()
					rb.mu.Lock()
					delete(rb.conns, c)
					rb.mu.Unlock()
				}()
				serve(rb, c, bufio.NewReader(c))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		rb.mu.Lock()
		for c := range rb.conns {
			c.Close()
		}
		rb.mu.Unlock()
		rb.wg.Wait()
	})
	return rb
}

// lcUpgradeEcho serves like a WebSocket server that echoes: an Upgrade
// request gets 101 and then every byte back; any other request gets a 200
// naming name and the connection is closed.
func lcUpgradeEcho(name string) func(rb *lcRawBackend, c net.Conn, br *bufio.Reader) {
	return func(rb *lcRawBackend, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		rb.requests.Add(1)
		if req.Header.Get("Upgrade") == "" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Backend: "+name+"\r\nContent-Length: "+strconv.Itoa(len(name)+1)+"\r\nConnection: close\r\n\r\n"+name+"\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Backend: "+name+"\r\n\r\n")
		io.Copy(c, br)
	}
}

// lcOpenTunnel sends a WebSocket-style upgrade request to the balancer and
// returns the connection once the 101 arrived.
func lcOpenTunnel(t testing.TB, lbAddr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", lbAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: lb.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("upgrade through the balancer: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade through the balancer: status %d, want 101", res.StatusCode)
	}
	c.SetDeadline(time.Time{})
	return c, br
}

// lcEcho sends msg and a newline through an echoing tunnel and reports
// whether the same line came back within 5s.
func lcEcho(c net.Conn, br *bufio.Reader, msg string) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return fmt.Errorf("writing %q: %w", msg, err)
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the echo of %q: %w", msg, err)
	}
	if line != msg+"\n" {
		return fmt.Errorf("echo %q, want %q", line, msg+"\n")
	}
	return nil
}

// lcDeadAddr returns a loopback address that refuses connections.
func lcDeadAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}

// lcLoad is a set of clients sending GET requests in a loop until stopped,
// each over its own keep-alive connections.
type lcLoad struct {
	ok     atomic.Int64
	failed atomic.Int64

	mu        sync.Mutex
	failures  []string // the first few
	byBackend map[string]int64

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// lcStartLoad starts clients goroutines sending GET url, pausing pause
// between requests. They are stopped at the end of the test at the latest.
func lcStartLoad(t testing.TB, url string, clients int, pause time.Duration) *lcLoad {
	l := &lcLoad{byBackend: map[string]int64{}, stop: make(chan struct{})}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	for i := range clients {
		tr := &http.Transport{MaxIdleConnsPerHost: 2, ResponseHeaderTimeout: 10 * time.Second}
		c := &http.Client{Transport: tr, Timeout: 15 * time.Second}
		l.wg.Go(func() {
			defer tr.CloseIdleConnections()
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				r, err := tryGet(c, fmt.Sprintf("%s%sclient=%d&n=%d", url, sep, i, n))
				l.mu.Lock()
				switch {
				case err != nil:
					l.failed.Add(1)
					if len(l.failures) < 10 {
						l.failures = append(l.failures, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
					}
				case r.Status != http.StatusOK:
					l.failed.Add(1)
					if len(l.failures) < 10 {
						l.failures = append(l.failures, fmt.Sprintf("%s: status %d from %q: %q", time.Now().Format("15:04:05.000"), r.Status, r.Backend, r.Body))
					}
				default:
					l.ok.Add(1)
					l.byBackend[r.Backend]++
				}
				l.mu.Unlock()
				if pause > 0 {
					select {
					case <-l.stop:
						return
					case <-time.After(pause):
					}
				}
			}
		})
	}
	t.Cleanup(l.Stop)
	return l
}

// Stop stops the clients and waits for them.
func (l *lcLoad) Stop() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// Failures returns the first failures seen.
func (l *lcLoad) Failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.failures...)
}

// Served returns how many requests each backend answered.
func (l *lcLoad) Served() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int64, len(l.byBackend))
	for k, v := range l.byBackend {
		out[k] = v
	}
	return out
}

// waitServed waits until backend has answered at least n more requests
// than it had when the wait began.
func (l *lcLoad) waitServed(t testing.TB, backend string, n int64, within time.Duration) {
	t.Helper()
	base := l.Served()[backend]
	if !eventually(within, func() bool { return l.Served()[backend] >= base+n }) {
		t.Fatalf("backend %q answered %d requests of the load within %s, want %d; served %v, failures %v",
			backend, l.Served()[backend]-base, within, n, l.Served(), l.Failures())
	}
}

// waitOK waits until at least n more requests succeeded than when the wait
// began.
func (l *lcLoad) waitOK(t testing.TB, n int64, within time.Duration) {
	t.Helper()
	base := l.ok.Load()
	if !eventually(within, func() bool { return l.ok.Load() >= base+n }) {
		t.Fatalf("%d requests of the load succeeded within %s, want %d; failures %v", l.ok.Load()-base, within, n, l.Failures())
	}
}

// lcServedBy sends n sequential GET requests for url and counts which
// backend answered each; any failure fails the test.
func lcServedBy(t testing.TB, c *http.Client, url string, n int, headers ...string) map[string]int {
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

// lcAsyncGet sends GET url in a goroutine; the result arrives on the
// returned channel. The goroutine ends when the request does (bounded by
// the client's timeout).
func lcAsyncGet(c *http.Client, url string, headers ...string) <-chan lcResult {
	ch := make(chan lcResult, 1)
	go func() {
		start := time.Now()
		r, err := tryGet(c, url, headers...)
		ch <- lcResult{getResult: r, Err: err, Took: time.Since(start), Done: time.Now()}
	}()
	return ch
}

type lcResult struct {
	getResult
	Err  error
	Took time.Duration
	Done time.Time
}

// lcRecv waits for a result of lcAsyncGet.
func lcRecv(t testing.TB, ch <-chan lcResult, within time.Duration) lcResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(within):
		t.Fatalf("request not finished within %s", within)
		return lcResult{}
	}
}

// lcAccessLines waits until the balancer's output after offset from holds
// n access lines for path (query excluded) and returns them. Access lines
// are written as requests end, a moment after the client has the response.
func lcAccessLines(t testing.TB, p *process, from int, path string, n int) []string {
	t.Helper()
	var lines []string
	if !eventually(5*time.Second, func() bool {
		lines = lcLines(p.Output()[from:], "msg=access", "path="+path+" ")
		return len(lines) >= n
	}) {
		t.Fatalf("%d access lines for path %s, want %d", len(lines), path, n)
	}
	return lines
}

// lcCount returns how many of lines contain sub.
func lcCount(lines []string, sub string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}
