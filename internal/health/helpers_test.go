package health

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/upstream"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + ln.Addr().String()
}

// closingServer reads each request and closes the connection without
// answering; it returns its http URL.
func closingServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(waitLimit))
				var req []byte
				buf := make([]byte, 512)
				for !strings.Contains(string(req), "\r\n\r\n") {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					req = append(req, buf[:n]...)
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
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
