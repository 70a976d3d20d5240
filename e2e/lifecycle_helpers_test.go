package e2e

// Helpers of the health_*, reload_* and shutdown_* end-to-end tests: fast
// health settings, config files written the ways editors write them,
// WebSocket-style tunnels through the balancer, clients that keep load on
// it, requests in flight and access log lines.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lcFastHealth is a global health_check that notices changes within a few
// hundred milliseconds, with passive checks off so that only probes decide.
const lcFastHealth = "health_check:\n  interval: 100ms\n  timeout: 80ms\n  fall: 2\n  rise: 2\n" +
	"passive_health:\n  enabled: false\n"

// writeFileInPlace rewrites path in place (truncate, write), as many editors
// do: the file keeps its inode.
func writeFileInPlace(t testing.TB, path, content string) {
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

// lcUpgradeEcho serves like a WebSocket server that echoes: an Upgrade
// request gets 101 and then every byte back; any other request gets a 200
// naming name and the connection is closed.
func lcUpgradeEcho(name string) func(c net.Conn, br *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.Header.Get("Upgrade") == "" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Backend: "+name+"\r\nContent-Length: "+strconv.Itoa(len(name)+1)+"\r\nConnection: close\r\n\r\n"+name+"\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Backend: "+name+"\r\n\r\n")
		io.Copy(c, br)
	}
}

// lcOpenTunnel sends a WebSocket-style upgrade request to the balancer
// (in front of lcUpgradeEcho backends) and returns the connection once the
// 101 arrived and a first message ("before") came back through it.
func lcOpenTunnel(t testing.TB, lbAddr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, br := dialBalancer(t, lbAddr, 10*time.Second)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: lb.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("upgrade through the balancer: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade through the balancer: status %d, want 101", res.StatusCode)
	}
	c.SetDeadline(time.Time{})
	if err := lcEcho(c, br, "before"); err != nil {
		t.Fatal(err)
	}
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
		lines = linesContaining(p.Output()[from:], "msg=access", "path="+path+" ")
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
