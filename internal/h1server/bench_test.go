package h1server

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchBody is the 100-byte body of BenchmarkServer's responses.
var benchBody = []byte(strings.Repeat("x", 100))

var (
	benchLength = []string{strconv.Itoa(len(benchBody))}
	benchType   = []string{"text/plain"}
)

func benchHandler(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Length"] = benchLength
	h["Content-Type"] = benchType
	w.Write(benchBody)
}

// BenchmarkServer measures one request/response round trip of a small GET
// on a kept-alive connection, for h1server and for net/http's server with
// the same handler (100-byte body with a Content-Length), and for h1server
// with every idle connection waiting lean. The client reads responses with
// no allocation of its own, so allocs/op are the server's.
func BenchmarkServer(b *testing.B) {
	b.Run("h1server", func(b *testing.B) {
		s := &Server{Handler: http.HandlerFunc(benchHandler)}
		benchRoundTrips(b, serve(b, s))
	})
	b.Run("h1server-lean", func(b *testing.B) {
		// Every idle connection waits lean (parked, on Linux).
		s := &Server{Handler: http.HandlerFunc(benchHandler)}
		benchRoundTrips(b, serveLean(b, s))
	})
	b.Run("net-http", func(b *testing.B) {
		benchRoundTrips(b, serveStd(b, http.HandlerFunc(benchHandler), 0))
	})
}

func benchRoundTrips(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 4096)
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if err := readBenchResponse(br); err != nil {
			b.Fatal(err)
		}
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	roundTrip() // the connection is set up
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		roundTrip()
	}
}

// readBenchResponse reads a 200 response with a Content-Length body.
func readBenchResponse(br *bufio.Reader) error {
	length := -1
	first := true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
				return errBench("status line " + string(line))
			}
			first = false
			continue
		}
		if len(line) <= 2 {
			break
		}
		const cl = "content-length:"
		if len(line) > len(cl) && bytes.EqualFold(line[:len(cl)], []byte(cl)) {
			n := 0
			for _, d := range bytes.TrimSpace(line[len(cl):]) {
				n = n*10 + int(d-'0')
			}
			length = n
		}
	}
	if length != len(benchBody) {
		return errBench("Content-Length " + strconv.Itoa(length))
	}
	_, err := br.Discard(length)
	return err
}

type errBench string

func (e errBench) Error() string { return string(e) }
