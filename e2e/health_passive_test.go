package e2e

// Passive health (outlier detection) with real traffic: a backend that
// accepts connections (so TCP probes pass) but closes them without
// answering is ejected after consecutive failures, and the requests that
// met it still succeed through retries.

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/testbackend"
)

// TestHealthPassiveEjectsHangingUpBackend: round-robin over a good backend
// and one that reads each request and closes the connection. Every request
// succeeds (a GET that met a closed connection is retried on the other
// backend); after consecutive_failures such failures the bad backend is
// ejected ("backend down", source=passive) and gets no more requests,
// although its TCP probes keep passing, until its cooldown is over.
func TestHealthPassiveEjectsHangingUpBackend(t *testing.T) {
	t.Parallel()
	good := newTestBackend(t, "good")
	var badRequests atomic.Int64
	bad := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return // a TCP probe: connect and close
		}
		badRequests.Add(1)
		// Close without a byte of response.
	})
	global := "health_check:\n  interval: 200ms\n  timeout: 100ms\n" +
		"passive_health:\n  consecutive_failures: 3\n  base_ejection: 30s\n  max_ejection: 1m\n"
	lb := startBalancer(t, lbConfig("round-robin", global, backendsAt(good.addr, bad.Addr)...))
	badKey := "backend=http://" + bad.Addr

	c := client(t)
	for i := 0; ; i++ {
		if i == 40 {
			t.Fatalf("40 requests after start, the hanging-up backend was not ejected; it saw %d requests", badRequests.Load())
		}
		r := get(t, c, lb.URL("/passive"))
		if r.Status != http.StatusOK || r.Backend != "good" {
			t.Fatalf("request %d: status %d from %q, body %q; want 200 from good (retried)", i, r.Status, r.Backend, r.Body)
		}
		if len(linesContaining(lb.Output(), `msg="backend down"`, badKey)) > 0 {
			break
		}
	}
	down, after := lb.WaitForLine(0, time.Second, `msg="backend down"`, badKey)
	if !strings.Contains(down, "source=passive") || !strings.Contains(down, "3 consecutive") {
		t.Errorf("down event %q, want source=passive and a reason naming 3 consecutive failures", down)
	}
	if n := badRequests.Load(); n < 3 {
		t.Errorf("the bad backend saw %d requests before its ejection, want at least consecutive_failures (3)", n)
	}

	// Ejected: no request reaches it any more, though probes (TCP connects)
	// still do.
	before, probes := badRequests.Load(), bad.Accepted()
	if got := servedBy(t, c, lb.URL("/ejected"), 30); got["good"] != 30 {
		t.Errorf("after the ejection: served by %v", got)
	}
	if n := badRequests.Load() - before; n != 0 {
		t.Errorf("the ejected backend received %d requests", n)
	}
	lines := lcAccessLines(t, lb.process, after, "/ejected", 30)
	if n := lcCount(lines, " attempts=1 "); n != 30 {
		t.Errorf("%d of 30 requests after the ejection were served at the first attempt, want all", n)
	}
	if !eventually(3*time.Second, func() bool { return bad.Accepted() > probes }) {
		t.Errorf("no TCP probe reached the ejected backend within 3s (interval 200ms)")
	}
	if ups := linesContaining(lb.Output(), `msg="backend up"`, badKey); len(ups) != 0 {
		t.Errorf("the ejected backend came back before its 30s cooldown: %v", ups)
	}
}

// TestHealthPassiveRefusedWithoutActive: with active checks off, a backend
// that refuses connections is ejected by passive checks alone after
// consecutive connect failures and comes back (without probes) when its
// short cooldown is over; no request fails meanwhile.
func TestHealthPassiveRefusedWithoutActive(t *testing.T) {
	t.Parallel()
	a := newTestBackend(t, "a")
	dead := deadAddr(t)
	global := "health_check:\n  enabled: false\npassive_health:\n  consecutive_failures: 2\n  base_ejection: 300ms\n  max_ejection: 1s\n"
	lb := startBalancer(t, lbConfig("round-robin", global, backendsAt(a.addr, dead)...))
	deadKey := "backend=http://" + dead
	c := client(t)
	servedBy(t, c, lb.URL("/warm"), 6)
	down, after := lb.WaitForLine(0, 2*time.Second, `msg="backend down"`, deadKey)
	if !strings.Contains(down, "source=passive") || !strings.Contains(down, "connect failure") {
		t.Errorf("down event %q, want source=passive for connect failures", down)
	}
	up, afterUp := lb.WaitForLine(after, 3*time.Second, `msg="backend up"`, deadKey)
	if !strings.Contains(up, "ejection of 300ms over") {
		t.Errorf("up event %q, want the end of the 300ms ejection as its reason", up)
	}
	// Still dead: the next requests that meet it are retried, it is ejected
	// again, for a doubled cooldown.
	servedBy(t, c, lb.URL("/again"), 6)
	down2, afterDown2 := lb.WaitForLine(afterUp, 2*time.Second, `msg="backend down"`, deadKey)
	up2, _ := lb.WaitForLine(afterDown2, 4*time.Second, `msg="backend up"`, deadKey)
	if !strings.Contains(up2, "ejection of 600ms over") {
		t.Errorf("second up event %q, want the end of a 600ms (doubled) ejection", up2)
	}
	if gap := logTime(up2).Sub(logTime(down2)); gap < 550*time.Millisecond {
		t.Errorf("second ejection lasted %s, want about 600ms (doubled)", gap)
	}
}

// TestHealthPassiveEjects5xx: with consecutive_5xx set, a backend that
// answers every request with 500 (while its TCP probes pass) is ejected
// after that many 500s in a row; afterwards every request goes to the
// healthy backend.
func TestHealthPassiveEjects5xx(t *testing.T) {
	t.Parallel()
	good := newTestBackend(t, "good")
	broken := newTestBackend(t, "broken")
	global := "health_check:\n  interval: 200ms\n  timeout: 100ms\n" +
		"passive_health:\n  consecutive_5xx: 3\n  base_ejection: 30s\n  max_ejection: 1m\n"
	lb := startBalancer(t, lbConfig("round-robin", global, backendsOf(good, broken)...))
	c := client(t)
	fives := 0
	for i := 0; len(linesContaining(lb.Output(), `msg="backend down"`, "backend=http://"+broken.addr)) == 0; i++ {
		if i == 40 {
			t.Fatalf("40 requests, %d of them 500s from broken, and it was not ejected", fives)
		}
		if r := get(t, c, lb.URL("/status500")); r.Status == http.StatusInternalServerError {
			fives++
		}
	}
	down, _ := lb.WaitForLine(0, time.Second, `msg="backend down"`, "backend=http://"+broken.addr)
	if !strings.Contains(down, "source=passive") || !strings.Contains(down, "3 consecutive 5xx") {
		t.Errorf("down event %q, want source=passive, 3 consecutive 5xx responses", down)
	}
	if got := servedBy(t, c, lb.URL("/after"), 20); got["good"] != 20 {
		t.Errorf("after the ejection: served %v, want good only", got)
	}
}
