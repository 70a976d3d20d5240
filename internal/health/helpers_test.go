package health

import (
	"bufio"
	"io"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/upstream"

	"github.com/lbproject/load_balancer/internal/testbackend"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait of the tests; reaching it is a failure.
const waitLimit = 10 * time.Second

// backendAt returns a backend for a URL such as httptest.Server.URL.
func backendAt(t testing.TB, rawURL string) *upstream.Backend {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return upstream.NewBackend(upstream.Address{Scheme: u.Scheme, Host: u.Hostname(), Port: port}, nil)
}

// closedPortURL returns an http URL of a loopback port nobody listens on.
func closedPortURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// hangingServer accepts connections and never answers; it returns its
// http URL. Everything is closed at the end of the test.
func hangingServer(t testing.TB) string {
	t.Helper()
	return "http://" + testbackend.Raw(t, func(_ net.Conn, br *bufio.Reader) {
		io.Copy(io.Discard, br) // until the test ends
	}).Addr
}

// closingServer reads each request head and closes the connection without
// answering; it returns its http URL.
func closingServer(t testing.TB) string {
	t.Helper()
	return "http://" + testbackend.Raw(t, func(_ net.Conn, br *bufio.Reader) {
		for {
			line, err := br.ReadSlice('\n')
			if err != nil || len(line) <= 2 {
				return
			}
		}
	}).Addr
}

// newTestChecker returns a checker whose events arrive on the returned
// channel; it is closed at the end of the test.
func newTestChecker(t testing.TB) (*Checker, <-chan Event) {
	t.Helper()
	events := make(chan Event, 1000)
	c := NewChecker(nil, func(ev Event) { events <- ev })
	t.Cleanup(c.Close)
	return c, events
}

// tcpCheck and httpCheck return checks with short intervals.
func tcpCheck(interval time.Duration, fall, rise int) config.HealthCheck {
	return config.HealthCheck{
		Type:     "tcp",
		Interval: config.Duration(interval),
		Timeout:  config.Duration(5 * time.Second), // generous: -race on a busy machine
		Fall:     fall,
		Rise:     rise,
	}
}

func httpCheck(interval time.Duration, fall, rise int) config.HealthCheck {
	h := tcpCheck(interval, fall, rise)
	h.Type = "http"
	h.Path = "/health"
	h.ExpectStatus = "200-399"
	return h
}

func disabled(h config.HealthCheck) config.HealthCheck {
	off := false
	h.Enabled = &off
	return h
}

func waitEvent(t testing.TB, events <-chan Event) Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(waitLimit):
		t.Fatal("no health event within", waitLimit)
		return Event{}
	}
}

// noEvent fails if an event is waiting on the channel.
func noEvent(t testing.TB, events <-chan Event) {
	t.Helper()
	select {
	case ev := <-events:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func status(t testing.TB, c *Checker, b *upstream.Backend) Status {
	t.Helper()
	s, ok := c.Status(b)
	if !ok {
		t.Fatalf("no status for %s", b)
	}
	return s
}
