package e2e

// Message framing through the balancer: 1 MiB bodies byte-exact in every
// framing, both directions; trailers; HEAD, 204 and 304 without bodies.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/testbackend"
)

const mib = 1 << 20

// TestProtocolResponseBodyFramings fetches a 1 MiB random body through the
// balancer from backends that frame it with Content-Length, chunked, and by
// closing the connection (HTTP/1.0 and HTTP/1.1 with Connection: close).
func TestProtocolResponseBodyFramings(t *testing.T) {
	t.Parallel()
	payload := randomBytes(t, mib)
	want := sum(payload)

	// net/http backends: Content-Length, and chunked (no length, flushed in pieces).
	mux := http.NewServeMux()
	mux.HandleFunc("/length", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(payload)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		rc := http.NewResponseController(w)
		for off := 0; off < len(payload); off += 100_000 {
			w.Write(payload[off:min(off+100_000, len(payload))])
			rc.Flush()
		}
	})
	std := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, _ recordedRequest) { mux.ServeHTTP(w, r) })

	// Raw backends: body delimited by the end of the connection.
	closeDelimited := func(statusLine string) *testbackend.RawServer {
		return testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
			if _, err := readHead(br); err != nil {
				return
			}
			io.WriteString(c, statusLine+"\r\nContent-Type: application/octet-stream\r\n\r\n")
			c.Write(payload)
			// Returning closes the connection: that is the end of the body.
		})
	}
	http10 := closeDelimited("HTTP/1.0 200 OK")
	http11 := closeDelimited("HTTP/1.1 200 OK\r\nConnection: close")

	cases := []struct {
		name, backend, path string
		wantLength          int64 // resp.ContentLength the client sees; -1 unknown
	}{
		{"content-length", std.Addr, "/length", mib},
		{"chunked", std.Addr, "/chunked", -1},
		{"close-delimited HTTP/1.0", http10.Addr, "/", -1},
		{"close-delimited HTTP/1.1", http11.Addr, "/", -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lb := startProtoBalancer(t, "", tc.backend)
			c := client(t)
			for i := range 2 { // twice: the second may use a pooled connection
				resp, err := c.Get(lb.URL(tc.path))
				if err != nil {
					t.Fatal(err)
				}
				got, n, err := hashReader(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("request %d: reading body: %v after %d bytes", i, err, n)
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d: status %d", i, resp.StatusCode)
				}
				if n != mib || got != want {
					t.Fatalf("request %d: got %d bytes sha256 %s, want %d bytes %s", i, n, got, mib, want)
				}
				if resp.ContentLength != tc.wantLength {
					t.Errorf("request %d: client saw ContentLength %d, want %d", i, resp.ContentLength, tc.wantLength)
				}
			}
		})
	}
}

// TestProtocolSmallChunkedStaysChunked: a short chunked response, which
// the balancer receives whole in one read, still reaches the client
// chunked (a stream stays a stream; it is not turned into a buffered
// Content-Length response), and a short Content-Length one keeps its
// length.
func TestProtocolSmallChunkedStaysChunked(t *testing.T) {
	t.Parallel()
	be := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, _ recordedRequest) {
		if r.URL.Path == "/length" {
			w.Header().Set("Content-Length", "5")
		}
		io.WriteString(w, "hello")
		http.NewResponseController(w).Flush() // without a length: chunked
	})
	lb := startProtoBalancer(t, "", be.Addr)
	c := client(t)
	for path, want := range map[string]int64{"/chunked": -1, "/length": 5} {
		resp, err := c.Get(lb.URL(path))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "hello" {
			t.Fatalf("%s: body %q, %v", path, body, err)
		}
		if resp.ContentLength != want {
			t.Errorf("%s: client saw ContentLength %d (Transfer-Encoding %q), want %d", path, resp.ContentLength, resp.TransferEncoding, want)
		}
	}
}

// TestProtocolRequestBodyFramings posts a 1 MiB random body through the
// balancer with Content-Length and chunked, from Go's client and as raw
// bytes, and checks that the backend received it byte-exact.
func TestProtocolRequestBodyFramings(t *testing.T) {
	t.Parallel()
	payload := randomBytes(t, mib)
	want := sum(payload)
	be := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, rec recordedRequest) {
		fmt.Fprintf(w, "%d %s", len(rec.Body), sum(rec.Body))
	})
	lb := startProtoBalancer(t, "", be.Addr)
	wantReply := fmt.Sprintf("%d %s", mib, want)

	for _, tc := range []struct {
		name, path string
		body       io.Reader
		length     int64
	}{
		{"content-length", "/upload-cl", bytes.NewReader(payload), mib},
		// A reader of unknown length makes Go's client send chunked.
		{"chunked", "/upload-chunked", io.MultiReader(bytes.NewReader(payload)), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, lb.URL(tc.path), tc.body)
			req.Header.Set("Content-Type", "application/octet-stream")
			req.ContentLength = tc.length
			resp, err := client(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != wantReply {
				t.Fatalf("status %d, backend says %q, want %q", resp.StatusCode, body, wantReply)
			}
		})
	}
	t.Run("raw chunked with extensions and odd chunk sizes", func(t *testing.T) {
		var req bytes.Buffer
		req.WriteString("POST /upload-raw HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
		// Chunk sizes in upper and lower case hex, one with an extension.
		body := chunked(payload[:mib-1000], 4093)
		req.Write(body)
		fmt.Fprintf(&req, "3E8;name=value\r\n")
		req.Write(payload[mib-1000:])
		req.WriteString("\r\n0\r\n\r\n")
		res := exchangeOne(t, lb.Addr, req.String())
		if res.Status != http.StatusOK || res.Body != wantReply {
			t.Fatalf("status %d, backend says %q, want %q", res.Status, res.Body, wantReply)
		}
	})

	for _, r := range be.Requests() {
		if r.BodyErr != nil {
			t.Errorf("%s: backend body read error %v", r.URI, r.BodyErr)
		}
	}
}

