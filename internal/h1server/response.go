package h1server

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lbproject/load_balancer/internal/upstream/h1"
)

// writeBufSize is the size of the pooled buffer a response is assembled
// in: the head and a small body go out in one write. A connection holds
// one only while it writes a response.
const writeBufSize = 4 << 10

// maxPending is the most body a handler may write, without a
// Content-Length and without flushing, that is still held back to be sent
// with a Content-Length if the handler ends there (net/http: 2 KiB).
const maxPending = 2 << 10

var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, writeBufSize); return &b }}

// response is the http.ResponseWriter of one request; each connection
// reuses one. It also implements what http.ResponseController looks for:
// FlushError, Hijack, SetReadDeadline, SetWriteDeadline, EnableFullDuplex.
type response struct {
	c   *conn
	req *http.Request

	header      http.Header // the handler's; the map is cleared and kept for the next request
	status      int
	wroteHeader bool // a final status was set
	committed   bool // the head is written (to buf); set under conn.wmu
	isHead      bool
	bodyless    bool // no body may be sent: HEAD, 204, 304, 1xx
	// handlerLength: the Content-Length in the header at WriteHeader is
	// the body's framing; any other is left out of the head.
	handlerLength bool
	length        int64 // the Content-Length sent, or -1
	written       int64 // body bytes the handler wrote
	chunked       bool
	client11      bool // the client speaks HTTP/1.1 or later
	closeAfter    bool // the connection ends after this response
	hijacked      bool
	err           error // first write error: the client is gone

	bp   *[]byte   // pooled buffer while a response is written
	buf  []byte    // *bp: output not yet written
	pend []byte    // body held back while its length may still be learned
	vec  [2][]byte // writev of buf and a large body write

	// vals holds the values of header fields put into header from
	// elsewhere (HeaderValues); cleared with the map.
	vals [16]string
}

func (w *response) reset(req *http.Request) {
	h := w.header // kept across requests, unless a response made it large
	if h == nil || len(h) > 64 {
		h = make(http.Header, 8)
	} else {
		clear(h)
	}
	*w = response{c: w.c, req: req, header: h, pend: w.pend[:0], length: -1}
	w.isHead = req.Method == http.MethodHead
	w.client11 = req.ProtoAtLeast(1, 1)
	w.closeAfter = req.Close
}

func (w *response) Header() http.Header { return w.header }

// HeaderValues is room for the values of header fields that the handler
// copies into Header from elsewhere (the proxy's backend client parses the
// backend's response head straight into it), saving an allocation per
// response. Like the header map, it is valid until the response is
// finished; the next request on the connection reuses both.
func (w *response) HeaderValues() []string { return w.vals[:] }

// OwnsRequestHeader reports whether the request's header is the handler's
// own (Server.HandlerOwnsRequestHeader): the server reads nothing of it
// once the handler runs, and clears it for the next request, so the
// handler may change it in place (the proxy builds the header of its
// request to the backend there, without a copy).
func (w *response) OwnsRequestHeader() bool { return w.c.srv.HandlerOwnsRequestHeader }

// WriteHeader sets the final status, or sends an informational (1xx but
// 101) response at once with the header fields set so far.
func (w *response) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h1server: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	w.bodyless = w.isHead || !bodyAllowed(code)
	if cl := w.header["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.length = n
			w.handlerLength = true
		}
	}
}

// bodyAllowed reports whether a response with status code may have a body
// (RFC 9110 §6.4.1).
func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

func (w *response) writeInformational(code int) {
	if !w.client11 {
		return // HTTP/1.0 clients must not get one (RFC 9110 §15.2)
	}
	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	if w.committed || w.err != nil {
		return
	}
	b := appendStatusLine(w.getBuf(), true, code)
	b = appendFields(b, w.header)
	b = append(b, "\r\n"...)
	w.buf = b
	w.flushBuf()
}

// writeContinue sends 100 Continue, unless the response has started.
func (w *response) writeContinue() error {
	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	if w.committed || w.hijacked {
		return nil
	}
	_, err := w.c.sock.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
	return err
}

func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.bodyless {
		if w.isHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		if w.length < 0 && len(w.pend)+len(p) <= maxPending {
			w.pend = append(w.pend, p...)
			return len(p), nil
		}
		w.commit(false)
	}
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func (w *response) WriteString(s string) (int, error) {
	// Bodies here are small strings (error replies): the copy is cheap.
	return w.Write([]byte(s))
}

