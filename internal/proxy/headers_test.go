package proxy

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"testing"
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

// TestForwardingHeaders checks the forwarding fields of the request to the
// backend, as outgoingHeader builds it from the client's header.
func TestForwardingHeaders(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	snap := &Snapshot{fwd: newForwarding(trusted, "")}
	outgoing := func(in *http.Request, client string) http.Header {
		h := http.Header{}
		outgoingHeader(in, snap, connInfoFor(netip.MustParseAddr(client)), h)
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
