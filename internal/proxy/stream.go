package proxy

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// copyBufferSize is the size of the pooled buffers bodies are copied with:
// big enough for one read to take a typical TCP burst, small enough that
// thousands of concurrent streams stay cheap.
const copyBufferSize = 32 << 10

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// errClientWrite marks a failure to write to the client (it went away), as
// opposed to a failure to read from the backend.
var errClientWrite = errors.New("write to client failed")

// streamBody copies the backend's response body to the client with a pooled
// buffer. With flush set it flushes after every read, so that streams (SSE,
// chunked responses of unknown length) reach the client as they arrive;
// the bytes of the read that ends the body are left to the server, which
// sends them with the end of the response in one write. It returns the
// bytes written and, on failure, an error wrapping either the backend's
// read error or errClientWrite.
func streamBody(w http.ResponseWriter, body io.Reader, flush bool) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	var written int64
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, errors.Join(errClientWrite, werr)
			}
			// A read that ended the body needs no flush: the end of the
			// response flushes it together with the last chunk.
			if flush && rerr == nil {
				if ferr := rc.Flush(); ferr != nil {
					return written, errors.Join(errClientWrite, ferr)
				}
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// shouldFlushEachRead reports whether a response is a stream whose parts the
// client must see as soon as the backend sends them: server-sent events, and
// any body of unknown length (chunked or close-delimited), where the backend
// chose streaming over buffering. Bodies with a Content-Length are left to
// the server's write buffer.
func shouldFlushEachRead(res *http.Response) bool {
	if res.ContentLength == -1 {
		return true
	}
	ct := res.Header["Content-Type"] // canonical already: no Get, which canonicalises
	return len(ct) > 0 && len(ct[0]) >= 17 && ct[0][:17] == "text/event-stream"
}

// announceTrailers declares, before the header is written, the trailer
// fields the backend announced, so the server sends them after the body.
func announceTrailers(w http.ResponseWriter, res *http.Response) {
	if len(res.Trailer) == 0 {
		return
	}
	keys := make([]string, 0, len(res.Trailer))
	for k := range res.Trailer {
		keys = append(keys, k)
	}
	w.Header()["Trailer"] = keys
}

// copyTrailers sets the trailer fields the backend sent after its body.
// Fields it did not announce are sent with http.TrailerPrefix, which the
// server supports for exactly this case.
func copyTrailers(w http.ResponseWriter, res *http.Response, announced int) {
	if len(res.Trailer) == 0 {
		return
	}
	h := w.Header()
	for k, vv := range res.Trailer {
		if announced != len(res.Trailer) {
			k = http.TrailerPrefix + k
		}
		h[k] = vv
	}
}
