package h1

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/linecache"
	"github.com/lbproject/load_balancer/internal/testbackend"
)

const (
	smallReply   = "HTTP/1.1 200 OK\r\nServer: bench\r\nDate: Mon, 01 Jan 2026 00:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nConnection: keep-alive\r\n\r\n"
	chunkedReply = "HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n"
)

var benchBody = strings.Repeat("x", 100)

// benchHeader is a request header as the proxy sends it.
var benchHeader = http.Header{
	"User-Agent":        {"wrk"},
	"Accept":            {"*/*"},
	"X-Forwarded-For":   {"127.0.0.1"},
	"X-Forwarded-Proto": {"http"},
	"X-Forwarded-Host":  {"lb.test"},
	"Via":               {"1.1 load_balancer"},
}

func BenchmarkTransportGet(b *testing.B) {
	addr := testbackend.Bench(b, smallReply+benchBody)
	tr := newTestTransport(b, addr)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 32<<10)
		dst := make(http.Header)
		for pb.Next() {
			clear(dst)
			res, err := tr.Do(&Request{Method: "GET", Target: "/small", Host: "lb.test", Header: benchHeader,
				ResponseHeader: dst, StripHopByHop: true})
			if err != nil {
				b.Fatal(err)
			}
			drain(b, res, buf, 100)
		}
	})
}

// BenchmarkTransportGetCancelable is BenchmarkTransportGet with a
// cancelable context per request, as net/http's server gives a handler.
func BenchmarkTransportGetCancelable(b *testing.B) {
	addr := testbackend.Bench(b, smallReply+benchBody)
	tr := newTestTransport(b, addr)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 32<<10)
		dst := make(http.Header)
		base, cancelBase := context.WithCancel(context.Background())
		defer cancelBase()
		for pb.Next() {
			clear(dst)
			ctx, cancel := context.WithCancel(base)
			res, err := tr.Do(&Request{Ctx: ctx, Method: "GET", Target: "/small", Host: "lb.test", Header: benchHeader,
				ResponseHeader: dst, StripHopByHop: true})
			if err != nil {
				b.Fatal(err)
			}
			drain(b, res, buf, 100)
			cancel()
		}
	})
}

func BenchmarkTransportGetChunked(b *testing.B) {
	addr := testbackend.Bench(b, chunkedReply+benchBody+"\r\n0\r\n\r\n")
	tr := newTestTransport(b, addr)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 32<<10)
		for pb.Next() {
			res, err := tr.Do(&Request{Method: "GET", Target: "/chunked", Host: "lb.test", Header: benchHeader})
			if err != nil {
				b.Fatal(err)
			}
			drain(b, res, buf, 100)
		}
	})
}

func BenchmarkTransportPostSmall(b *testing.B) {
	addr := testbackend.Bench(b, smallReply+benchBody)
	tr := newTestTransport(b, addr)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 32<<10)
		body := strings.NewReader(benchBody)
		for pb.Next() {
			body.Reset(benchBody)
			res, err := tr.Do(&Request{Method: "POST", Target: "/post", Host: "lb.test", Header: benchHeader,
				Body: body, ContentLength: int64(len(benchBody))})
			if err != nil {
				b.Fatal(err)
			}
			drain(b, res, buf, 100)
		}
	})
}

// BenchmarkNetHTTPTransportGet is BenchmarkTransportGet with net/http's
// Transport, configured as upstream.NewTransport does, for comparison.
func BenchmarkNetHTTPTransportGet(b *testing.B) {
	addr := testbackend.Bench(b, smallReply+benchBody)
	tr := &http.Transport{
		Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute,
		ResponseHeaderTimeout: 5 * time.Second, ExpectContinueTimeout: time.Second,
		WriteBufferSize: 16 << 10, ReadBufferSize: 16 << 10,
	}
	b.Cleanup(tr.CloseIdleConnections)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 32<<10)
		for pb.Next() {
			req, _ := http.NewRequest("GET", "http://"+addr+"/small", nil)
			req.Host = "lb.test"
			req.Header = benchHeader
			res, err := tr.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			drain(b, res, buf, 100)
		}
	})
}

func drain(b *testing.B, res *http.Response, buf []byte, want int) {
	n := 0
	for {
		m, err := res.Body.Read(buf)
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	res.Body.Close()
	if n != want {
		b.Fatalf("body of %d bytes, want %d", n, want)
	}
}

// BenchmarkParseHead measures parsing a typical response head: on a
// connection whose last head had the same lines (repeated: its line cache
// and field memo hold them), and as a connection's first head (first: none).
func BenchmarkParseHead(b *testing.B) {
	raw := []byte(smallReply)
	for _, repeated := range []bool{true, false} {
		name := "first"
		if repeated {
			name = "repeated"
		}
		b.Run(name, func(b *testing.B) {
			dst := make(http.Header)
			vals := make([]string, 16)
			cache, memo := new(linecache.Cache), new(fieldMemo)
			b.ReportAllocs()
			for b.Loop() {
				clear(dst)
				h := head{dst: dst, vals: vals, strip: true}
				if repeated {
					h.lines, h.memo = cache, memo
				}
				if err := parseHead(raw, &h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendHead measures writing a request head: as the proxy
// sends wrk's (small), and a browser's with its 11 more fields (browser).
func BenchmarkAppendHead(b *testing.B) {
	browser := benchHeader.Clone()
	for k, v := range map[string]string{
		"User-Agent":                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Accept":                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"Accept-Language":           "en-US,en;q=0.5",
		"Accept-Encoding":           "gzip, deflate, br",
		"Cookie":                    "session=abcdef0123456789; theme=dark",
		"Upgrade-Insecure-Requests": "1",
		"Sec-Fetch-Dest":            "document",
		"Sec-Fetch-Mode":            "navigate",
		"Sec-Fetch-Site":            "same-origin",
		"Priority":                  "u=0, i",
		"Dnt":                       "1",
	} {
		browser[k] = []string{v}
	}
	for _, tc := range []struct {
		name   string
		header http.Header
	}{{"small", benchHeader}, {"browser", browser}} {
		b.Run(tc.name, func(b *testing.B) {
			r := &Request{Method: "GET", Target: "/small", Host: "lb.test", Header: tc.header}
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = appendHead(buf[:0], r, "", requestFraming(r)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
