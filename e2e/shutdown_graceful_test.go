package e2e

// Graceful shutdown: SIGTERM and SIGINT stop accepting at once, let
// requests and tunnels in flight finish within shutdown.grace_period, then
// exit 0; past the grace period what is left is cut; a second signal exits
// at once.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/testbackend"
)

func lcGrace(d string) string { return "shutdown:\n  grace_period: " + d + "\n" }

// lcSlowInFlight starts a balancer with shutdown.grace_period grace over
// one backend, A, and sends it GET /delay?d=delay; it returns once the
// request is in flight at A, with the channel its result arrives on.
func lcSlowInFlight(t *testing.T, grace, delay string) (*balancer, <-chan lcResult) {
	t.Helper()
	a := newTestBackend(t, "A")
	lb := startBalancer(t, lbConfig("round-robin", lcGrace(grace), backendsOf(a)...))
	slow := lcAsyncGet(client(t), lb.URL("/delay?d="+delay))
	a.waitStarted(t, 5*time.Second)
	return lb, slow
}

// lcBeginShutdown sends sig to lb and waits until it logged that it drains;
// it returns the offset of lb's output after that line.
func lcBeginShutdown(t *testing.T, lb *balancer, sig os.Signal) int {
	t.Helper()
	from := len(lb.Output())
	lb.Signal(sig)
	_, next := lb.WaitForLine(from, 5*time.Second, `msg="shutting down: draining requests in flight"`)
	return next
}

// TestShutdownDrainsInFlight: a signal while a 1s request is in flight:
// new connections are refused from then on, the request completes with
// 200, and the process exits 0 right after it.
func TestShutdownDrainsInFlight(t *testing.T) {
	t.Parallel()
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			lb, slow := lcSlowInFlight(t, "10s", "1s")
			idle := client(t) // a keep-alive connection left idle
			get(t, idle, lb.URL("/"))

			signalled := time.Now()
			from := lcBeginShutdown(t, lb, sig)
			if !eventually(2*time.Second, func() bool { return refusesConnections(lb.Addr) }) {
				t.Errorf("new connections are still accepted after %v", sig)
			}
			if r, err := tryGet(idle, lb.URL("/late")); err == nil {
				t.Errorf("a request on an idle keep-alive connection after %v was served: status %d from %q", sig, r.Status, r.Backend)
			}

			r := lcRecv(t, slow, 10*time.Second)
			if r.Err != nil || r.Status != http.StatusOK || !strings.Contains(r.Body, "A waited 1s") {
				t.Fatalf("request in flight at %v: err %v, status %d, body %q; want 200 \"A waited 1s\"", sig, r.Err, r.Status, r.Body)
			}
			code, exited := lb.WaitExit(10 * time.Second)
			t.Logf("MEASURE %v: request done %s after the signal, process exited %s after it",
				sig, r.Done.Sub(signalled).Round(time.Millisecond), exited.Sub(r.Done).Round(time.Millisecond))
			if code != 0 {
				t.Errorf("exit code %d after a graceful drain, want 0", code)
			}
			if d := exited.Sub(r.Done); d > 2*time.Second {
				t.Errorf("the process exited %s after the last request finished, want at once", d)
			}
			if !strings.Contains(lb.Output()[from:], `msg=stopped`) {
				t.Errorf("no \"stopped\" line after the drain")
			}
		})
	}
}

// TestShutdownSecondSignalExitsAtOnce: a 20s request in flight, a 30s
// grace period: SIGTERM starts the drain, a second SIGTERM or SIGINT ends
// the process at once; the request is cut.
func TestShutdownSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			lb, slow := lcSlowInFlight(t, "30s", "20s")
			from := lcBeginShutdown(t, lb, syscall.SIGTERM)
			select {
			case <-lb.done:
				t.Fatalf("the balancer exited on the first signal with a request in flight (grace 30s); output:\n%s", lastLines(lb.Output(), 20))
			case <-time.After(200 * time.Millisecond): // it is draining
			}
			second := time.Now()
			lb.Signal(sig)
			code, exited := lb.WaitExit(5 * time.Second)
			t.Logf("MEASURE second signal (%v) → exit: %s, exit code %d", sig, exited.Sub(second).Round(time.Millisecond), code)
			if d := exited.Sub(second); d > 2*time.Second {
				t.Errorf("the process exited %s after the second signal, want at once", d)
			}
			if code != 0 && code != 1 && code != 130 && code != 143 {
				t.Errorf("exit code %d after a second signal", code)
			}
			lb.WaitForLine(from, time.Second, `msg="second signal: exiting now"`)
			r := lcRecv(t, slow, 5*time.Second)
			if r.Err == nil && r.Status == http.StatusOK {
				t.Errorf("the 20s request completed (%q) although the process exited", r.Body)
			}
		})
	}
}

