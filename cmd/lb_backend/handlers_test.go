package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func testBackend(style int) *backend {
	b := newBackend("Backend 1", 9001, style)
	b.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	return b
}

// serve runs one request through the whole handler (routes and X-Backend).
func serve(t *testing.T, h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if got := w.Header().Get("X-Backend"); got != "Backend 1" {
		t.Errorf("%s %s: X-Backend = %q, want %q", r.Method, r.URL, got, "Backend 1")
	}
	return w
}

// flushRecorder keeps the body as it was at each flush.
type flushRecorder struct {
	*httptest.ResponseRecorder
	flushed []string
}

func (f *flushRecorder) Flush() {
	f.flushed = append(f.flushed, f.Body.String())
	f.ResponseRecorder.Flush()
}

func TestIndexText(t *testing.T) {
	h := testBackend(1).handler(nil)
	r := httptest.NewRequest("GET", "/some/path?x=1", nil)
	r.Header.Set("Accept", "*/*")
	r.Header.Set("User-Agent", "curl/8.5.0")
	r.Header.Set("X-Forwarded-For", "10.1.2.3")
	r.Header.Set("Via", "1.1 load_balancer")
	w := serve(t, h, r)

	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	body := w.Body.String()
	if first, _, _ := strings.Cut(body, "\n"); first != "Backend 1 (port 9001)" {
		t.Errorf("first line %q", first)
	}
	for _, want := range []string{"GET /some/path?x=1 HTTP/1.1", "X-Forwarded-For: 10.1.2.3", "Via: 1.1 load_balancer",
		"User-Agent: curl/8.5.0", "2026-01-02 03:04:05.000 UTC", "Served:  request #1 on"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if w.Header().Get("Content-Length") != itoa(len(body)) {
		t.Errorf("Content-Length %q for %d bytes", w.Header().Get("Content-Length"), len(body))
	}
	// The counter advances per page served.
	w = serve(t, h, httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(w.Body.String(), "Served:  request #2 on") {
		t.Errorf("second request not counted:\n%s", w.Body.String())
	}
}

func TestIndexHTML(t *testing.T) {
	for _, style := range []int{1, 2} {
		h := testBackend(style).handler(nil)
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-Host", "example.com")
		r.Header.Set("X-Evil", `<script>alert(1)</script>`)
		w := serve(t, h, r)
		if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Fatalf("style %d: Content-Type %q", style, ct)
		}
		body := w.Body.String()
		for _, want := range []string{"<title>Backend 1 (port 9001)</title>", "<h1>Backend 1</h1>",
			"X-Forwarded-Proto", "https", "example.com", `class="style` + itoa(style) + `"`} {
			if !strings.Contains(body, want) {
				t.Errorf("style %d: page lacks %q", style, want)
			}
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("style %d: header value not escaped", style)
		}
		if strings.Contains(body, "ZgotmplZ") {
			t.Errorf("style %d: template escaper rejected content", style)
		}
	}
	// The two stylings differ (seed: Backend 2 "with a different styling").
	page := func(style int) string {
		r := httptest.NewRequest("GET", "/?format=html", nil)
		return serve(t, testBackend(style).handler(nil), r).Body.String()
	}
	p1, p2 := page(1), page(2)
	if !strings.Contains(p1, "#1565c0") || strings.Contains(p1, "#ff9f1c") {
		t.Error("style 1 should use the blue scheme only")
	}
	if !strings.Contains(p2, "#ff9f1c") || strings.Contains(p2, "#1565c0") {
		t.Error("style 2 should use the orange scheme only")
	}
}

func TestWantsHTML(t *testing.T) {
	cases := []struct {
		url, accept string
		want        bool
	}{
		{"/", "", false},
		{"/", "*/*", false},
		{"/", "text/html", true},
		{"/", "TEXT/HTML; charset=utf-8", true},
		{"/", "application/json, text/html;q=0.5", true},
		{"/", "text/html;q=0", false},
		{"/", "text/plain", false},
		{"/?format=html", "*/*", true},
		{"/?format=text", "text/html", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", c.url, nil)
		if c.accept != "" {
			r.Header.Set("Accept", c.accept)
		}
		if got := wantsHTML(r); got != c.want {
			t.Errorf("%s Accept %q: wantsHTML = %v, want %v", c.url, c.accept, got, c.want)
		}
	}
}

func TestHealth(t *testing.T) {
	h := testBackend(1).handler(nil)
	for _, m := range []string{"GET", "HEAD"} {
		w := serve(t, h, httptest.NewRequest(m, "/health", nil))
		if w.Code != 200 || w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: %d %q", m, w.Code, w.Header().Get("Content-Type"))
		}
		if m == "GET" && w.Body.String() != "ok" {
			t.Errorf("body %q, want ok", w.Body.String())
		}
	}
}

func TestChunkedFlushesEachLine(t *testing.T) {
	h := testBackend(1).handler(nil)
	w := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(w, httptest.NewRequest("GET", "/chunked?n=3&interval=1ms", nil))
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	lines := strings.Split(strings.TrimSuffix(w.Body.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), w.Body.String())
	}
	for i, l := range lines {
		if want := "Backend 1 (port 9001) chunk " + itoa(i+1) + "/3"; !strings.HasPrefix(l, want) {
			t.Errorf("line %d = %q, want prefix %q", i, l, want)
		}
	}
	if len(w.flushed) != 3 {
		t.Fatalf("%d flushes, want 3", len(w.flushed))
	}
	for i, f := range w.flushed {
		if got := strings.Count(f, "\n"); got != i+1 {
			t.Errorf("flush %d carried %d lines, want %d", i, got, i+1)
		}
	}
}

