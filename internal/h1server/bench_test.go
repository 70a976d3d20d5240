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

	"github.com/lbproject/load_balancer/internal/linecache"
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

// BenchmarkParseFast measures the fast parser on a browser's request head
// (13 field lines): as a connection's first head, and repeated (the
// connection's last head had the same lines) with the line cache only and
// with the field memo too, as connections parse.
func BenchmarkParseFast(b *testing.B) {
	raw := []byte("GET /app/page?x=1 HTTP/1.1\r\nHost: www.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
		"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n" +
		"Cookie: session=abcdef0123456789; theme=dark\r\nUpgrade-Insecure-Requests: 1\r\n" +
		"Sec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Site: same-origin\r\n" +
		"Priority: u=0, i\r\nDNT: 1\r\n\r\n")
	for _, tc := range []struct {
		name        string
		cache, memo bool
	}{{"first", false, false}, {"repeated-cache", true, false}, {"repeated-memo", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			header, vals := make(http.Header, 16), make([]string, 16)
			cache, memo := new(linecache.Cache), new(fieldMemo)
			if !tc.memo {
				memo = nil
			}
			b.ReportAllocs()
			for b.Loop() {
				if !tc.cache {
					cache = new(linecache.Cache)
				}
				clear(header)
				var h fastHead
				if !parseFast(raw, &h, header, vals, cache, memo) {
					b.Fatal("not taken by the fast path")
				}
			}
		})
	}
}
