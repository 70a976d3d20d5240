package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestProtocolManyKeptAliveConnections keeps 1,100 client connections open
// at once: far more than the 256 above which the balancer's front end waits
// lean (idle connections without a read buffer and, on Linux, parked
// without a goroutine: docs/proxying.md). Every connection is served three
// rounds of requests — one request, then one sent in two writes or two
// pipelined, then, after half the clients hung up, one more on the rest —
// and every answer must be the right one on the right connection.
func TestProtocolManyKeptAliveConnections(t *testing.T) {
	const n = 1100
	be := newRecordingBackend(t, nil)
	lb := startProtoBalancer(t, "", be.Addr)

	conns := make([]*keptAlive, n)
	for i := range conns {
		nc, err := net.DialTimeout("tcp", lb.Addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns[i] = &keptAlive{nc: nc, br: bufio.NewReader(nc)}
		t.Cleanup(func() { nc.Close() })
	}

	round := func(name string, from, step int, send func(i int, c *keptAlive) ([]string, error)) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		work := make(chan int)
		for range 32 {
			wg.Go(func() {
				for i := range work {
					c := conns[i]
					c.nc.SetDeadline(time.Now().Add(30 * time.Second))
					paths, err := send(i, c)
					for _, p := range paths {
						if err != nil {
							break
						}
						err = c.expect(p)
					}
					if err != nil {
						errs <- fmt.Errorf("%s, connection %d: %w", name, i, err)
					}
				}
			})
		}
		for i := from; i < n; i += step {
			work <- i
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	round("first request", 0, 1, func(i int, c *keptAlive) ([]string, error) {
		p := fmt.Sprintf("/first/%d", i)
		return []string{p}, c.write(getRequest(p))
	})
	round("second request", 0, 1, func(i int, c *keptAlive) ([]string, error) {
		p, q := fmt.Sprintf("/second/%d", i), fmt.Sprintf("/pipelined/%d", i)
		if i%2 == 0 {
			req := getRequest(p)
			if err := c.write(req[:7]); err != nil {
				return nil, err
			}
			return []string{p}, c.write(req[7:])
		}
		return []string{p, q}, c.write(getRequest(p) + getRequest(q))
	})
	for i := 0; i < n; i += 2 {
		conns[i].nc.Close()
	}
	round("after half hung up", 1, 2, func(i int, c *keptAlive) ([]string, error) {
		p := fmt.Sprintf("/third/%d", i)
		return []string{p}, c.write(getRequest(p))
	})
	if got, want := be.Count(), n+n+n/2+n/2; got != want {
		t.Errorf("backend saw %d requests, want %d", got, want)
	}
}

// keptAlive is one raw client connection kept open between requests.
type keptAlive struct {
	nc net.Conn
	br *bufio.Reader
}

func getRequest(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: many.test\r\n\r\n" }

func (c *keptAlive) write(s string) error {
	_, err := io.WriteString(c.nc, s)
	return err
}

// expect reads one response and checks it is the recording backend's
// answer to path.
func (c *keptAlive) expect(path string) error {
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK || string(body) != "ok "+path {
		return fmt.Errorf("got %d %q, want 200 %q", res.StatusCode, body, "ok "+path)
	}
	return nil
}