// TestShutdownSIGHUPDuringDrain: SIGHUP means "reload", also during a
// drain (log rotation tools send it): it must not end the drain as a
// second SIGTERM/SIGINT does. The request in flight completes with 200 and
// the process exits 0 after it.
func TestShutdownSIGHUPDuringDrain(t *testing.T) {
	t.Parallel()
	lb, slow := lcSlowInFlight(t, "10s", "1s")
	from := lcBeginShutdown(t, lb, syscall.SIGTERM)
	lb.Signal(syscall.SIGHUP)
	r := lcRecv(t, slow, 10*time.Second)
	if r.Err != nil || r.Status != http.StatusOK {
		t.Errorf("request in flight when SIGHUP came during the drain: err %v, status %d; want 200 (SIGHUP is not a second SIGTERM)", r.Err, r.Status)
	}
	if code, _ := lb.WaitExit(10 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if l := linesContaining(lb.Output()[from:], "second signal"); len(l) != 0 {
		t.Errorf("SIGHUP was taken for a second shutdown signal: %v", l)
	}
}

// TestShutdownGraceExceeded: grace_period 500ms and a 5s request in
// flight: the process exits 0 about 500ms after SIGTERM and the request is
// cut.
func TestShutdownGraceExceeded(t *testing.T) {
	t.Parallel()
	lb, slow := lcSlowInFlight(t, "500ms", "5s")
	from := len(lb.Output())
	signalled := time.Now()
	lb.Signal(syscall.SIGTERM)
	code, exited := lb.WaitExit(5 * time.Second)
	took := exited.Sub(signalled)
	t.Logf("MEASURE grace 500ms exceeded: exit %s after SIGTERM, exit code %d", took.Round(time.Millisecond), code)
	if took < 450*time.Millisecond || took > 2500*time.Millisecond {
		t.Errorf("exited %s after SIGTERM, want about the 500ms grace period", took)
	}
	if code != 0 {
		t.Errorf("exit code %d after the grace period, want 0", code)
	}
	lb.WaitForLine(from, time.Second, `msg="grace period over: remaining connections closed"`)
	r := lcRecv(t, slow, 5*time.Second)
	if r.Err == nil && r.Status == http.StatusOK {
		t.Errorf("the 5s request completed (%q) past a 500ms grace period", r.Body)
	}
	if d := r.Done.Sub(signalled); d > 3*time.Second {
		t.Errorf("the cut request ended %s after SIGTERM", d)
	}
}

// TestShutdownTunnels: an open WebSocket-style tunnel keeps working during
// the drain and the process exits once it closes; a tunnel still open at
// the end of the grace period is closed and the process exits.
func TestShutdownTunnels(t *testing.T) {
	t.Parallel()
	t.Run("finishes", func(t *testing.T) {
		t.Parallel()
		u := testbackend.Raw(t, lcUpgradeEcho("U"))
		lb := startBalancer(t, lbConfig("round-robin", lcGrace("10s"), backendsAt(u.Addr)...))
		c, br := lcOpenTunnel(t, lb.Addr)
		lcBeginShutdown(t, lb, syscall.SIGTERM)
		if !eventually(2*time.Second, func() bool { return refusesConnections(lb.Addr) }) {
			t.Errorf("new connections are still accepted after SIGTERM")
		}
		for _, msg := range []string{"during the drain 1", "during the drain 2"} {
			if err := lcEcho(c, br, msg); err != nil {
				t.Fatalf("tunnel during the drain: %v", err)
			}
		}
		select {
		case <-lb.done:
			t.Fatal("the balancer exited while a tunnel was open (grace 10s)")
		default:
		}
		closed := time.Now()
		c.Close()
		code, exited := lb.WaitExit(5 * time.Second)
		if d := exited.Sub(closed); d > 2*time.Second || code != 0 {
			t.Errorf("after the last tunnel closed: exit code %d after %s, want 0 at once", code, d)
		}
	})
	// The upgrade request is in flight when the signal comes; the backend
	// switches protocols during the drain. The new tunnel is in flight
	// too: it works until the client closes it, within the grace period.
	t.Run("opened during the drain", func(t *testing.T) {
		t.Parallel()
		received, answer := make(chan struct{}, 1), make(chan struct{})
		u := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			received <- struct{}{}
			select {
			case <-answer:
			case <-time.After(10 * time.Second):
				return
			}
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
			io.Copy(c, br)
		})
		lb := startBalancer(t, lbConfig("round-robin", lcGrace("10s")+"health_check:\n  enabled: false\n", backendsAt(u.Addr)...))
		c, br := dialBalancer(t, lb.Addr, 10*time.Second)
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: lb.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		select {
		case <-received:
		case <-time.After(5 * time.Second):
			t.Fatal("the upgrade request did not reach the backend")
		}
		lcBeginShutdown(t, lb, syscall.SIGTERM)
		close(answer)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade answered during the drain: %v, %v; want 101", res, err)
		}
		c.SetDeadline(time.Time{})
		// A conversation of a second: the tunnel must stay up meanwhile.
		opened := time.Now()
		for i := range 6 {
			if i > 0 {
				time.Sleep(200 * time.Millisecond)
			}
			if err := lcEcho(c, br, fmt.Sprintf("message %d", i)); err != nil {
				t.Fatalf("tunnel opened during the drain (grace 10s), %s after it opened: %v", time.Since(opened).Round(time.Millisecond), err)
			}
		}
		select {
		case <-lb.done:
			t.Fatal("the balancer exited while a tunnel opened during the drain was open (grace 10s)")
		default:
		}
		c.Close()
		if code, _ := lb.WaitExit(5 * time.Second); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	})
	t.Run("cut at grace", func(t *testing.T) {
		t.Parallel()
		u := testbackend.Raw(t, lcUpgradeEcho("U"))
		lb := startBalancer(t, lbConfig("round-robin", lcGrace("500ms"), backendsAt(u.Addr)...))
		c, br := lcOpenTunnel(t, lb.Addr)
		signalled := time.Now()
		lb.Signal(syscall.SIGTERM)
		code, exited := lb.WaitExit(5 * time.Second)
		if d := exited.Sub(signalled); d < 450*time.Millisecond || d > 2500*time.Millisecond || code != 0 {
			t.Errorf("with a tunnel open: exit code %d after %s, want 0 after about 500ms", code, d)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := br.ReadByte(); err != io.EOF {
			t.Errorf("the tunnel after the grace period: read %q, %v; want EOF", n, err)
		}
	})
}
