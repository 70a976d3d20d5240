package e2e

// HTTP/2 cleartext with prior knowledge on the proxy port.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestProtocolH2CPriorKnowledge talks HTTP/2 without TLS to the balancer
// (Go's own client, Protocols set to unencrypted HTTP/2 only) and checks
// that responses come back over HTTP/2 with byte-exact bodies both ways,
// while the backend is spoken to in HTTP/1.1.
func TestProtocolH2CPriorKnowledge(t *testing.T) {
	t.Parallel()
	payload := randomBytes(t, mib)
	be := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, rec recordedRequest) {
		if r.Method == http.MethodPost {
			fmt.Fprintf(w, "%d %s", len(rec.Body), sum(rec.Body))
			return
		}
		w.Header().Set("X-Backend-Proto", r.Proto)
		w.Write(payload)
	})
	lb := startProtoBalancer(t, "", be.Addr)

	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}

	req, _ := http.NewRequestWithContext(ctxFor(t, 20*time.Second), http.MethodGet, lb.URL("/h2"), nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := hashReader(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("response over %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != 200 || n != mib || got != sum(payload) {
		t.Fatalf("status %d, %d bytes sha256 %s; want 200, %d bytes %s", resp.StatusCode, n, got, mib, sum(payload))
	}
	if p := resp.Header.Get("X-Backend-Proto"); p != "HTTP/1.1" {
		t.Errorf("backend spoke %q, want HTTP/1.1", p)
	}
	if via := resp.Header.Get("Via"); !strings.Contains(via, "load_balancer") {
		t.Errorf("response Via %q", via)
	}

	req, _ = http.NewRequestWithContext(ctxFor(t, 20*time.Second), http.MethodPost, lb.URL("/h2-upload"), bytes.NewReader(payload))
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %s", mib, sum(payload)); resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("%s %d, backend says %q, want HTTP/2 200 %q", resp.Proto, resp.StatusCode, body, want)
	}
	rs := be.Requests()
	if len(rs) != 2 {
		t.Fatalf("backend saw %d requests, want 2", len(rs))
	}
	if via := rs[1].Header.Get("Via"); !strings.Contains(via, "load_balancer") {
		t.Errorf("request Via %q", via)
	}
}