func TestStreamParams(t *testing.T) {
	h := testBackend(1).handler(nil)
	for _, q := range []string{"n=-1", "n=x", "n=10001", "interval=-1s", "interval=2m", "interval=soon", "interval=60001"} {
		for _, path := range []string{"/chunked?", "/sse?"} {
			w := serve(t, h, httptest.NewRequest("GET", path+q, nil))
			if w.Code != 400 {
				t.Errorf("%s%s: status %d, want 400", path, q, w.Code)
			}
		}
	}
	w := serve(t, h, httptest.NewRequest("GET", "/chunked?n=0", nil))
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("n=0: %d %q", w.Code, w.Body.String())
	}
}

// TestChunkedOverTheWire checks the real encoding and that the first chunk
// reaches the client before the next one is written.
func TestChunkedOverTheWire(t *testing.T) {
	srv := httptest.NewServer(testBackend(1).handler(nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/chunked?n=2&interval=300ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("TransferEncoding = %v, want [chunked]", resp.TransferEncoding)
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	got := time.Now()
	second, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if gap := time.Since(got); gap < 150*time.Millisecond {
		t.Errorf("second chunk came %v after the first; the stream looks buffered", gap)
	}
	if !strings.Contains(first, "chunk 1/2") || !strings.Contains(second, "chunk 2/2") {
		t.Errorf("lines %q %q", first, second)
	}
}

func TestSSE(t *testing.T) {
	h := testBackend(1).handler(nil)
	w := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(w, httptest.NewRequest("GET", "/sse?n=2&interval=0", nil))
	if ct := w.Header().Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	want := "id: 1\nevent: message\ndata: Backend 1 (port 9001) event 1/2 at 2026-01-02 03:04:05.000 UTC\n\n" +
		"id: 2\nevent: message\ndata: Backend 1 (port 9001) event 2/2 at 2026-01-02 03:04:05.000 UTC\n\n"
	if w.Body.String() != want {
		t.Errorf("body\n%q\nwant\n%q", w.Body.String(), want)
	}
	if len(w.flushed) != 2 || !strings.HasSuffix(w.flushed[0], "1/2 at 2026-01-02 03:04:05.000 UTC\n\n") {
		t.Errorf("flushes %q, want one per event", w.flushed)
	}
}

func TestStreamStopsWhenClientLeaves(t *testing.T) {
	h := testBackend(1).handler(nil)
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "/chunked?n=100&interval=1m", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { h.ServeHTTP(w, r); close(done) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not stop after the client left")
	}
	if n := strings.Count(w.Body.String(), "\n"); n != 1 {
		t.Errorf("%d lines written, want 1", n)
	}
}

func TestDelay(t *testing.T) {
	h := testBackend(1).handler(nil)
	start := time.Now()
	w := serve(t, h, httptest.NewRequest("GET", "/delay?d=50ms", nil))
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("answered after %v, want >= 50ms", took)
	}
	if w.Code != 200 || w.Body.String() != "Backend 1 (port 9001) waited 50ms\n" {
		t.Errorf("%d %q", w.Code, w.Body.String())
	}
	// A bare number is milliseconds.
	w = serve(t, h, httptest.NewRequest("GET", "/delay?d=5", nil))
	if w.Body.String() != "Backend 1 (port 9001) waited 5ms\n" {
		t.Errorf("d=5: %q", w.Body.String())
	}
	for _, q := range []string{"d=-1s", "d=11m", "d=later"} {
		if w := serve(t, h, httptest.NewRequest("GET", "/delay?"+q, nil)); w.Code != 400 {
			t.Errorf("%s: status %d, want 400", q, w.Code)
		}
	}
}

func TestDelayRespectsCancellation(t *testing.T) {
	h := testBackend(1).handler(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/delay?d=1m", nil).WithContext(ctx))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("delay ignored cancellation: took %v", took)
	}
	if w.Body.Len() != 0 {
		t.Errorf("wrote %q after cancellation", w.Body.String())
	}
}

func TestStatus(t *testing.T) {
	h := testBackend(1).handler(nil)
	for _, code := range []int{200, 201, 302, 404, 418, 500, 503, 599} {
		w := serve(t, h, httptest.NewRequest("GET", "/status/"+itoa(code), nil))
		if w.Code != code {
			t.Errorf("/status/%d answered %d", code, w.Code)
		}
		if !strings.HasPrefix(w.Body.String(), "Backend 1 (port 9001) answered "+itoa(code)) {
			t.Errorf("/status/%d body %q", code, w.Body.String())
		}
	}
	for _, code := range []int{204, 304} {
		w := serve(t, h, httptest.NewRequest("GET", "/status/"+itoa(code), nil))
		if w.Code != code || w.Body.Len() != 0 {
			t.Errorf("/status/%d: %d with body %q", code, w.Code, w.Body.String())
		}
	}
	for _, bad := range []string{"abc", "99", "100", "600", "-1"} {
		if w := serve(t, h, httptest.NewRequest("POST", "/status/"+bad, nil)); w.Code != 400 {
			t.Errorf("/status/%s answered %d, want 400", bad, w.Code)
		}
	}
}

func TestEcho(t *testing.T) {
	h := testBackend(1).handler(nil)
	r := httptest.NewRequest("PUT", "/echo?a=b", strings.NewReader("hello\nworld"))
	r.Header.Set("Content-Type", "text/x-test")
	r.Header.Set("X-Forwarded-For", "10.0.0.1")
	w := serve(t, h, r)
	want := "PUT /echo?a=b HTTP/1.1\nHost: example.com\nContent-Type: text/x-test\nX-Forwarded-For: 10.0.0.1\n\nhello\nworld"
	if w.Body.String() != want {
		t.Errorf("body\n%q\nwant\n%q", w.Body.String(), want)
	}
	if w.Header().Get("X-Echo-Method") != "PUT" || w.Header().Get("X-Echo-Uri") != "/echo?a=b" {
		t.Errorf("X-Echo headers %v", w.Header())
	}
	if w.Header().Get("Content-Length") != itoa(len(want)) {
		t.Errorf("Content-Length %q, want %d", w.Header().Get("Content-Length"), len(want))
	}

	// ?raw: the body only, with the request's Content-Type.
	r = httptest.NewRequest("POST", "/echo?raw", bytes.NewReader([]byte{0, 1, 2, 255}))
	r.Header.Set("Content-Type", "application/x-bin")
	w = serve(t, h, r)
	if !bytes.Equal(w.Body.Bytes(), []byte{0, 1, 2, 255}) || w.Header().Get("Content-Type") != "application/x-bin" {
		t.Errorf("raw echo %q %q", w.Body.Bytes(), w.Header().Get("Content-Type"))
	}
	// ?raw=false is the default format; an empty body still works.
	w = serve(t, h, httptest.NewRequest("GET", "/echo?raw=false", nil))
	if !strings.HasPrefix(w.Body.String(), "GET /echo?raw=false HTTP/1.1\n") || !strings.HasSuffix(w.Body.String(), "\n\n") {
		t.Errorf("GET echo %q", w.Body.String())
	}
}

// TestEchoStreamsLargeBodies sends a body larger than any buffer without a
// Content-Length, and checks that the echo starts before the upload ends.
func TestEchoStreamsLargeBodies(t *testing.T) {
	srv := httptest.NewServer(testBackend(1).handler(nil))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/echo?raw", pr)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		resp *http.Response
		err  error
	}
	respc := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		respc <- result{resp, err}
	}()

	// First piece: its echo must come back while the upload is still open.
	if _, err := pw.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	res := <-respc
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.resp.Body.Close()
	got := make([]byte, 5)
	if _, err := io.ReadFull(res.resp.Body, got); err != nil || string(got) != "ping\n" {
		t.Fatalf("first echo %q, %v", got, err)
	}

	// Then 24 MiB more, hashed on both sides.
	block := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	sent := sha256.New()
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		for range 24 * 16 {
			sent.Write(block)
			if _, err := pw.Write(block); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	recv := sha256.New()
	n, err := io.Copy(recv, res.resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	<-sendDone
	if n != 24<<20 || !bytes.Equal(sent.Sum(nil), recv.Sum(nil)) {
		t.Errorf("echoed %d bytes, hash match %v", n, bytes.Equal(sent.Sum(nil), recv.Sum(nil)))
	}
}

func TestBytes(t *testing.T) {
	h := testBackend(1).handler(nil)
	w := serve(t, h, httptest.NewRequest("GET", "/bytes/100", nil))
	want := strings.Repeat(bytePattern, 2)[:100]
	if w.Code != 200 || w.Body.String() != want || w.Header().Get("Content-Length") != "100" {
		t.Errorf("%d %q len %q", w.Code, w.Body.String(), w.Header().Get("Content-Length"))
	}
	// Longer than one block: the pattern continues across writes.
	w = serve(t, h, httptest.NewRequest("GET", "/bytes/100k", nil))
	body := w.Body.Bytes()
	if len(body) != 100<<10 || w.Header().Get("Content-Length") != "102400" {
		t.Fatalf("got %d bytes, Content-Length %q", len(body), w.Header().Get("Content-Length"))
	}
	for i, c := range body {
		if c != bytePattern[i%len(bytePattern)] {
			t.Fatalf("byte %d = %q, want %q", i, c, bytePattern[i%len(bytePattern)])
		}
	}
	w = serve(t, h, httptest.NewRequest("HEAD", "/bytes/1g", nil))
	if w.Header().Get("Content-Length") != "1073741824" || w.Body.Len() != 0 {
		t.Errorf("HEAD: Content-Length %q, %d body bytes", w.Header().Get("Content-Length"), w.Body.Len())
	}
	w = serve(t, h, httptest.NewRequest("GET", "/bytes/0", nil))
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("/bytes/0: %d, %d bytes", w.Code, w.Body.Len())
	}
	for _, bad := range []string{"x", "-1", "1t", "k", "2000g"} {
		if w := serve(t, h, httptest.NewRequest("GET", "/bytes/"+bad, nil)); w.Code != 400 {
			t.Errorf("/bytes/%s answered %d, want 400", bad, w.Code)
		}
	}
}

