package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"testing"

	"github.com/lbproject/load_balancer/internal/h1server"
)

func TestRemoveHopByHopHeaders(t *testing.T) {
	h := http.Header{
		"Connection":        {"close, X-Secret", "x-other"},
		"X-Secret":          {"1"},
		"X-Other":           {"2"},
		"Keep-Alive":        {"timeout=5"},
		"Proxy-Connection":  {"keep-alive"},
		"Te":                {"gzip"},
		"Trailer":           {"X-T"},
		"Transfer-Encoding": {"chunked"},
		"Upgrade":           {"websocket"},
		"X-Kept":            {"yes"},
	}
	removeHopByHopHeaders(h)
	want := http.Header{"X-Kept": {"yes"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("after removal: %v, want %v", h, want)
	}
}

func TestUpgradeType(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want string
	}{
		{http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}, "websocket"},
		{http.Header{"Upgrade": {"websocket"}}, ""}, // Upgrade without Connection: upgrade is hop-by-hop noise
		{http.Header{"Connection": {"upgrade"}}, ""},
	} {
		if got := upgradeType(tc.h); got != tc.want {
			t.Errorf("upgradeType(%v) = %q, want %q", tc.h, got, tc.want)
		}
	}
}

// TestForwardingHeaders checks the forwarding fields and the hop-by-hop
// fields of the request to the backend, as outgoingHeader builds it from
// the client's header: in a map of its own (the client's header left as
// it was), and in the client's header itself (as under h1server).
func TestForwardingHeaders(t *testing.T) {
	for _, inPlace := range []bool{false, true} {
		t.Run(map[bool]string{false: "copy", true: "in place"}[inPlace], func(t *testing.T) {
			checkForwardingHeaders(t, inPlace)
		})
	}
}

func checkForwardingHeaders(t *testing.T, inPlace bool) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	snap := &Snapshot{fwd: newForwarding(trusted, "")}
	outgoing := func(in *http.Request, client string) http.Header {
		t.Helper()
		before := in.Header.Clone()
		var into http.Header
		if !inPlace {
			into = http.Header{}
		}
		h, _ := outgoingHeader(in, snap, connInfoFor(netip.MustParseAddr(client)), into)
		if !inPlace && !reflect.DeepEqual(in.Header, before) {
			t.Fatalf("the client's header changed: %v, was %v", in.Header, before)
		}
		if inPlace && reflect.ValueOf(h).Pointer() != reflect.ValueOf(in.Header).Pointer() {
			t.Fatal("built in place, but not in the client's header")
		}
		return h
	}
	in := func(h http.Header) *http.Request {
		return &http.Request{Host: "shop.example", ProtoMajor: 1, ProtoMinor: 1, Header: h}
	}

	t.Run("untrusted client: forged headers replaced", func(t *testing.T) {
		h := outgoing(in(http.Header{"X-Forwarded-For": {"6.6.6.6"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil"}, "Forwarded": {"for=6.6.6.6"}}), "192.0.2.7")
		want := http.Header{
			"X-Forwarded-For":   {"192.0.2.7"},
			"X-Forwarded-Proto": {"http"},
			"X-Forwarded-Host":  {"shop.example"},
			"Via":               {"1.1 load_balancer"},
		}
		if !reflect.DeepEqual(h, want) {
			t.Fatalf("got %v, want %v", h, want)
		}
	})
	t.Run("trusted proxy: chain kept and appended", func(t *testing.T) {
		h := outgoing(in(http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}, "Via": {"1.1 edge"}}), "10.1.2.3")
		if got := h.Get("X-Forwarded-For"); got != "198.51.100.1, 10.1.2.3" {
			t.Errorf("X-Forwarded-For = %q", got)
		}
		if got := h.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("X-Forwarded-Proto = %q, want the trusted proxy's https", got)
		}
		if got := h.Get("Via"); got != "1.1 edge, 1.1 load_balancer" {
			t.Errorf("Via = %q", got)
		}
	})
	t.Run("untrusted client: its Via kept and appended", func(t *testing.T) {
		h := outgoing(in(http.Header{"Via": {"1.0 corp"}, "Accept": {"*/*"}}), "192.0.2.7")
		if got := h.Get("Via"); got != "1.0 corp, 1.1 load_balancer" {
			t.Errorf("Via = %q", got)
		}
		if got := h.Get("Accept"); got != "*/*" {
			t.Errorf("Accept = %q, want the client's", got)
		}
	})
	t.Run("TLS client and HTTP/2", func(t *testing.T) {
		h := outgoing(&http.Request{Host: "a", ProtoMajor: 2, TLS: &tls.ConnectionState{}, Header: http.Header{}}, "::ffff:127.0.0.1")
		if h.Get("X-Forwarded-Proto") != "https" || h.Get("Via") != "2.0 load_balancer" || h.Get("X-Forwarded-For") != "127.0.0.1" {
			t.Errorf("got %v", h)
		}
	})
	t.Run("hop-by-hop fields and those Connection names left out", func(t *testing.T) {
		h := outgoing(in(http.Header{
			"Connection": {"keep-alive, X-Secret"}, "X-Secret": {"1"}, "Keep-Alive": {"timeout=5"},
			"Proxy-Connection": {"keep-alive"}, "Te": {"trailers, deflate"}, "Accept": {"*/*"},
		}), "192.0.2.7")
		want := http.Header{
			"Accept":            {"*/*"},
			"Te":                {"trailers"},
			"X-Forwarded-For":   {"192.0.2.7"},
			"X-Forwarded-Proto": {"http"},
			"X-Forwarded-Host":  {"shop.example"},
			"Via":               {"1.1 load_balancer"},
		}
		if !reflect.DeepEqual(h, want) {
			t.Fatalf("got %v, want %v", h, want)
		}
	})
}