// TestProtocolResponseTrailers checks that trailer fields a backend sends
// after a chunked body reach the client, announced or not.
func TestProtocolResponseTrailers(t *testing.T) {
	t.Parallel()
	payload := randomBytes(t, mib)
	be := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, _ recordedRequest) {
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		w.Write(payload)
		w.Header().Set("X-Checksum", sum(payload))
		w.Header().Set(http.TrailerPrefix+"X-Unannounced", "late")
	})
	lb := startProtoBalancer(t, "", be.Addr)

	resp, err := client(t).Get(lb.URL("/trailers"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, ok := resp.Trailer["X-Checksum"]; !ok {
		t.Errorf("trailer X-Checksum not announced to the client; header %v", resp.Header)
	}
	got, n, err := hashReader(resp.Body)
	if err != nil || n != mib || got != sum(payload) {
		t.Fatalf("body: %d bytes sha256 %s err %v; want %d bytes %s", n, got, err, mib, sum(payload))
	}
	if v := resp.Trailer.Get("X-Checksum"); v != sum(payload) {
		t.Errorf("trailer X-Checksum = %q, want %q (trailers %v)", v, sum(payload), resp.Trailer)
	}
	if v := resp.Trailer.Get("X-Unannounced"); v != "late" {
		t.Errorf("unannounced trailer X-Unannounced = %q, want %q (trailers %v)", v, "late", resp.Trailer)
	}
}

// TestProtocolRequestTrailers sends a chunked request with an announced
// trailer and checks that the backend receives the body and the trailer.
func TestProtocolRequestTrailers(t *testing.T) {
	t.Parallel()
	payload := randomBytes(t, mib)
	be := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, rec recordedRequest) {
		fmt.Fprintf(w, "%s %s", sum(rec.Body), rec.Trailer.Get("X-Checksum"))
	})
	lb := startProtoBalancer(t, "", be.Addr)

	var req bytes.Buffer
	req.WriteString("POST /upload HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\nConnection: close\r\n\r\n")
	req.Write(chunked(payload, 32<<10))
	fmt.Fprintf(&req, "0\r\nX-Checksum: %s\r\n\r\n", sum(payload))
	res := exchangeOne(t, lb.Addr, req.String())
	if want := sum(payload) + " " + sum(payload); res.Status != http.StatusOK || res.Body != want {
		t.Fatalf("status %d, backend saw body/trailer %q, want 200 %q", res.Status, res.Body, want)
	}
}

// TestProtocolNoBodyResponses pipelines HEAD, a 204, a 304 and a GET on one
// connection: HEAD keeps the GET's Content-Length without a body, 204 and
// 304 have no body, and the responses stay in step (a stray body byte would
// break the parse of the next response).
func TestProtocolNoBodyResponses(t *testing.T) {
	t.Parallel()
	page := randomBytes(t, 12345)
	be := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, _ recordedRequest) {
		switch r.URL.Path {
		case "/resource":
			w.Header().Set("ETag", `"v1"`)
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(page)))
			if r.Method == http.MethodHead {
				return
			}
			w.Write(page)
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	})
	lb := startProtoBalancer(t, "", be.Addr)

	reqs := "HEAD /resource HTTP/1.1\r\nHost: lb.test\r\n\r\n" +
		"GET /nocontent HTTP/1.1\r\nHost: lb.test\r\n\r\n" +
		"GET /resource HTTP/1.1\r\nHost: lb.test\r\nIf-None-Match: \"v1\"\r\n\r\n" +
		"HEAD /resource HTTP/1.1\r\nHost: lb.test\r\n\r\n" +
		"GET /resource HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n"
	raw := rawExchange(t, lb.Addr, reqs, 10*time.Second)
	rs, err := parseResponses(raw, "HEAD", "GET", "GET", "HEAD", "GET")
	if err != nil {
		t.Fatalf("responses out of step: %v (parsed %v); raw:\n%s", err, statuses(rs), head(raw))
	}
	if got, want := fmt.Sprint(statuses(rs)), "[200 204 304 200 200]"; got != want {
		t.Fatalf("statuses %s, want %s", got, want)
	}
	for _, i := range []int{0, 3} {
		if cl := rs[i].Header.Get("Content-Length"); cl != strconv.Itoa(len(page)) {
			t.Errorf("HEAD response %d: Content-Length %q, want %d (the GET's)", i+1, cl, len(page))
		}
		if rs[i].Body != "" {
			t.Errorf("HEAD response %d has a body", i+1)
		}
	}
	if rs[1].Body != "" || rs[2].Body != "" {
		t.Errorf("204/304 carried a body: %q / %q", rs[1].Body, rs[2].Body)
	}
	if te := rs[1].Header.Get("Transfer-Encoding") + rs[2].Header.Get("Transfer-Encoding"); te != "" {
		t.Errorf("204/304 sent with Transfer-Encoding %q", te)
	}
	if rs[2].Header.Get("ETag") != `"v1"` {
		t.Errorf("304 lost its ETag: %v", rs[2].Header)
	}
	if rs[4].Body != string(page) {
		t.Errorf("final GET body: %d bytes, want the %d-byte page", len(rs[4].Body), len(page))
	}
	// The balancer's responses must be exactly these five: nothing after.
	if n := strings.Count(raw, "HTTP/1.1 "); n != 5 {
		t.Errorf("%d status lines in the reply, want 5", n)
	}
}