// commit writes the head (to buf) and decides the framing: the handler's
// Content-Length; when the handler has ended (final), the length of what
// it wrote; otherwise chunked for HTTP/1.1 clients, close-delimited for
// HTTP/1.0 ones. A body held back in pend follows.
func (w *response) commit(final bool) {
	w.c.wmu.Lock()
	w.committed = true
	w.c.wmu.Unlock()
	h := w.header
	addLength := false
	switch {
	case w.bodyless:
	case w.length >= 0:
	case final && len(h["Transfer-Encoding"]) == 0 && (len(h["Trailer"]) == 0 || !w.client11):
		// (Announced trailers need the chunked coding; a handler that
		// sets Transfer-Encoding says its body is a stream, to be sent
		// chunked even if it is short, as net/http's server does.)
		w.length = int64(len(w.pend))
		addLength = true
	case w.client11:
		w.chunked = true
	default:
		w.closeAfter = true
	}
	saysClose := h1.HasToken(h["Connection"], "close")
	if saysClose || w.c.srv.shutting.Load() || w.c.body != nil && w.c.body.blocksReuse() {
		w.closeAfter = true
	}
	b := appendStatusLine(w.getBuf(), w.client11, w.status)
	b = w.appendHeadFields(b)
	if addLength {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, w.length, 10)
		b = append(b, "\r\n"...)
	}
	if w.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case w.closeAfter && !saysClose:
		b = append(b, "Connection: close\r\n"...)
	case !w.closeAfter && !w.client11 && len(h["Connection"]) == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	if _, ok := h["Date"]; !ok {
		b = appendDate(b)
	}
	w.buf = append(b, "\r\n"...)
	if len(w.pend) > 0 {
		p := w.pend
		w.writeBody(p)
		w.pend = p[:0]
	}
}

// writeBody frames and writes body bytes.
func (w *response) writeBody(p []byte) {
	if len(p) == 0 {
		return
	}
	if w.chunked {
		w.buf = strconv.AppendInt(w.buf, int64(len(p)), 16)
		w.buf = append(w.buf, "\r\n"...)
		w.out(p)
		w.buf = append(w.buf, "\r\n"...)
		return
	}
	w.out(p)
}

// out writes p after what buf holds: into buf if it fits, else together
// with buf in one writev.
func (w *response) out(p []byte) {
	if w.err != nil {
		return
	}
	if len(w.buf)+len(p) <= cap(w.buf) {
		w.buf = append(w.buf, p...)
		return
	}
	if len(w.buf) == 0 {
		_, w.err = w.c.sock.Write(p)
		return
	}
	// One writev through net (sockio has no writev: a body this large
	// costs far more than the system call's entry).
	w.vec = [2][]byte{w.buf, p}
	bufs := net.Buffers(w.vec[:])
	_, w.err = bufs.WriteTo(w.c.rwc)
	w.vec = [2][]byte{}
	w.buf = w.buf[:0]
}

func (w *response) getBuf() []byte {
	if w.bp == nil {
		w.bp = writeBufs.Get().(*[]byte)
		w.buf = (*w.bp)[:0]
	}
	return w.buf
}

// flushBuf writes what buf holds.
func (w *response) flushBuf() {
	if len(w.buf) == 0 || w.err != nil {
		w.buf = w.buf[:0]
		return
	}
	_, w.err = w.c.sock.Write(w.buf)
	w.buf = w.buf[:0]
}

func (w *response) Flush() { _ = w.FlushError() }

// FlushError sends the head, if not yet sent, and all written body bytes.
func (w *response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	w.flushBuf()
	return w.err
}

// finish ends the response after the handler returned: the head if not
// sent yet, the last chunk and trailers, and a flush. The write buffer
// goes back to its pool.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true)
	}
	if w.chunked {
		w.buf = append(w.buf, "0\r\n"...)
		w.buf = w.appendTrailers(w.buf)
		w.buf = append(w.buf, "\r\n"...)
	}
	if !w.bodyless && w.length >= 0 && w.written < w.length {
		// Short of its Content-Length: only closing tells the client.
		w.closeAfter = true
	}
	w.flushBuf()
	w.putBuf()
}

