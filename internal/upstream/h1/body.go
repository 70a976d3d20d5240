package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Framing modes of a response body (RFC 9112 §6.3).
const (
	modeLength  = iota // Content-Length
	modeChunked        // Transfer-Encoding: chunked
	modeEOF            // until the backend closes the connection
)

// States of the chunked decoder.
const (
	chunkSize     = iota // before a chunk-size line
	chunkData            // in a chunk's data
	chunkCRLF            // after a chunk's data
	chunkTrailers        // after the last chunk, before its trailer section
)

var errBodyClosed = errors.New("h1: read on closed response body")

// body reads a response body in its framing. Reading it to the end gives
// the connection back to the pool (or closes it); closing it before the end
// closes the connection. It is for one goroutine at a time.
type body struct {
	c          *conn
	ctx        context.Context
	res        *http.Response // gets the trailer fields
	mode       int
	n          int64 // modeLength: bytes left; modeChunked: bytes left in the chunk
	state      int   // modeChunked
	excess     int64 // modeChunked: framing bytes beyond a fair share
	closeAfter bool
	err        error // sticky: io.EOF once done
}

func (b *body) Read(p []byte) (n int, err error) {
	if b.err != nil {
		return 0, b.err
	}
	switch b.mode {
	case modeLength:
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, err = b.c.br.Read(p)
		b.n -= int64(n)
		if b.n == 0 {
			b.done()
			return n, io.EOF
		}
		if err != nil {
			return n, b.fail(unexpectedEOF(err))
		}
		return n, nil
	case modeChunked:
		return b.readChunked(p)
	default:
		n, err = b.c.br.Read(p)
		if err == io.EOF {
			b.done()
			return n, io.EOF
		}
		if err != nil {
			return n, b.fail(err)
		}
		return n, nil
	}
}

// Close ends the body; before its end, it closes the connection.
func (b *body) Close() error {
	if b.err == nil {
		b.err = errBodyClosed
		b.c.fail(b.ctx, nil)
	}
	return nil
}

// done ends a body read completely.
func (b *body) done() {
	b.err = io.EOF
	if b.closeAfter {
		b.c.fail(b.ctx, nil)
		b.c.recycleReader()
		return
	}
	b.c.release()
}

// fail ends a body that could not be read: the connection is closed and
// the client must see a truncated response.
func (b *body) fail(err error) error {
	b.err = b.c.fail(b.ctx, fmt.Errorf("h1: reading response body: %w", err))
	return b.err
}

// readChunked decodes the chunked coding (RFC 9112 §7.1).
func (b *body) readChunked(p []byte) (int, error) {
	br := b.c.br
	for {
		switch b.state {
		case chunkSize:
			if err := b.readChunkSize(br); err != nil {
				return 0, b.fail(err)
			}
			if b.state == chunkSize { // the last chunk
				if err := b.readTrailers(br); err != nil {
					return 0, b.fail(err)
				}
				b.done()
				return 0, io.EOF
			}
		case chunkData:
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > b.n {
				p = p[:b.n]
			}
			n, err := br.Read(p)
			b.n -= int64(n)
			if b.n == 0 {
				b.state = chunkCRLF
				// The rest of a small response is usually buffered
				// already: end the body now if it is, so that the
				// caller's next Read is not needed to free the connection.
				if eof, err := b.advanceBuffered(br); err != nil {
					return n, b.fail(err)
				} else if eof {
					return n, io.EOF
				}
			}
			if err != nil && b.n > 0 {
				return n, b.fail(unexpectedEOF(err))
			}
			return n, nil
		case chunkCRLF:
			if err := readCRLF(br); err != nil {
				return 0, b.fail(err)
			}
			b.state = chunkSize
		case chunkTrailers:
			if err := b.readTrailers(br); err != nil {
				return 0, b.fail(err)
			}
			b.done()
			return 0, io.EOF
		}
	}
}

// readChunkSize reads a chunk-size line. A chunk of size 0 is the last one:
// the state stays chunkSize.
func (b *body) readChunkSize(br *bufio.Reader) error {
	line, err := readChunkLine(br)
	if err != nil {
		return err
	}
	size, err := parseChunkLine(line)
	if err != nil {
		return err
	}
	// As net/http does: refuse bodies that are mostly framing (tiny chunks
	// with long extensions), which cost far more to read than they carry.
	b.excess += int64(len(line)) + 2 - 16 - 2*min(size, 1<<20)
	b.excess = max(b.excess, 0)
	if b.excess > 16<<10 {
		return protoErr("chunked body is mostly framing")
	}
	if size > 0 {
		b.n = size
		b.state = chunkData
	}
	return nil
}

// advanceBuffered goes on decoding after a chunk's data as long as the
// bytes needed are buffered, without waiting for more. It reports whether
// the body ended.
func (b *body) advanceBuffered(br *bufio.Reader) (bool, error) {
	for {
		buffered, _ := br.Peek(br.Buffered())
		switch b.state {
		case chunkCRLF:
			if len(buffered) < 2 {
				return false, nil
			}
			if err := readCRLF(br); err != nil {
				return false, err
			}
			b.state = chunkSize
		case chunkSize:
			if indexByte(buffered, '\n') < 0 {
				return false, nil
			}
			if err := b.readChunkSize(br); err != nil {
				return false, err
			}
			if b.state == chunkData {
				return false, nil
			}
			// The last chunk: the trailer section, if it is all here.
			buffered, _ = br.Peek(br.Buffered())
			if !(len(buffered) >= 2 && buffered[0] == '\r' && buffered[1] == '\n') && headEnd(buffered, 0) == 0 {
				b.state = chunkTrailers
				return false, nil
			}
			if err := b.readTrailers(br); err != nil {
				return false, err
			}
			b.done()
			return true, nil
		default:
			return false, nil
		}
	}
}