func TestFavicon(t *testing.T) {
	w := serve(t, testBackend(1).handler(nil), httptest.NewRequest("GET", "/favicon.ico", nil))
	if w.Code != http.StatusNoContent {
		t.Errorf("status %d", w.Code)
	}
}

func TestAccessLog(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	h := testBackend(1).handler(logger)
	serve(t, h, httptest.NewRequest("GET", "/status/418", nil))
	serve(t, h, httptest.NewRequest("GET", "/health", nil))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"uri=/status/418 status=418", "uri=/health status=200 bytes=2"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q lacks %q", i, lines[i], want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	var out bytes.Buffer
	o, err := parseFlags(nil, &out, &out)
	if err != nil || o.host != "127.0.0.1" || o.port != 9001 || o.name != "" || o.style != 0 || !o.accessLog {
		t.Errorf("defaults %+v, %v", o, err)
	}
	o, err = parseFlags([]string{"--port", "9002", "--name", "Backend 2", "--host", "0.0.0.0", "--style", "1", "--access-log=false"}, &out, &out)
	if err != nil || o.port != 9002 || o.name != "Backend 2" || o.host != "0.0.0.0" || o.style != 1 || o.accessLog {
		t.Errorf("parsed %+v, %v", o, err)
	}
	out.Reset()
	if _, err := parseFlags([]string{"--help"}, &out, &out); !errors.Is(err, pflag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	for _, flag := range []string{"--host", "--port", "--name", "--style", "--access-log", "--shutdown-timeout", "/chunked", "/bytes/{n}"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("help lacks %q", flag)
		}
	}
	for _, bad := range [][]string{{"--style", "3"}, {"--port", "70000"}, {"extra"}, {"--nope"}} {
		if _, err := parseFlags(bad, io.Discard, io.Discard); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestDefaults(t *testing.T) {
	cases := []struct {
		flagPort, port int
		name           string
		style          int
	}{
		{9001, 9001, "Backend 1", 1},
		{9002, 9002, "Backend 2", 2},
		{9003, 9003, "Backend 9003", 2},
		{0, 40000, "Backend 40000", 2},
	}
	for _, c := range cases {
		name := defaultName(c.flagPort, c.port)
		if name != c.name || defaultStyle(c.flagPort, name) != c.style {
			t.Errorf("port %d: %q style %d, want %q style %d", c.flagPort, name, defaultStyle(c.flagPort, name), c.name, c.style)
		}
	}
	if defaultStyle(0, "Backend 1") != 1 {
		t.Error(`name "Backend 1" should get style 1`)
	}
	if badge("Backend 2") != "2" || badge("alpha beta") != "A" || badge("") != "?" {
		t.Error("badge")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
