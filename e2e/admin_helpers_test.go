package e2e

// Helpers of the admin_*_test.go files: a balancer with its admin listener
// on a free port, and JSON calls to the admin API.

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// adminBalancer is a running load_balancer with its admin listener.
type adminBalancer struct {
	*balancer
	Admin string // host:port of the admin listener
}

// AdminURL returns the admin listener's URL for path.
func (b *adminBalancer) AdminURL(path string) string { return "http://" + b.Admin + path }

var adminListening = regexp.MustCompile(`msg="admin listening" addr=(\S+)`)

// startAdminBalancer starts a balancer on configYAML whose admin listener
// binds a free loopback port (--admin-addr 127.0.0.1:0, as parallel tests
// need), and returns once both listeners accept connections.
func startAdminBalancer(t testing.TB, configYAML string, extra ...string) *adminBalancer {
	t.Helper()
	b := startBalancer(t, configYAML, append([]string{"--admin-addr", "127.0.0.1:0"}, extra...)...)
	line, _ := b.WaitForLine(0, 10*time.Second, `msg="admin listening"`)
	m := adminListening.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no admin address in the log line %q", line)
	}
	waitForPort(t, m[1], 5*time.Second)
	return &adminBalancer{balancer: b, Admin: m[1]}
}

// adminCall sends method to url with an optional bearer token and returns
// the status and body.
func adminCall(t testing.TB, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return res.StatusCode, string(body)
}

// adminJSON sends method to url and decodes the JSON answer into v; the
// status must be want.
func adminJSON(t testing.TB, method, url, token string, want int, v any) {
	t.Helper()
	status, body := adminCall(t, method, url, token)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d; body:\n%s", method, url, status, want, body)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("%s %s: %v; body:\n%s", method, url, err, body)
		}
	}
}

// apiBackend is the part of a backend in GET /api/v1/backends the tests
// read.
type apiBackend struct {
	ID            string            `json:"id"`
	Address       string            `json:"address"`
	Weight        int               `json:"weight"`
	State         string            `json:"state"`
	Healthy       bool              `json:"healthy"`
	Reason        string            `json:"reason"`
	Draining      bool              `json:"draining"`
	DrainSources  []string          `json:"drain_sources"`
	RequestsTotal uint64            `json:"requests_total"`
	Responses     map[string]uint64 `json:"responses"`
}

// apiBackends returns the backends the admin API shows, by address.
func apiBackends(t testing.TB, b *adminBalancer) map[string]apiBackend {
	t.Helper()
	var out struct {
		Backends []apiBackend `json:"backends"`
	}
	adminJSON(t, "GET", b.AdminURL("/api/v1/backends"), "", http.StatusOK, &out)
	m := make(map[string]apiBackend, len(out.Backends))
	for _, be := range out.Backends {
		m[strings.TrimPrefix(be.Address, "http://")] = be
	}
	return m
}
