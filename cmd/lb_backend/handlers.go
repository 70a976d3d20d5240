package main

import (
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds on what a request may ask for, so that every wait has an end.
const (
	defaultChunks   = 5
	defaultInterval = 200 * time.Millisecond
	maxChunks       = 10000
	maxInterval     = time.Minute
	defaultDelay    = time.Second
	maxDelay        = 10 * time.Minute
	maxBytes        = 1 << 40
	// ioTimeout bounds each read of a request body and each write of a
	// streamed response: a peer that stops reading or sending is dropped.
	ioTimeout = 30 * time.Second
)

// bytePattern is the content of /bytes/{n}: byte i is bytePattern[i%63].
const bytePattern = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\n"

// patternBlock repeats bytePattern a whole number of times, so any slice
// block[i%63:] continues the pattern seamlessly.
var patternBlock = []byte(strings.Repeat(bytePattern, 512))

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// backend is one demo backend: its identity and a request counter.
type backend struct {
	name   string
	port   int
	style  int
	served atomic.Uint64
	now    func() time.Time
}

func newBackend(name string, port, style int) *backend {
	return &backend{name: name, port: port, style: style, now: time.Now}
}

// label is the line that names this backend: "Backend 1 (port 9001)".
func (b *backend) label() string {
	return fmt.Sprintf("%s (port %d)", b.name, b.port)
}

// handler is the whole server: the routes, the X-Backend header on every
// response and, when logger is not nil, one log line per request.
func (b *backend) handler(logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", b.handleIndex)
	mux.HandleFunc("/favicon.ico", handleFavicon)
	mux.HandleFunc("/health", handleHealth)
	mux.HandleFunc("/chunked", b.handleChunked)
	mux.HandleFunc("/sse", b.handleSSE)
	mux.HandleFunc("/delay", b.handleDelay)
	mux.HandleFunc("/status/{code}", b.handleStatus)
	mux.HandleFunc("/echo", handleEcho)
	mux.HandleFunc("/bytes/{n}", handleBytes)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", b.name)
		if logger == nil {
			mux.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		mux.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK // what net/http sends for a handler that wrote nothing
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("uri", r.RequestURI),
			slog.Int("status", status),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		}
		if r.Context().Err() != nil {
			attrs = append(attrs, slog.Bool("client_gone", true))
		}
		logger.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// recorder notes the status and body size for the access log. Unwrap keeps
// http.ResponseController (flush, deadlines, full duplex) working through it.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// handleIndex serves the page naming this backend, on any path not taken by
// another endpoint: HTML for browsers, plain text for curl and other clients.
func (b *backend) handleIndex(w http.ResponseWriter, r *http.Request) {
	info := b.describe(r)
	h := w.Header()
	h.Set("Cache-Control", "no-store") // every refresh goes through the balancer
	h.Add("Vary", "Accept")
	if wantsHTML(r) {
		page, err := renderPage(info)
		if err != nil {
			http.Error(w, "rendering page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(page)))
		_, _ = w.Write(page)
		return
	}
	text := renderText(info)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(text)))
	_, _ = io.WriteString(w, text)
}

// wantsHTML reports whether the client accepts text/html (browsers do; curl,
// which sends "Accept: */*", does not). ?format=html or ?format=text wins.
func wantsHTML(r *http.Request) bool {
	switch r.URL.Query().Get("format") {
	case "html":
		return true
	case "text":
		return false
	}
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != "text/html" {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// handleFavicon answers browsers' icon requests without spending a balancer
// pick on the page (the page itself carries an inline icon).
func handleFavicon(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.WriteHeader(http.StatusNoContent)
}

func handleHealth(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", "2")
	_, _ = io.WriteString(w, "ok")
}

// handleChunked streams n lines, flushing each as its own chunk.
func (b *backend) handleChunked(w http.ResponseWriter, r *http.Request) {
	n, interval, err := streamParams(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff") // browsers show chunks as they come
	h.Set("Cache-Control", "no-store")
	b.stream(w, r, n, interval, func(i int) string {
		return fmt.Sprintf("%s chunk %d/%d at %s\n", b.label(), i, n, b.now().Format(timeFormat))
	})
}

// handleSSE sends n server-sent events, flushing each.
func (b *backend) handleSSE(w http.ResponseWriter, r *http.Request) {
	n, interval, err := streamParams(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	b.stream(w, r, n, interval, func(i int) string {
		return fmt.Sprintf("id: %d\nevent: message\ndata: %s event %d/%d at %s\n\n",
			i, b.label(), i, n, b.now().Format(timeFormat))
	})
}

// stream writes n pieces, the first at once and then one every interval,
// flushing after each; it stops early when the client goes away.
func (b *backend) stream(w http.ResponseWriter, r *http.Request, n int, interval time.Duration, piece func(i int) string) {
	rc := http.NewResponseController(w)
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	w.WriteHeader(http.StatusOK)
	var timer *time.Timer
	for i := 1; i <= n; i++ {
		if i > 1 && interval > 0 {
			if timer == nil {
				timer = time.NewTimer(interval)
				defer timer.Stop()
			} else {
				timer.Reset(interval)
			}
			select {
			case <-timer.C:
			case <-r.Context().Done():
				return
			}
		}
		_ = rc.SetWriteDeadline(time.Now().Add(ioTimeout)) // ErrNotSupported only in tests
		if _, err := io.WriteString(w, piece(i)); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// streamParams reads n and interval for /chunked and /sse.
func streamParams(q url.Values) (int, time.Duration, error) {
	n := defaultChunks
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > maxChunks {
			return 0, 0, fmt.Errorf("n=%q: want an integer 0-%d", s, maxChunks)
		}
		n = v
	}
	interval, err := durationParam(q, "interval", defaultInterval, maxInterval)
	if err != nil {
		return 0, 0, err
	}
	return n, interval, nil
}

// durationParam parses a Go duration ("250ms", "2s"); a bare number is
// milliseconds. Empty gives def; negative or above max is an error.
func durationParam(q url.Values, key string, def, limit time.Duration) (time.Duration, error) {
	s := q.Get(key)
	if s == "" {
		return def, nil
	}
	var d time.Duration
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 || ms > limit.Milliseconds() {
			return 0, fmt.Errorf("%s=%q: want 0 to %s", key, s, limit)
		}
		d = time.Duration(ms) * time.Millisecond
	} else {
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%s=%q: want a duration such as 250ms or 2s", key, s)
		}
	}
	if d < 0 || d > limit {
		return 0, fmt.Errorf("%s=%q: want 0 to %s", key, s, limit)
	}
	return d, nil
}

// handleDelay answers after d, or gives up when the client goes away.
func (b *backend) handleDelay(w http.ResponseWriter, r *http.Request) {
	d, err := durationParam(r.URL.Query(), "d", defaultDelay, maxDelay)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s waited %s\n", b.label(), d)
}

// handleStatus answers with the status code named in the path.
func (b *backend) handleStatus(w http.ResponseWriter, r *http.Request) {
	s := r.PathValue("code")
	code, err := strconv.Atoi(s)
	if err != nil || code < 200 || code > 599 {
		http.Error(w, fmt.Sprintf("status %q: want a code 200-599", s), http.StatusBadRequest)
		return
	}
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.WriteHeader(code) // no body allowed
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, "%s answered %d %s\n", b.label(), code, http.StatusText(code))
}

// handleEcho streams the request back: by default its request line, Host and
// headers, a blank line, then the body; with ?raw only the body. The body is
// copied as it arrives (full duplex), so any size works in constant memory.
func handleEcho(w http.ResponseWriter, r *http.Request) {
	raw := false
	if q := r.URL.Query(); q.Has("raw") {
		v, err := strconv.ParseBool(q.Get("raw"))
		raw = err != nil || v // "?raw" alone means true
	}
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	defer func() {
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
	}()

	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	buf := *bufp

	// Read the first piece before answering: that sends "100 Continue" to a
	// client that waits for it, and a read error can still become a 400.
	_ = rc.SetReadDeadline(time.Now().Add(ioTimeout))
	n, rerr := readSome(r.Body, buf)
	if rerr != nil && rerr != io.EOF {
		http.Error(w, "reading request body: "+rerr.Error(), http.StatusBadRequest)
		return
	}

	var head string
	h := w.Header()
	h.Set("X-Echo-Method", r.Method)
	h.Set("X-Echo-Uri", r.RequestURI)
	h.Set("Cache-Control", "no-store")
	if raw {
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.Set("Content-Type", ct)
	} else {
		head = echoHead(r)
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
	}
	if r.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(int64(len(head))+r.ContentLength, 10))
	}
	w.WriteHeader(http.StatusOK)
	_ = rc.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(w, head); err != nil {
		return
	}
	for {
		if n > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(ioTimeout))
			if _, err := w.Write(buf[:n]); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
		if rerr != nil {
			return // io.EOF, or a broken body: the response ends short
		}
		_ = rc.SetReadDeadline(time.Now().Add(ioTimeout))
		n, rerr = r.Body.Read(buf)
	}
}

// readSome reads until it has at least one byte or an error.
func readSome(r io.Reader, buf []byte) (int, error) {
	for {
		n, err := r.Read(buf)
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// echoHead is the text before the body in /echo's answer.
func echoHead(r *http.Request) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s %s\n", r.Method, r.RequestURI, r.Proto)
	fmt.Fprintf(&sb, "Host: %s\n", r.Host)
	for _, hl := range sortedHeaders(r.Header) {
		fmt.Fprintf(&sb, "%s: %s\n", hl.Name, hl.Value)
	}
	sb.WriteString("\n")
	return sb.String()
}

// handleBytes sends n bytes of bytePattern with a Content-Length.
func handleBytes(w http.ResponseWriter, r *http.Request) {
	n, err := parseSize(r.PathValue("n"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	plen := int64(len(bytePattern))
	for off := int64(0); off < n; {
		start := off % plen
		chunk := min(n-off, int64(len(patternBlock))-start)
		_ = rc.SetWriteDeadline(time.Now().Add(ioTimeout))
		if _, err := w.Write(patternBlock[start : start+chunk]); err != nil {
			return
		}
		off += chunk
	}
}

// parseSize reads a byte count with an optional k, m or g suffix (powers of 1024).
func parseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			num = s[:len(s)-1]
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > maxBytes/mult {
		return 0, fmt.Errorf("size %q: want a byte count 0-%d, optionally with suffix k, m or g", s, int64(maxBytes))
	}
	return v * mult, nil
}
