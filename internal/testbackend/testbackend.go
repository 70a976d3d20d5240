// Package testbackend provides backends for tests: TCP servers on loopback
// that read and write raw bytes, for what a well-behaved net/http server
// cannot do (malformed responses, deaths mid-body, close-delimited bodies,
// switched protocols, capturing exactly what a client sent), and a cheap
// keep-alive responder for benchmarks. Tests only; nothing here is part of
// the balancer.
package testbackend

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connDeadline bounds every connection of a Raw server, so that a test that
// forgets a side of an exchange fails instead of hanging.
const connDeadline = 30 * time.Second

// RawServer is a TCP server on loopback whose connections are served by a
// function of the test.
type RawServer struct {
	Addr     string // host:port
	accepted atomic.Int64
	closed   atomic.Int64
}

// Accepted returns the number of connections accepted so far.
func (s *RawServer) Accepted() int64 { return s.accepted.Load() }

// Closed returns the number of connections whose serve function returned.
func (s *RawServer) Closed() int64 { return s.closed.Load() }

// Raw serves every accepted connection with serve in its own goroutine,
// with a buffered reader over it; the connection is closed when serve
// returns, which it must do when the connection fails. At the end of the
// test the listener and every connection are closed and all serve calls
// are waited for.
func Raw(tb testing.TB, serve func(c net.Conn, br *bufio.Reader)) *RawServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &RawServer{Addr: ln.Addr().String()}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		open   = map[net.Conn]struct{}{}
		closed bool
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			open[c] = struct{}{}
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					c.Close()
					s.closed.Add(1)
				}()
				c.SetDeadline(time.Now().Add(connDeadline))
				serve(c, bufio.NewReader(c))
			}()
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// Bench returns the address of a minimal keep-alive backend for
// benchmarks: it answers every request head with reply, after reading (and
// ignoring) a Content-Length body. It costs little, so that benchmarks
// measure the client, not the backend.
func Bench(tb testing.TB, reply string) string {
	tb.Helper()
	return Raw(tb, func(c net.Conn, br *bufio.Reader) {
		c.SetDeadline(time.Time{}) // a benchmark runs as long as it needs
		for {
			length := 0
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
				if bytes.HasPrefix(line, []byte("Content-Length: ")) {
					for _, d := range bytes.TrimSpace(line[16:]) {
						length = length*10 + int(d-'0')
					}
				}
			}
			if _, err := br.Discard(length); err != nil {
				return
			}
			if _, err := io.WriteString(c, reply); err != nil {
				return
			}
		}
	}).Addr
}
