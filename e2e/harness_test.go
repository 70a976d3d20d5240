// Package e2e runs the real load_balancer and lb_backend binaries on
// loopback and talks to them with real clients. TestMain builds the
// binaries once into a temporary directory.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

// process is a started binary whose output is kept for assertions and
// shown when the test fails.
type process struct {
	t    testing.TB
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

// WaitForOutput waits until the process's output contains s.
func (p *process) WaitForOutput(s string, within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.Output(), s) {
		if time.Now().After(deadline) {
			p.t.Fatalf("process output does not contain %q after %s; output:\n%s", s, within, p.Output())
		}
		time.Sleep(10 * time.Millisecond)
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
		p.t.Fatalf("process did not exit within %s; output:\n%s", within, p.Output())
		return nil
	}
}

// start runs binary name (load_balancer or lb_backend) with args in dir
// (a fresh temp dir when ""). The process is killed at the end of the test.
func start(t testing.TB, name string, dir string, args ...string) *process {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	p := &process{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, name), args...)
	p.cmd.Dir = dir
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

// balancer is a running load_balancer.
type balancer struct {
	*process
	Addr string // host:port of the proxy listener
	Dir  string // working directory (config files, logs/)
}

// startBalancer writes configYAML (unless "") to lb.yaml in a fresh
// directory and starts load_balancer on a free loopback port with -c lb.yaml
// plus extra args; it returns once the proxy port accepts connections.
func startBalancer(t testing.TB, configYAML string, extra ...string) *balancer {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	args := []string{"--host", "127.0.0.1", "--port", strconv.Itoa(port)}
	if configYAML != "" {
		if err := os.WriteFile(filepath.Join(dir, "lb.yaml"), []byte(configYAML), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-c", "lb.yaml")
	}
	args = append(args, extra...)
	p := start(t, "load_balancer", dir, args...)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitForPort(t, addr, 10*time.Second)
	return &balancer{process: p, Addr: addr, Dir: dir}
}

// URL returns the balancer's URL for path.
func (b *balancer) URL(path string) string { return "http://" + b.Addr + path }

// startDemoBackend starts lb_backend on a free port and returns its address.
func startDemoBackend(t testing.TB, name string) string {
	t.Helper()
	port := freePort(t)
	start(t, "lb_backend", "", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--name", name)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitForPort(t, addr, 10*time.Second)
	return addr
}

// backendsYAML returns a config with the given host:port backends.
func backendsYAML(addrs ...string) string {
	var b strings.Builder
	b.WriteString("backends:\n")
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		fmt.Fprintf(&b, "  - host: %q\n    port: %s\n", host, port)
	}
	return b.String()
}

// rawExchange sends raw bytes on a fresh TCP connection and returns
// everything the peer sends until it closes or within passes.
func rawExchange(t testing.TB, addr string, request string, within time.Duration) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(within))
	if _, err := c.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := bufio.NewReader(c)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String()
		}
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
