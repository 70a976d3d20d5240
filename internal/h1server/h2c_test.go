package h1server

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
)

// h2cServer is an HTTP/2 server for the connections h1server hands over,
// set up as the balancer does: prior-knowledge h2c.
func h2cServer(h http.Handler) *http.Server {
	s := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	s.Protocols.SetHTTP1(true)
	s.Protocols.SetUnencryptedHTTP2(true)
	return s
}

func protoHandler(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	io.WriteString(w, r.Proto+" "+r.Method+" "+r.URL.Path+" "+string(b))
}

// TestH2C: a connection that opens with the HTTP/2 preface is served by
// the HTTP2 server, several requests on one connection (x/net/http2's
// client over plain TCP); HTTP/1 requests beside it still go to h1server.
func TestH2C(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(protoHandler), HTTP2: h2cServer(http.HandlerFunc(protoHandler))}
	addr := serve(t, s)
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: ioTimeout}
	for _, path := range []string{"/a", "/b"} {
		res, err := c.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.ProtoMajor != 2 || string(b) != "HTTP/2.0 GET "+path+" " {
			t.Fatalf("got %s %q, %v; want an HTTP/2 response from the HTTP/2 server", res.Proto, b, err)
		}
	}
	h1 := newRaw(t, addr)
	h1.send("POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx")
	if res := h1.read("POST"); res.body != "HTTP/1.1 POST /c x" {
		t.Fatalf("HTTP/1 request got %s", res)
	}
	// Shutdown also shuts the HTTP/2 server down and reports success. (The
	// client lets its connection go first: net/http's HTTP/2 server would
	// otherwise wait up to a second for it after its GOAWAY.)
	tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	h1.expectClosed()
	if _, err := c.Get("http://" + addr + "/after"); err == nil {
		t.Fatalf("request after Shutdown served")
	}
}

// TestH2CPrefaceRaw: the HTTP/2 server answers the preface with its SETTINGS
// frame, also when the preface arrives in pieces.
func TestH2CPrefaceRaw(t *testing.T) {
	s := &Server{Handler: http.NotFoundHandler(), HTTP2: h2cServer(http.NotFoundHandler())}
	addr := serve(t, s)
	for _, split := range []int{0, 1, 14, len(http2.ClientPreface) - 1} {
		c := newRaw(t, addr)
		c.send(http2.ClientPreface[:split])
		c.send(http2.ClientPreface[split:])
		fr := http2.NewFramer(io.Discard, c.br)
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("split %d: %v", split, err)
		}
		if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
			t.Fatalf("split %d: first frame %v, want SETTINGS", split, f)
		}
	}
}

// TestH2CWithoutHTTP2: without an HTTP2 server the preface gets 505 and the
// end of the connection.
func TestH2CWithoutHTTP2(t *testing.T) {
	addr := serve(t, &Server{Handler: http.NotFoundHandler()})
	c := newRaw(t, addr)
	c.send(http2.ClientPreface)
	if res := c.read("PRI"); res.status != http.StatusHTTPVersionNotSupported {
		t.Fatalf("got %s, want 505", res)
	}
	c.expectClosed()
}