// readTrailers reads the trailer section after the last chunk into the
// response's Trailer (RFC 9112 §7.1.2), with the same checks as header
// fields. Framing and hop-by-hop fields are dropped.
func (b *body) readTrailers(br *bufio.Reader) error {
	max := b.c.t.opt.MaxResponseHeaderBytes
	total := 0
	var fp fieldParser
	var h head
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return protoErr("trailer field too long")
		}
		if err != nil {
			return unexpectedEOF(err)
		}
		if total += len(line); total > max {
			return protoErr("trailer section too large")
		}
		line = line[:len(line)-1]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			break
		}
		if fp.fields++; fp.fields > maxFields {
			return protoErr("too many trailer fields")
		}
		key, value, err := splitField(string(line))
		if err != nil {
			return err
		}
		if forbiddenTrailer(key) {
			continue
		}
		if h.header == nil {
			h.header = make(http.Header)
		}
		h.header[key] = append(h.header[key], value)
	}
	if h.header != nil {
		if b.res.Trailer == nil {
			b.res.Trailer = make(http.Header, len(h.header))
		}
		for k, vv := range h.header {
			b.res.Trailer[k] = vv
		}
	}
	return nil
}

// readChunkLine reads a line of the chunked framing, which must end in
// CRLF, and returns it without the CRLF.
func readChunkLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > maxChunkLine {
		return nil, protoErr("chunk-size line too long")
	}
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, protoErr("chunk-size line without CRLF")
	}
	return line[:len(line)-2], nil
}

// readCRLF reads the CRLF that ends a chunk's data.
func readCRLF(br *bufio.Reader) error {
	b, err := br.Peek(2)
	if err != nil {
		return unexpectedEOF(err)
	}
	if b[0] != '\r' || b[1] != '\n' {
		return protoErr("chunk data not followed by CRLF")
	}
	br.Discard(2)
	return nil
}

// copyBufSize is the size of the pooled buffers streamed request bodies are
// written from.
const copyBufSize = 32 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// chunkHeadRoom is the space kept before the data in a chunk's buffer for
// its size line ("%x\r\n").
const chunkHeadRoom = 18

// bodyReadError is a failure to read the request body from the client.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "h1: reading request body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// startWriter starts the goroutine that streams the request body while the
// response head is awaited. The goroutine may outlive the exchange (when
// the backend answers early): it keeps nothing of req but the body, the
// trailer pointer and the closer.
func (c *conn) startWriter(req *Request, f framing) {
	if c.wdone == nil {
		c.wdone = make(chan error, 1)
	}
	c.headWait = true
	c.bodyDone = false
	c.bodySent.Store(false)
	c.writing = true
	go c.writeBody(outBody{body: req.Body, trailer: req.Trailer, closer: req.closer}, f)
}

// outBody is what the body writer needs of a request.
type outBody struct {
	body    io.Reader
	trailer *http.Header
	closer  io.Closer
}

// writeBody streams the request body. When it is written, the response head
// deadline starts, as net/http's ResponseHeaderTimeout does. A failure to
// read the client's body closes the connection (the request cannot be
// completed); a failure to write is left for the reader to see, since the
// backend may have answered before it stopped reading.
func (c *conn) writeBody(ob outBody, f framing) {
	err := copyBody(c, ob, f)
	if ob.closer != nil {
		ob.closer.Close()
	}
	if err == nil {
		c.bodySent.Store(true)
	}
	var rerr *bodyReadError
	if errors.As(err, &rerr) {
		c.close()
	}
	c.hmu.Lock()
	c.bodyDone = true
	if c.headWait {
		if rht := c.t.opt.ResponseHeaderTimeout; rht > 0 {
			c.nc.SetReadDeadline(time.Now().Add(rht))
		}
	}
	c.hmu.Unlock()
	c.wdone <- err
}

// copyBody writes the body, each read from the client in one write: as a
// chunk when chunked, then the last chunk and the trailer fields.
func copyBody(c *conn, ob outBody, f framing) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	left := f.length
	if !f.chunked && left <= 0 {
		return nil
	}
	for {
		var data []byte
		if f.chunked {
			data = buf[chunkHeadRoom : len(buf)-2]
		} else {
			data = buf[:min(int64(len(buf)), left)]
		}
		n, rerr := ob.body.Read(data)
		if rerr != nil && rerr != io.EOF {
			return &bodyReadError{rerr}
		}
		var out []byte
		if f.chunked {
			if n > 0 {
				start := chunkHeadRoom - hexLen(n) - 2
				out = appendHex(buf[start:start], n)
				out = append(out, '\r', '\n')
				out = out[:len(out)+n]
				out = append(out, '\r', '\n')
			}
			if rerr == io.EOF {
				var t http.Header
				if ob.trailer != nil {
					t = *ob.trailer
				}
				if out == nil {
					out = buf[:0]
				}
				out = appendTrailer(out, t)
			}
		} else {
			out = data[:n]
			left -= int64(n)
			if rerr == io.EOF && left > 0 {
				return &bodyReadError{io.ErrUnexpectedEOF}
			}
		}
		if len(out) > 0 {
			if _, err := c.sock.Write(out); err != nil {
				return fmt.Errorf("h1: writing request body: %w", err)
			}
		}
		if rerr == io.EOF || !f.chunked && left == 0 {
			return nil
		}
	}
}

func hexLen(n int) int {
	l := 1
	for n >>= 4; n > 0; n >>= 4 {
		l++
	}
	return l
}

func appendHex(b []byte, n int) []byte {
	const digits = "0123456789abcdef"
	for i := hexLen(n) - 1; i >= 0; i-- {
		b = append(b, digits[(n>>(4*i))&0xf])
	}
	return b
}
