package h1server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestClientGone: a handler that waits on its request's context returns
// once the client closes the connection, the context then failing with
// context.Canceled; also when it asked for Done before reading the body
// (the watch starts at the body's end).
func TestClientGone(t *testing.T) {
	started := make(chan struct{})
	ended := make(chan error, 1)
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := r.Context().Done()
		if _, err := io.ReadAll(r.Body); err != nil {
			ended <- err
			return
		}
		started <- struct{}{}
		select {
		case <-done:
			ended <- r.Context().Err()
		case <-time.After(ioTimeout):
			ended <- fmt.Errorf("context not canceled %v after the client left", ioTimeout)
		}
	})})
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	} {
		c := newRaw(t, addr)
		c.send(req)
		<-started
		c.c.Close()
		if err := <-ended; err != context.Canceled {
			t.Errorf("%q: the handler's context ended with %v, want context.Canceled", req, err)
		}
	}
}

// TestContextEndsWithRequest: a request's context is canceled once its
// handler has returned, as with net/http, whether or not it was watched.
func TestContextEndsWithRequest(t *testing.T) {
	ctxs := make(chan context.Context, 1)
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/watch" {
			r.Context().Done()
		}
		if err := r.Context().Err(); err != nil {
			t.Errorf("context ended during the handler: %v", err)
		}
		ctxs <- r.Context()
	})})
	c := newRaw(t, addr)
	for _, path := range []string{"/", "/watch"} {
		c.send("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
		c.read("GET")
		ctx := <-ctxs
		select {
		case <-ctx.Done():
		case <-time.After(ioTimeout):
			t.Fatalf("%s: context not canceled after the response", path)
		}
		if ctx.Err() != context.Canceled {
			t.Errorf("%s: Err %v", path, ctx.Err())
		}
	}
	c.expectOpen()
}

// TestWatchKeepsPipelinedByte: the watch of a request's context reads the
// connection; the first byte of a pipelined request that it reads is kept
// for that request (served whole), and does not cancel the context.
func TestWatchKeepsPipelinedByte(t *testing.T) {
	watching := make(chan struct{})
	release := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/watch" {
			done := r.Context().Done()
			watching <- struct{}{}
			<-release
			select {
			case <-done:
				t.Errorf("context canceled by a pipelined request: %v", r.Context().Err())
			default:
			}
		}
		io.WriteString(w, r.URL.Path)
	})}
	addr := serve(t, s)
	c := newRaw(t, addr)
	c.send("GET /watch HTTP/1.1\r\nHost: a\r\n\r\n")
	<-watching
	c.send("GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	waitFor(t, "the watch to read the next request's first byte", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for sc := range s.conns {
			sc.mu.Lock()
			has := sc.hasByte
			sc.mu.Unlock()
			if has {
				return true
			}
		}
		return false
	})
	close(release)
	c.readBodies("/watch", "/next")
	c.expectOpen()
}

// waitFor polls cond (for states the server exposes no event for).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestNoGoroutineUnlessWatched: serving a request whose handler does not
// wait on the context starts no goroutine (the count seen by the handler
// stays the same request after request); one that asks for Done starts
// exactly one, the watch, which ends with the request.
func TestNoGoroutineUnlessWatched(t *testing.T) {
	counts := make(chan int, 1)
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/watch" {
			r.Context().Done()
		}
		n := runtime.NumGoroutine()
		counts <- n
		io.WriteString(w, strconv.Itoa(n))
	})})
	c := newRaw(t, addr)
	count := func(path string) int {
		c.send("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
		c.read("GET")
		return <-counts
	}
	var got []int
	for try := 0; try < 5; try++ {
		// Goroutines of earlier tests may still be ending: a sequence
		// whose plain requests disagree is measured again.
		got = []int{count("/"), count("/"), count("/watch"), count("/"), count("/")}
		if got[0] == got[1] && got[1] == got[3] && got[3] == got[4] {
			break
		}
	}
	if got[0] != got[1] || got[1] != got[3] || got[3] != got[4] {
		t.Fatalf("goroutines seen by unwatched requests: %v, want the same count", got)
	}
	if got[2] != got[0]+1 {
		t.Fatalf("goroutines seen by a watched request: %d, want %d (one more)", got[2], got[0]+1)
	}
}