// flushOnAbort sends what was written before the handler aborted, without
// ending the body, so that the client sees a truncated response.
func (w *response) flushOnAbort() {
	if w.committed {
		w.flushBuf()
	}
	w.putBuf()
}

func (w *response) putBuf() {
	if w.bp != nil {
		*w.bp = w.buf[:0]
		writeBufs.Put(w.bp)
		w.bp, w.buf = nil, nil
	}
}

// appendTrailers appends the trailer fields: those announced in the
// Trailer field, and those set with http.TrailerPrefix.
func (w *response) appendTrailers(b []byte) []byte {
	for _, list := range w.header["Trailer"] {
		for k := range strings.SplitSeq(list, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			for _, v := range w.header[k] {
				b = appendField(b, k, v)
			}
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vv {
				b = appendField(b, name, v)
			}
		}
	}
	return b
}

// Hijack hands the connection over (for upgrades): deadlines cleared, the
// background read stopped, anything buffered written first.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c := w.c
	c.mu.Lock()
	c.cur = nil // the request's context no longer watches the connection
	c.mu.Unlock()
	c.stopBackgroundRead()
	c.leaveParker()
	if w.committed {
		w.flushBuf()
	}
	w.putBuf()
	w.c.wmu.Lock()
	w.hijacked = true
	w.c.wmu.Unlock()
	c.srv.remove(c) // Shutdown no longer waits for it: the new owner decides
	c.rwc.SetDeadline(time.Time{})
	return c.rwc, bufio.NewReadWriter(c.br, bufio.NewWriter(c.rwc)), nil
}

func (w *response) SetReadDeadline(t time.Time) error {
	w.c.userDeadline.Store(true)
	return w.c.rwc.SetReadDeadline(t)
}

func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex: reading the request body while writing the response
// always works here.
func (w *response) EnableFullDuplex() error { return nil }

// appendHeadFields appends the fields of the response head: the handler's,
// but the framing ones the server decides (Transfer-Encoding, a
// Content-Length set after WriteHeader) and the trailer fields (announced
// in Trailer, or set with http.TrailerPrefix), which go after the body.
func (w *response) appendHeadFields(b []byte) []byte {
	trailers := w.header["Trailer"]
	for k, vv := range w.header {
		switch {
		case k == "Transfer-Encoding", strings.HasPrefix(k, http.TrailerPrefix):
			continue
		case k == "Content-Length" && !w.handlerLength:
			continue
		case len(trailers) > 0 && k != "Trailer" && h1.HasToken(trailers, k):
			continue
		}
		for _, v := range vv {
			b = appendField(b, k, v)
		}
	}
	return b
}

// appendFields appends the header fields, without the trailer fields set
// with http.TrailerPrefix. A CR or LF in a value (never from the proxy's
// parsers) becomes a space, as in net/http.
func appendFields(b []byte, h http.Header) []byte {
	for k, vv := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range vv {
			b = appendField(b, k, v)
		}
	}
	return b
}

func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	if strings.IndexByte(v, '\r') >= 0 || strings.IndexByte(v, '\n') >= 0 { // faster than ContainsAny
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	b = append(b, v...)
	return append(b, "\r\n"...)
}

var statusLines = func() (t [600]string) {
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			t[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
	return t
}()

func appendStatusLine(b []byte, proto11 bool, code int) []byte {
	if proto11 && code < len(statusLines) && statusLines[code] != "" {
		return append(b, statusLines[code]...)
	}
	if proto11 {
		b = append(b, "HTTP/1.1 "...)
	} else {
		b = append(b, "HTTP/1.0 "...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	return append(b, "\r\n"...)
}

// dateLine caches the Date field of the current second.
type dateLine struct {
	sec  int64
	line []byte
}

var currentDate atomic.Pointer[dateLine]

func appendDate(b []byte) []byte {
	now := time.Now()
	d := currentDate.Load()
	if d == nil || d.sec != now.Unix() {
		line := append([]byte("Date: "), now.UTC().AppendFormat(nil, http.TimeFormat)...)
		d = &dateLine{sec: now.Unix(), line: append(line, "\r\n"...)}
		currentDate.Store(d)
	}
	return append(b, d.line...)
}

var _ interface {
	http.ResponseWriter
	http.Flusher
	http.Hijacker
} = (*response)(nil)
