package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/config"
)

// runProbe compiles check for the backend at rawURL and probes it once.
func runProbe(t *testing.T, rawURL string, check config.HealthCheck, tlsConf *tls.Config) error {
	t.Helper()
	spec, problems := newProbeSpec(Target{Backend: backendAt(t, rawURL), Check: check, TLS: tlsConf})
	if len(problems) > 0 {
		t.Fatalf("problems compiling %+v: %v", check, problems)
	}
	return spec.run(context.Background())
}

func TestProbeTCP(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if err := runProbe(t, srv.URL, tcpCheck(time.Second, 2, 2), nil); err != nil {
		t.Errorf("listening port: %v", err)
	}
	err := runProbe(t, closedPortURL(t), tcpCheck(time.Second, 2, 2), nil)
	if err == nil || err.Error() != "tcp connect: connection refused" {
		t.Errorf("closed port: got %v, want tcp connect: connection refused", err)
	}
}

func TestProbeHTTP(t *testing.T) {
	var lastHost string
	var lastClose bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lastHost, lastClose = r.Host, r.Close
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("status: ready\n"))
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/down":
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/big":
			w.Write([]byte(strings.Repeat("x", 70<<10) + "ready"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	tests := []struct {
		name    string
		path    string
		expect  string
		body    string
		host    string
		wantErr string
	}{
		{name: "200", path: "/ok"},
		{name: "body match", path: "/ok", body: "ready"},
		{name: "wrong body", path: "/ok", body: "healthy", wantErr: `http body does not contain "healthy"`},
		{name: "503", path: "/down", wantErr: "http status 503 not in 200-399"},
		{name: "404", path: "/missing", wantErr: "http status 404 not in 200-399"},
		{name: "redirect is not followed and 302 is in range", path: "/redirect"},
		{name: "exact status", path: "/nocontent", expect: "200", wantErr: "http status 204 not in 200"},
		{name: "exact status matches", path: "/nocontent", expect: "204"},
		{name: "body beyond 64 KiB is not searched", path: "/big", body: "ready", wantErr: `http body does not contain "ready"`},
		{name: "custom host", path: "/ok", host: "health.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := httpCheck(time.Second, 2, 2)
			h.Path, h.ExpectBody, h.Host = tt.path, tt.body, tt.host
			if tt.expect != "" {
				h.ExpectStatus = tt.expect
			}
			err := runProbe(t, srv.URL, h, nil)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want success", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("got %v, want %s", err, tt.wantErr)
			}
			wantHost := strings.TrimPrefix(srv.URL, "http://")
			if tt.host != "" {
				wantHost = tt.host
			}
			if lastHost != wantHost {
				t.Errorf("Host header %q, want %q", lastHost, wantHost)
			}
			if !lastClose {
				t.Error("probe did not ask to close the connection")
			}
		})
	}
}

func TestProbeTLS(t *testing.T) {
	sawTLS := make(chan bool, 10)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawTLS <- r.TLS != nil
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	trusted := &tls.Config{RootCAs: pool}

	if err := runProbe(t, srv.URL, tcpCheck(time.Second, 2, 2), trusted); err != nil {
		t.Errorf("tcp+tls probe: %v", err)
	}
	h := httpCheck(time.Second, 2, 2)
	h.ExpectBody = "ok"
	if err := runProbe(t, srv.URL, h, trusted); err != nil {
		t.Errorf("https probe: %v", err)
	}
	if !<-sawTLS {
		t.Error("https probe did not use TLS")
	}
	// Without the test CA the handshake fails: certificates are verified.
	for _, check := range []config.HealthCheck{tcpCheck(time.Second, 2, 2), h} {
		err := runProbe(t, srv.URL, check, nil)
		if err == nil || !strings.HasPrefix(err.Error(), "tls handshake: ") || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s probe with untrusted certificate: got %v, want a tls handshake certificate error", check.Type, err)
		}
	}
}

func TestProbeTimeout(t *testing.T) {
	hang := hangingServer(t)
	h := httpCheck(time.Second, 2, 2)
	h.Timeout = config.Duration(100 * time.Millisecond)
	start := time.Now()
	err := runProbe(t, hang, h, nil)
	if err == nil || err.Error() != "http: timeout after 100ms" {
		t.Errorf("got %v, want http: timeout after 100ms", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("probe took %v with a 100ms timeout", d)
	}
	// An https backend that never answers the handshake.
	tcp := tcpCheck(time.Second, 2, 2)
	tcp.Timeout = config.Duration(100 * time.Millisecond)
	err = runProbe(t, strings.Replace(hang, "http://", "https://", 1), tcp, nil)
	if err == nil || err.Error() != "tls handshake: timeout after 100ms" {
		t.Errorf("got %v, want tls handshake: timeout after 100ms", err)
	}
}

func TestProbeClosedWithoutAnswer(t *testing.T) {
	err := runProbe(t, closingServer(t), httpCheck(time.Second, 2, 2), nil)
	if err == nil || err.Error() != "http: connection closed before response" {
		t.Errorf("got %v, want http: connection closed before response", err)
	}
}

func TestProbeCanceled(t *testing.T) {
	hang := hangingServer(t)
	h := httpCheck(time.Second, 2, 2)
	h.Timeout = config.Duration(time.Minute)
	spec, _ := newProbeSpec(Target{Backend: backendAt(t, hang), Check: h})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if err := spec.run(ctx); err == nil {
		t.Error("canceled probe succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("canceled probe returned after %v", d)
	}
}

func TestNewProbeSpecFallbacks(t *testing.T) {
	b := backendAt(t, "http://127.0.0.1:1")
	spec, problems := newProbeSpec(Target{Backend: b, Check: config.HealthCheck{Path: "/h", ExpectStatus: "abc"}})
	if spec.kind != "http" || spec.interval != config.DefaultHealthInterval || spec.timeout != config.DefaultHealthTimeout ||
		spec.fall != config.DefaultFall || spec.rise != config.DefaultRise || spec.jitter != 0.1 ||
		spec.expectRaw != config.DefaultExpectStatus {
		t.Errorf("defaults not applied: %+v", spec)
	}
	if len(problems) != 1 {
		t.Errorf("problems %q, want one about expect_status", problems)
	}
	if spec, _ := newProbeSpec(Target{Backend: b}); spec.kind != "tcp" {
		t.Errorf("kind %q, want tcp", spec.kind)
	}
}

func TestDelays(t *testing.T) {
	s := &probeSpec{interval: 100 * time.Millisecond, jitter: 0.2}
	for range 1000 {
		if d := s.firstDelay(); d < 0 || d >= s.interval {
			t.Fatalf("first delay %v outside [0, %v)", d, s.interval)
		}
		if d := s.nextDelay(); d < s.interval || d > 120*time.Millisecond {
			t.Fatalf("delay %v outside [100ms, 120ms]", d)
		}
	}
	s.jitter = 0
	if d := s.nextDelay(); d != s.interval {
		t.Errorf("delay without jitter %v, want %v", d, s.interval)
	}
}