// TestConnContextReachesRequests: the connection's info, attached by
// ConnContext, is found by HTTP/1.1 requests and by HTTP/2 (h2c) streams.
func TestConnContextReachesRequests(t *testing.T) {
	found := make(chan bool, 2)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok := r.Context().Value(connInfoKey{}).(*connInfo)
		found <- ok
	}))
	srv.Config.ConnContext = ConnContext
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		if h2 {
			tr.Protocols.SetUnencryptedHTTP2(true)
		} else {
			tr.Protocols.SetHTTP1(true)
		}
		res, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if !<-found || res.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
			t.Errorf("HTTP/%d: connection info not found in the request context", res.ProtoMajor)
		}
		tr.CloseIdleConnections()
	}
}

// TestRequestHeaderBuiltInPlace: under h1server, a request with enough
// fields has the request to the backend built in its own header. The
// backend gets the client's end-to-end fields, no hop-by-hop ones, and the
// forwarding fields; the next request on the connection, with other
// fields, gets none of the first's.
func TestRequestHeaderBuiltInPlace(t *testing.T) {
	got := make(chan http.Header, 2)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer backend.Close()
	// A backend that refuses connections comes first in turn: one of the
	// requests is sent again, to the other, with the header built once.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	h, _ := newTestHandler(t, deadURL, backend.URL)
	s := &h1server.Server{Handler: h, ConnContext: ConnContext, HandlerOwnsRequestHeader: true}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	send := func(head string) http.Header {
		t.Helper()
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return <-got
	}
	first := send("GET /a HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: ua\r\nAccept: */*\r\n" +
		"Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nTe: trailers\r\n" +
		"X-Forwarded-For: 6.6.6.6\r\nCookie: c=1\r\n\r\n")
	for k, want := range map[string]string{
		"User-Agent": "ua", "Accept": "*/*", "Cookie": "c=1", "Te": "trailers",
		"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "shop.example", "X-Forwarded-Proto": "http",
		"X-Secret": "", "Keep-Alive": "",
	} {
		if v := first.Get(k); v != want {
			t.Errorf("first request: backend got %s %q, want %q", k, v, want)
		}
	}
	second := send("GET /b HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: ua2\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n")
	for k, want := range map[string]string{"User-Agent": "ua2", "E": "5", "Cookie": "", "Te": "", "X-Forwarded-For": "127.0.0.1"} {
		if v := second.Get(k); v != want {
			t.Errorf("second request: backend got %s %q, want %q", k, v, want)
		}
	}
	for i, got := range []http.Header{first, second} {
		if xff, via := got["X-Forwarded-For"], got["Via"]; len(xff) != 1 || xff[0] != "127.0.0.1" || len(via) != 1 || via[0] != "1.1 load_balancer" {
			t.Errorf("request %d (one of them sent again): X-Forwarded-For %q, Via %q; want each once", i+1, xff, via)
		}
	}
}

// TestH1ServerOwnsRequestHeader: under the balancer's own HTTP/1 server the
// handler is told the request's header is its own, so that the request to
// the backend is built in it (and under net/http's server it is not).
func TestH1ServerOwnsRequestHeader(t *testing.T) {
	owns := make(chan bool, 1)
	owner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, ok := w.(requestHeaderOwner)
		owns <- ok && o.OwnsRequestHeader()
	})
	for _, told := range []bool{true, false} {
		s := &h1server.Server{Handler: owner, HandlerOwnsRequestHeader: told}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve(ln)
		res, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := <-owns; got != told {
			t.Errorf("h1server told %v: its ResponseWriter says the request's header is the handler's: %v", told, got)
		}
		http.DefaultClient.CloseIdleConnections()
		s.Close()
	}

	srv := httptest.NewServer(owner)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if <-owns {
		t.Error("net/http's ResponseWriter taken for one that gives the request's header away")
	}
	http.DefaultClient.CloseIdleConnections()
}
