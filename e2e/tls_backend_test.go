package e2e

import (
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestTLSBackends: a backend written "https://host" is spoken to over TLS
// with its certificate verified: against tls.ca_file it works; without a CA
// that trusts it, or with the wrong server_name, the balancer refuses to
// talk to it (502, nothing sent in the clear); insecure_skip_verify turns
// verification off on purpose.
func TestTLSBackends(t *testing.T) {
	t.Parallel()
	var overTLS, inClear atomic.Int64
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			overTLS.Add(1)
		} else {
			inClear.Add(1)
		}
		io.WriteString(w, "secure hello")
	}))
	t.Cleanup(backend.Close)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(backend.URL, "https://"))

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: backend.Certificate().Raw})
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	config := func(tlsKeys string) string {
		return "health_check:\n  enabled: false\npassive_health:\n  enabled: false\nretries:\n  attempts: 1\n" +
			"backends:\n  - host: \"https://" + host + "\"\n    port: " + port + "\n" + tlsKeys
	}
	cases := []struct {
		name    string
		tlsKeys string
		want    int
	}{
		{"verified with ca_file", "    tls:\n      ca_file: " + caFile + "\n", 200},
		{"ca_file and the certificate's other name", "    tls:\n      ca_file: " + caFile + "\n      server_name: example.com\n", 200},
		{"system roots do not trust a private certificate", "", 502},
		{"wrong server_name", "    tls:\n      ca_file: " + caFile + "\n      server_name: wrong.test\n", 502},
		{"insecure_skip_verify", "    tls:\n      insecure_skip_verify: true\n", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lb := startBalancer(t, config(tc.tlsKeys))
			res, err := client(t).Get(lb.URL("/"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("status %d (%q), want %d", res.StatusCode, body, tc.want)
			}
			if tc.want == 200 && string(body) != "secure hello" {
				t.Fatalf("body %q", body)
			}
			if tc.want == 502 && strings.Contains(string(body), "x509") {
				t.Fatalf("error reply leaks the TLS error: %q", body)
			}
		})
	}
	if inClear.Load() != 0 {
		t.Fatalf("%d requests reached the https backend in the clear", inClear.Load())
	}
	if overTLS.Load() != 3 {
		t.Fatalf("%d requests over TLS, want 3 (one per case that verifies)", overTLS.Load())
	}
}
