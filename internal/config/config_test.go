package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const two = `backends:
  - host: "127.0.0.1"
    port: 9001
`

// TestParseErrors checks that every rule is enforced and reported with
// file, line and key path.
func TestParseErrors(t *testing.T) {
	caDir := t.TempDir()
	notPEM := filepath.Join(caDir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		yaml string
		want []string // each must be one line of the error, "test.yaml:" prefixed
	}{
		// Syntax and structure.
		{"syntax", "backends:\n  - host: [\n", []string{"test.yaml:2: YAML syntax error: did not find expected node content"}},
		{"syntax unclosed quote", two + "strategy: \"random\n", []string{"test.yaml:4: YAML syntax error: found unexpected end of stream"}},
		{"root list", "- host: a\n", []string{"test.yaml:1: expected a mapping of keys (listen, backends, strategy,"}},
		{"second document", two + "---\nstrategy: random\n", []string{"test.yaml:4: a second YAML document"}},
		{"duplicate key", two + "strategy: random\nstrategy: sticky\n", []string{"test.yaml:5: strategy: key given twice (first on line 4)"}},

		// Unknown keys, with the valid ones listed.
		{"unknown top-level key", two + "strategies: random\n", []string{
			`test.yaml:4: strategies: unknown key (expected one of listen, backends, strategy, sticky, timeouts, limits, retries, trusted_proxies, via, log, health_check, passive_health, shutdown, admin, tracing); did you mean "strategy"?`}},
		{"unknown backend key", "backends:\n  - host: a\n    port: 1\n    prot: 2\n", []string{
			"test.yaml:4: backends[0].prot: unknown key (expected one of host, port, weight, tls, drain, health_check)"}},
		{"unknown nested key", two + "health_check:\n  intervall: 2s\n", []string{
			`test.yaml:5: health_check.intervall: unknown key (expected one of enabled, type, path, interval, timeout, jitter, expect_status, expect_body, host, fall, rise); did you mean "interval"?`}},
		{"unknown tls key", "backends:\n  - host: https://a\n    port: 1\n    tls:\n      verify: false\n", []string{
			"test.yaml:5: backends[0].tls.verify: unknown key (expected one of insecure_skip_verify, ca_file, server_name)"}},
		{"unknown override key", "backends:\n  - host: a\n    port: 1\n    health_check: {paht: /}\n", []string{
			`test.yaml:4: backends[0].health_check.paht: unknown key`}},

		// Wrong types.
		{"port quoted", "backends:\n  - host: a\n    port: \"9001\"\n", []string{`test.yaml:3: backends[0].port: expected an integer, got the string "9001"`}},
		{"port word", "backends:\n  - host: a\n    port: abc\n", []string{`test.yaml:3: backends[0].port: expected an integer, got the string "abc"`}},
		{"weight float", "backends:\n  - host: a\n    port: 1\n    weight: 1.5\n", []string{"test.yaml:4: backends[0].weight: expected an integer, got the number 1.5"}},
		{"drain word", "backends:\n  - host: a\n    port: 1\n    drain: maybe\n", []string{`test.yaml:4: backends[0].drain: expected true or false, got the string "maybe"`}},
		{"backends mapping", "backends:\n  host: a\n", []string{"test.yaml:2: backends: expected a list, got a mapping"}},
		{"backend scalar", "backends:\n  - a:1\n", []string{"test.yaml:2: backends[0]: expected a mapping with the keys host, port, weight, tls, drain, health_check, got the string \"a:1\""}},
		{"section scalar", two + "health_check: 5\n", []string{"test.yaml:4: health_check: expected a mapping with the keys enabled, type,"}},
		{"list scalar", two + "trusted_proxies: 10.0.0.1\n", []string{`test.yaml:4: trusted_proxies: expected a list, got the string "10.0.0.1"`}},
		{"string list", two + "strategy: [random]\n", []string{"test.yaml:4: strategy: expected a string, got a list"}},
		{"jitter word", two + "health_check:\n  jitter: high\n", []string{`test.yaml:5: health_check.jitter: expected a number, got the string "high"`}},

		// Backends.
		{"empty file", "", []string{"test.yaml: file is empty"}},
		{"comments only", "# hello\n\n", []string{"test.yaml: file is empty"}},
		{"backends null", "backends:\n", []string{"test.yaml:1: backends: at least one backend is required"}},
		{"backends empty", "backends: []\n", []string{"test.yaml:1: backends: at least one backend is required"}},
		{"backends missing", "strategy: random\n", []string{"test.yaml:1: backends: at least one backend is required"}},
		{"missing host", two + "  - port: 9002\n", []string{"test.yaml:4: backends[1].host: required key missing"}},
		{"empty host", two + "  - host: \"\"\n    port: 9002\n", []string{"test.yaml:4: backends[1].host: required key missing"}},
		{"missing port", two + "  - host: 127.0.0.1\n", []string{"test.yaml:4: backends[1].port: required key missing"}},
		{"port out of range", two + "  - host: 127.0.0.1\n    port: 70000\n", []string{"test.yaml:5: backends[1].port: 70000 is out of range (expected 1..65535)"}},
		{"port zero", two + "  - host: 127.0.0.1\n    port: 0\n", []string{"test.yaml:5: backends[1].port: 0 is out of range (expected 1..65535)"}},
		{"port negative", two + "  - host: 127.0.0.1\n    port: -1\n", []string{"test.yaml:5: backends[1].port: -1 is out of range (expected 1..65535)"}},
		{"weight negative", two + "    weight: -1\n", []string{"test.yaml:4: backends[0].weight: -1 is out of range (expected 0..1000000"}},
		{"weight too big", two + "    weight: 1000001\n", []string{"test.yaml:4: backends[0].weight: 1000001 is out of range (expected 0..1000000"}},
		{"duplicate", two + "  - host: 127.0.0.1\n    port: 9001\n", []string{
			"test.yaml:4: backends[1]: duplicate backend http://127.0.0.1:9001 (the same as backends[0] on line 2)"}},
		{"duplicate spelled differently", "backends:\n  - host: \"::1\"\n    port: 443\n  - host: HTTPS://[0:0::1]\n    port: 443\n", []string{
			"test.yaml:4: backends[1]: duplicate backend https://[::1]:443 (the same as backends[0] on line 2)"}},
		{"host with port", "backends:\n  - host: \"127.0.0.1:9001\"\n    port: 9001\n", []string{
			`test.yaml:2: backends[0].host: "127.0.0.1:9001" contains a port; write host: "127.0.0.1" and port: 9001`}},
		{"host with port and scheme", "backends:\n  - host: \"https://a.example:8443\"\n    port: 8443\n", []string{
			`test.yaml:2: backends[0].host: "https://a.example:8443" contains a port; write host: "https://a.example" and port: 8443`}},
		{"ipv6 host with port", "backends:\n  - host: \"[::1]:9001\"\n    port: 9001\n", []string{`test.yaml:2: backends[0].host: "[::1]:9001" contains a port; write host: "[::1]" and port: 9001`}},
		{"host with path", "backends:\n  - host: \"https://api.example.com/v1\"\n    port: 443\n", []string{
			`test.yaml:2: backends[0].host: "https://api.example.com/v1" contains a path ("/v1")`}},
		{"host scheme", "backends:\n  - host: \"ftp://a\"\n    port: 21\n", []string{`test.yaml:2: backends[0].host: "ftp://a" has the scheme "ftp"`}},
		{"host chars", "backends:\n  - host: \"a b\"\n    port: 1\n", []string{`test.yaml:2: backends[0].host: "a b": host name contains ' '`}},
		{"host spaces", "backends:\n  - host: \" a\"\n    port: 1\n", []string{`test.yaml:2: backends[0].host: " a" has spaces around it`}},
		{"tls on http", "backends:\n  - host: a\n    port: 80\n    tls:\n      insecure_skip_verify: true\n", []string{
			`test.yaml:4: backends[0].tls: TLS settings need an https backend (write the host as "https://a", or use port 443)`}},
		{"ca_file missing", "backends:\n  - host: https://a\n    port: 1\n    tls:\n      ca_file: testdata/nope.pem\n", []string{
			`test.yaml:5: backends[0].tls.ca_file: cannot read "testdata/nope.pem": no such file or directory`}},
		{"ca_file not PEM", "backends:\n  - host: a\n    port: 443\n    tls: {ca_file: \"" + notPEM + "\"}\n", []string{
			`test.yaml:4: backends[0].tls.ca_file: "` + notPEM + `" contains no PEM certificates`}},
		{"server_name", "backends:\n  - host: https://a\n    port: 1\n    tls: {server_name: \"a/b\"}\n", []string{`test.yaml:4: backends[0].tls.server_name: host name contains '/'`}},

		// Strategy, sticky, via, listen.
		{"strategy", two + "strategy: fastest\n", []string{
			`test.yaml:4: strategy: "fastest" is not a strategy (expected one of round-robin, weighted-round-robin, random, sticky)`}},
		{"cookie name", two + "sticky:\n  cookie_name: \"my cookie\"\n", []string{`test.yaml:5: sticky.cookie_name: "my cookie" is not a valid cookie name`}},
		{"via", two + "via: \"two words\"\n", []string{`test.yaml:4: via: "two words" is not a valid Via pseudonym`}},
		{"listen port", two + "listen:\n  port: 0\n", []string{"test.yaml:5: listen.port: 0 is out of range (expected 1..65535)"}},
		{"listen host", two + "listen:\n  host: \"0.0.0.0:9000\"\n", []string{`test.yaml:5: listen.host: "0.0.0.0:9000" contains a port; write the port in listen.port`}},

		// Durations.
		{"duration without unit", two + "timeouts:\n  dial: 5\n", []string{`test.yaml:5: timeouts.dial: 5 has no unit (write e.g. "5s" or "5ms")`}},
		{"duration string without unit", two + "timeouts:\n  dial: \"5\"\n", []string{`test.yaml:5: timeouts.dial: "5" has no unit`}},
		{"duration float without unit", two + "shutdown: {grace_period: 1.5}\n", []string{`test.yaml:4: shutdown.grace_period: 1.5 has no unit`}},
		{"duration negative", two + "timeouts:\n  client_idle: -1s\n", []string{`test.yaml:5: timeouts.client_idle: "-1s" is negative`}},
		{"duration garbage", two + "sticky:\n  max_age: soon\n", []string{`test.yaml:5: sticky.max_age: "soon" is not a duration (expected a number with a unit`}},
		{"duration list", two + "passive_health:\n  max_ejection: [1s]\n", []string{`test.yaml:5: passive_health.max_ejection: expected a duration such as "1.5s" or "200ms", got a list`}},

		// Health checks.
		{"fall zero", two + "health_check:\n  fall: 0\n", []string{"test.yaml:5: health_check.fall: 0 is out of range (expected 1 or more)"}},
		{"rise negative", two + "health_check:\n  rise: -1\n", []string{"test.yaml:5: health_check.rise: -1 is out of range (expected 1 or more)"}},
		{"timeout >= interval", two + "health_check:\n  interval: 1s\n  timeout: 1s\n", []string{
			"test.yaml:6: health_check.timeout: 1s must be shorter than interval 1s"}},
		{"interval < default timeout", two + "health_check:\n  interval: 500ms\n", []string{
			"test.yaml:5: health_check.interval: 500ms must be longer than timeout 1s (the default)"}},
		{"override timeout >= global interval", two + "    health_check:\n      timeout: 3s\n", []string{
			"test.yaml:5: backends[0].health_check.timeout: 3s must be shorter than interval 2s (from health_check or the default)"}},
		{"expect_status high", two + "health_check:\n  expect_status: 600\n", []string{
			`test.yaml:5: health_check.expect_status: "600" is not a status or range (expected "NNN" or "NNN-NNN" within 100..599`}},
		{"expect_status reversed", two + "health_check:\n  expect_status: 300-200\n", []string{`test.yaml:5: health_check.expect_status: "300-200" is not a status or range`}},
		{"expect_status word", two + "health_check:\n  expect_status: ok\n", []string{`test.yaml:5: health_check.expect_status: "ok" is not a status or range`}},
		{"expect_status long", two + "health_check:\n  expect_status: \"2000\"\n", []string{`test.yaml:5: health_check.expect_status: "2000" is not a status or range`}},
		{"type", two + "health_check:\n  type: udp\n", []string{`test.yaml:5: health_check.type: "udp" is not a health check type (expected tcp or http)`}},
		{"path with tcp", two + "health_check:\n  type: tcp\n  path: /health\n", []string{"test.yaml:6: health_check.path: a path is only used by http checks, but type is tcp"}},
		{"path without slash", two + "health_check:\n  path: health\n", []string{`test.yaml:5: health_check.path: "health" must start with "/"`}},
		{"expect_body with tcp", two + "health_check:\n  expect_body: OK\n", []string{"test.yaml:5: health_check.expect_body: only used by http checks, but this check is tcp"}},
		{"jitter high", two + "health_check:\n  jitter: 1.5\n", []string{"test.yaml:5: health_check.jitter: 1.5 is out of range (expected 0..1)"}},
		{"jitter negative", two + "    health_check: {jitter: -0.1}\n", []string{"test.yaml:4: backends[0].health_check.jitter: -0.1 is out of range (expected 0..1)"}},
		{"jitter nan", two + "health_check:\n  jitter: .nan\n", []string{"test.yaml:5: health_check.jitter: NaN is out of range (expected 0..1)"}},

		// Passive health.
		{"passive negative", two + "passive_health:\n  consecutive_failures: -1\n  consecutive_5xx: -2\n", []string{
			"test.yaml:5: passive_health.consecutive_failures: -1 is out of range (expected 1 or more)",
			"test.yaml:6: passive_health.consecutive_5xx: -2 is negative"}},
		{"passive base > max", two + "passive_health:\n  base_ejection: 10s\n  max_ejection: 5s\n", []string{
			"test.yaml:5: passive_health.base_ejection: 10s is longer than max_ejection 5s"}},
		{"passive max < default base", two + "passive_health:\n  max_ejection: 1s\n", []string{
			"test.yaml:5: passive_health.max_ejection: 1s is shorter than base_ejection 5s (the default)"}},

		// Retries, limits, log.
		{"attempts zero", two + "retries:\n  attempts: 0\n", []string{"test.yaml:5: retries.attempts: 0 is out of range (expected 1..8)"}},
		{"attempts nine", two + "retries:\n  attempts: 9\n", []string{"test.yaml:5: retries.attempts: 9 is out of range (expected 1..8)"}},
		{"limits", two + "limits:\n  max_header_bytes: 0\n  max_uri_bytes: -5\n  max_conns_per_backend: -1\n  lean_above_conns: -2\n", []string{
			"test.yaml:5: limits.max_header_bytes: 0 is out of range (expected 1 or more)",
			"test.yaml:6: limits.max_uri_bytes: -5 is out of range (expected 1 or more)",
			"test.yaml:7: limits.max_conns_per_backend: -1 is negative",
			"test.yaml:8: limits.lean_above_conns: -2 is out of range (expected -1, never, or 1 or more)"}},
		{"log", two + "log:\n  level: verbose\n  format: xml\n  max_size_mb: 0\n  max_backups: -1\n", []string{
			`test.yaml:5: log.level: "verbose" is not allowed (expected one of debug, info, warn, error)`,
			`test.yaml:6: log.format: "xml" is not allowed (expected one of text, json)`,
			"test.yaml:7: log.max_size_mb: 0 is out of range (expected 1 or more)",
			"test.yaml:8: log.max_backups: -1 is negative"}},

		// Trusted proxies, admin, tracing.
		{"trusted proxies", two + "trusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.0/33\n  - proxy.local\n", []string{
			`test.yaml:6: trusted_proxies[1]: "10.0.0.0/33" is not an IP address or CIDR`,
			`test.yaml:7: trusted_proxies[2]: "proxy.local" is not an IP address or CIDR`}},
		{"admin addr", two + "admin:\n  addr: admin\n", []string{`test.yaml:5: admin.addr: "admin" is not "off" or HOST:PORT (e.g. "127.0.0.1:9901")`}},
		{"admin port", two + "admin:\n  addr: 127.0.0.1:99999\n", []string{`test.yaml:5: admin.addr: "127.0.0.1:99999": port "99999" is out of range`}},
		{"admin token file", two + "admin:\n  token_file: testdata/nope\n", []string{`test.yaml:5: admin.token_file: cannot read "testdata/nope"`}},
		{"tracing", two + "tracing:\n  protocol: udp\n  sample_ratio: 1.5\n  endpoint: localhost:4318\n", []string{
			`test.yaml:5: tracing.protocol: "udp" is not allowed (expected one of grpc, http/protobuf)`,
			"test.yaml:6: tracing.sample_ratio: 1.5 is out of range (expected 0..1)",
			`test.yaml:7: tracing.endpoint: "localhost:4318" is not an http:// or https:// URL`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "test.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded, want errors %q\n%s", tt.want, tt.yaml)
			}
			if c != nil {
				t.Errorf("Parse returned a config with an error")
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					if strings.HasPrefix(l, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("error lacks a line starting with\n  %s\ngot:\n  %s", w, strings.Join(lines, "\n  "))
				}
			}
			if len(lines) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n  %s", len(lines), len(tt.want), strings.Join(lines, "\n  "))
			}
			for _, e := range Errors(err) {
				if e.File != "test.yaml" {
					t.Errorf("error %q has File %q", e, e.File)
				}
			}
		})
	}
}

// TestAllProblemsReported checks that one file with several problems gets
// all of them, one per line, in file order, as *Error values.
func TestAllProblemsReported(t *testing.T) {
	_, err := Load("testdata/many_errors.yaml")
	want := []string{
		`testdata/many_errors.yaml:1: strategy: "fastest" is not a strategy (expected one of round-robin, weighted-round-robin, random, sticky)`,
		`testdata/many_errors.yaml:6: backends[1].port: 70000 is out of range (expected 1..65535)`,
		`testdata/many_errors.yaml:7: backends[2].port: required key missing (e.g. port: 9001)`,
		`testdata/many_errors.yaml:8: backends[2].prot: unknown key (expected one of host, port, weight, tls, drain, health_check); did you mean "port"?`,
		`testdata/many_errors.yaml:9: backends[2].weight: -2 is out of range (expected 0..1000000; 0 means no new traffic)`,
		`testdata/many_errors.yaml:11: retries.attempts: 9 is out of range (expected 1..8)`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
	errs := Errors(err)
	if len(errs) != len(want) {
		t.Fatalf("Errors returned %d, want %d", len(errs), len(want))
	}
	if e := errs[1]; e.File != "testdata/many_errors.yaml" || e.Line != 6 || e.Field != "backends[1].port" || e.Msg != "70000 is out of range (expected 1..65535)" {
		t.Errorf("errs[1] = %#v", e)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 1 {
		t.Errorf("errors.As: %#v", ce)
	}
}

func TestLoadFileErrors(t *testing.T) {
	_, err := Load("testdata/syntax.yaml")
	if err == nil || err.Error() != "testdata/syntax.yaml:4: YAML syntax error: found a tab character that violates indentation (indent with spaces, not tabs)" {
		t.Errorf("syntax error: %v", err)
	}
	for _, f := range []string{"testdata/empty.yaml", "testdata/comments_only.yaml"} {
		_, err = Load(f)
		if err == nil || err.Error() != f+": file is empty (expected at least a backends list of entries with host and port)" {
			t.Errorf("%s: %v", f, err)
		}
	}
	_, err = Load("testdata/backends_only.yaml")
	if err == nil || !strings.HasPrefix(err.Error(), "testdata/backends_only.yaml:1: backends: at least one backend is required") {
		t.Errorf("backends only: %v", err)
	}
	_, err = Load("testdata/missing.yaml")
	if err == nil || err.Error() != "testdata/missing.yaml: cannot read config: no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		e    Error
		want string
	}{
		{Error{"a.yaml", 7, "backends[1].port", "bad"}, "a.yaml:7: backends[1].port: bad"},
		{Error{"a.yaml", 0, "backends", "bad"}, "a.yaml: backends: bad"},
		{Error{"a.yaml", 3, "", "bad"}, "a.yaml:3: bad"},
		{Error{"", 3, "x", "bad"}, "line 3: x: bad"},
		{Error{"", 0, "x", "bad"}, "x: bad"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%#v: got %q, want %q", tt.e, got, tt.want)
		}
	}
}

// TestSeed checks that the seed's example files stay valid.
func TestSeed(t *testing.T) {
	c, err := Load("testdata/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "testdata/seed.yaml" {
		t.Errorf("Source = %q", c.Source)
	}
	want := []struct {
		host   string
		port   int
		weight int
		line   int
	}{{"127.0.0.1", 9001, 2, 3}, {"127.0.0.1", 9002, 1, 7}, {"127.0.0.1", 9003, 1, 11}}
	if len(c.Backends) != len(want) {
		t.Fatalf("%d backends", len(c.Backends))
	}
	for i, w := range want {
		b := c.Backends[i]
		if b.Host != w.host || b.Port != w.port || b.EffectiveWeight() != w.weight || b.Line != w.line || b.Scheme() != "http" {
			t.Errorf("backends[%d] = %+v (weight %d, scheme %s), want %+v", i, b, b.EffectiveWeight(), b.Scheme(), w)
		}
	}
	if c.Backends[1].Weight != nil {
		t.Errorf("weight left out should stay nil")
	}
	if c.Strategy != "random" {
		t.Errorf("strategy = %q", c.Strategy)
	}

	c, err = Load("testdata/seed_https.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"https://secure-api.example.com:443", "https://api.example.com:8443"} {
		if got := c.Backends[i].String(); got != want {
			t.Errorf("backends[%d] = %s, want %s", i, got, want)
		}
	}
}

func TestValidExamples(t *testing.T) {
	for _, tt := range []struct{ name, yaml string }{
		{"ipv6", "backends:\n  - {host: \"::1\", port: 9001}\n  - {host: \"[::1]\", port: 9002}\n  - {host: \"https://[fe80::1]\", port: 9003}\n"},
		{"weight zero", "backends:\n  - {host: a, port: 1, weight: 0}\n"},
		{"yaml 1.1 booleans", "backends:\n  - {host: a, port: 1, drain: yes}\nlog: {access: off}\n"},
		{"anchors and merge keys", "defaults: &d\n  port: 9001\n  weight: 3\n"[:0] + "backends:\n  - &b {host: a, port: 9001, weight: 3}\n  - <<: *b\n    port: 9002\n"},
		{"admin off", two + "admin: {addr: \"off\"}\n"},
		{"admin any port", two + "admin: {addr: \"localhost:0\"}\n"},
		{"admin all interfaces", two + "admin: {addr: \":9901\"}\n"},
		{"expect_status number", two + "health_check: {path: /health, expect_status: 200}\n"},
		{"duration zero", two + "timeouts: {dial: 0}\nsticky: {max_age: \"0\"}\n"},
		{"null sections", two + "log:\nhealth_check:\ntracing:\n"},
		{"trailing slash", "backends:\n  - {host: \"https://a.example/\", port: 443}\n"},
		{"trusted proxies", two + "trusted_proxies: [10.0.0.0/8, 192.168.1.10, \"::1\", \"fd00::/8\"]\n"},
		{"tls on port 443", "backends:\n  - host: a\n    port: 443\n    tls: {insecure_skip_verify: true, server_name: b.example}\n"},
		{"override path makes http", two + "health_check: {type: tcp}\n" + "backends2: []\n"[:0]},
		{"empty tls on http", "backends:\n  - {host: a, port: 80, tls: {insecure_skip_verify: false, ca_file: \"\"}}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.yaml), "test.yaml"); err != nil {
				t.Errorf("%v\n%s", err, tt.yaml)
			}
		})
	}
}

func TestCAFile(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writeTestCA(t, ca)
	y := "backends:\n  - host: https://a\n    port: 8443\n    tls:\n      ca_file: \"" + ca + "\"\n"
	c, err := Parse([]byte(y), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Backends[0].TLS.CAFile != ca {
		t.Errorf("ca_file = %q", c.Backends[0].TLS.CAFile)
	}
}

func writeTestCA(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkDefaults asserts that every setting of c holds its default.
func checkDefaults(t *testing.T, c *Config) {
	t.Helper()
	want := Config{
		Listen:   Listen{Host: "0.0.0.0", Port: 9000},
		Strategy: "random",
		Sticky:   Sticky{CookieName: "ZZZ_BACKEND_ID"},
		Timeouts: Timeouts{
			Dial: Duration(5 * time.Second), TLSHandshake: Duration(5 * time.Second),
			ResponseHeader: Duration(60 * time.Second), ClientHeader: Duration(10 * time.Second),
			ClientIdle: Duration(120 * time.Second), ClientBodyIdle: Duration(60 * time.Second), BackendIdle: Duration(90 * time.Second),
		},
		Limits:  Limits{MaxHeaderBytes: 65536, MaxURIBytes: 8192, MaxIdleConnsPerBackend: 1024, LeanAboveConns: 256},
		Retries: Retries{Attempts: 3},
		Via:     "load_balancer",
		Log:     Log{Level: "info", Format: "text", MaxSizeMB: 100, MaxBackups: 5, Access: ptr(true)},
		HealthCheck: HealthCheck{
			Enabled: ptr(true), Type: "tcp", Interval: Duration(2 * time.Second), Timeout: Duration(time.Second),
			Jitter: ptr(0.1), ExpectStatus: "200-399", Fall: 2, Rise: 2,
		},
		Passive:  Passive{Enabled: ptr(true), ConsecutiveFailures: 3, BaseEjection: Duration(5 * time.Second), MaxEjection: Duration(2 * time.Minute)},
		Shutdown: Shutdown{GracePeriod: Duration(30 * time.Second)},
		Admin:    Admin{Addr: "127.0.0.1:9901"},
		Tracing:  Tracing{ServiceName: "load_balancer", Protocol: "http/protobuf", SampleRatio: ptr(1.0)},
	}
	got := *c
	got.Backends, got.Source = nil, ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if !c.HealthCheck.IsEnabled() || !c.Passive.IsEnabled() || !c.Log.AccessEnabled() || c.Tracing.Ratio() != 1 || c.HealthCheck.JitterFraction() != 0.1 || c.Admin.Off() {
		t.Errorf("helpers disagree with the defaults")
	}
}

func TestDefaultsAfterParse(t *testing.T) {
	c, err := Parse([]byte(two), "min.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checkDefaults(t, c)
	if c.Listen.Addr() != "0.0.0.0:9000" {
		t.Errorf("Listen.Addr = %q", c.Listen.Addr())
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	checkDefaults(t, c)
	if len(c.Backends) != 2 {
		t.Fatalf("%d backends", len(c.Backends))
	}
	for i, want := range []string{"http://127.0.0.1:9001", "http://127.0.0.1:9002"} {
		b := c.Backends[i]
		if b.String() != want || b.EffectiveWeight() != 1 || b.Weight == nil || *b.Weight != 1 {
			t.Errorf("backends[%d] = %+v", i, b)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if Default() == c || &Default().Backends[0] == &c.Backends[0] {
		t.Errorf("Default shares state between calls")
	}
}

func TestValidate(t *testing.T) {
	c := Default()
	c.Strategy = "fastest"
	c.Backends[1].Port = 70000
	c.Backends[1].Line = 12
	c.Source = "lb.yaml"
	err := c.Validate()
	want := "lb.yaml: strategy: \"fastest\" is not a strategy (expected one of round-robin, weighted-round-robin, random, sticky)\n" +
		"lb.yaml:12: backends[1].port: 70000 is out of range (expected 1..65535)"
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	if c.Strategy != "fastest" {
		t.Errorf("Validate changed the config")
	}
	if err := (&Config{Backends: []Backend{{Host: "a", Port: 1}}}).Validate(); err != nil {
		t.Errorf("config without defaults: %v", err)
	}
}

func TestBackendMethods(t *testing.T) {
	for _, tt := range []struct {
		host                 string
		port                 int
		scheme, name, hp, id string
	}{
		{"127.0.0.1", 9001, "http", "127.0.0.1", "127.0.0.1:9001", "http://127.0.0.1:9001"},
		{"api.example.com", 443, "https", "api.example.com", "api.example.com:443", "https://api.example.com:443"},
		{"https://api.example.com", 8443, "https", "api.example.com", "api.example.com:8443", "https://api.example.com:8443"},
		{"HTTPS://api.example.com/", 8443, "https", "api.example.com", "api.example.com:8443", "https://api.example.com:8443"},
		{"http://plain.example", 443, "http", "plain.example", "plain.example:443", "http://plain.example:443"},
		{"::1", 9001, "http", "::1", "[::1]:9001", "http://[::1]:9001"},
		{"https://[::1]", 9001, "https", "::1", "[::1]:9001", "https://[::1]:9001"},
	} {
		b := Backend{Host: tt.host, Port: tt.port}
		if b.Scheme() != tt.scheme || b.Hostname() != tt.name || b.HostPort() != tt.hp || b.String() != tt.id {
			t.Errorf("%s %d: scheme %q hostname %q hostport %q string %q", tt.host, tt.port, b.Scheme(), b.Hostname(), b.HostPort(), b.String())
		}
	}
	if w := (Backend{}).EffectiveWeight(); w != 1 {
		t.Errorf("EffectiveWeight of nil = %d", w)
	}
	if w := (Backend{Weight: ptr(0)}).EffectiveWeight(); w != 0 {
		t.Errorf("EffectiveWeight of 0 = %d", w)
	}
}

func TestHealthCheckFor(t *testing.T) {
	y := `health_check:
  path: /health
  interval: 5s
  fall: 3
backends:
  - host: a
    port: 1
  - host: b
    port: 2
    health_check:
      timeout: 2s
      rise: 4
      enabled: false
      jitter: 0
      expect_status: "200"
  - host: c
    port: 3
    health_check:
      type: tcp
  - host: d
    port: 4
    health_check: {}
`
	c, err := Parse([]byte(y), "hc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	global := HealthCheck{Enabled: ptr(true), Type: "http", Path: "/health", Interval: Duration(5 * time.Second),
		Timeout: Duration(time.Second), Jitter: ptr(0.1), ExpectStatus: "200-399", Fall: 3, Rise: 2}
	if !reflect.DeepEqual(c.HealthCheck, global) {
		t.Errorf("global = %+v", c.HealthCheck)
	}
	if got := c.HealthCheckFor(c.Backends[0]); !reflect.DeepEqual(got, global) {
		t.Errorf("no override: %+v", got)
	}
	if got := c.HealthCheckFor(c.Backends[3]); !reflect.DeepEqual(got, global) {
		t.Errorf("empty override: %+v", got)
	}
	b := global
	b.Timeout, b.Rise, b.Enabled, b.Jitter, b.ExpectStatus = Duration(2*time.Second), 4, ptr(false), ptr(0.0), "200"
	if got := c.HealthCheckFor(c.Backends[1]); !reflect.DeepEqual(got, b) {
		t.Errorf("override:\n got %+v\nwant %+v", got, b)
	}
	if got := c.HealthCheckFor(c.Backends[1]); got.IsEnabled() || got.JitterFraction() != 0 {
		t.Errorf("helpers: %+v", got)
	}
	tcp := global
	tcp.Type, tcp.Path = "tcp", ""
	if got := c.HealthCheckFor(c.Backends[2]); !reflect.DeepEqual(got, tcp) {
		t.Errorf("tcp override: %+v", got)
	}
	// The override itself stays as written.
	if o := c.Backends[1].HealthCheck; o.Interval != 0 || o.Type != "" || o.Fall != 0 {
		t.Errorf("override was changed: %+v", o)
	}

	// An override's path makes a tcp global check http; on a zero Config
	// the defaults apply.
	var zero Config
	got := zero.HealthCheckFor(Backend{HealthCheck: &HealthCheck{Path: "/up"}})
	if got.Type != "http" || got.Path != "/up" || got.Interval.D() != DefaultHealthInterval || got.Fall != DefaultFall {
		t.Errorf("zero config: %+v", got)
	}
	if lo, hi, ok := got.StatusRange(); !ok || lo != 200 || hi != 399 {
		t.Errorf("StatusRange = %d %d %v", lo, hi, ok)
	}
	if got := zero.HealthCheckFor(Backend{HealthCheck: &HealthCheck{Type: "http"}}); got.Path != "/" {
		t.Errorf("http check without path: %+v", got)
	}
}

func TestRedacted(t *testing.T) {
	c, err := Parse([]byte(two+"    health_check: {jitter: 0.5}\nsticky:\n  secret: s3cret\ntrusted_proxies: [10.0.0.0/8]\n"), "r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	if r.Sticky.Secret != "<redacted>" || c.Sticky.Secret != "s3cret" {
		t.Errorf("secret: redacted %q, original %q", r.Sticky.Secret, c.Sticky.Secret)
	}
	// Deep copy: changing the copy leaves the original alone.
	r.Backends[0].Port = 1
	*r.Backends[0].HealthCheck.Jitter = 0.9
	r.TrustedProxies[0] = "x"
	*r.HealthCheck.Enabled = false
	*r.Log.Access = false
	if c.Backends[0].Port != 9001 || *c.Backends[0].HealthCheck.Jitter != 0.5 || c.TrustedProxies[0] != "10.0.0.0/8" ||
		!*c.HealthCheck.Enabled || !*c.Log.Access {
		t.Errorf("Redacted shares state with the original")
	}
	if s := Default().Redacted().Sticky.Secret; s != "" {
		t.Errorf("empty secret became %q", s)
	}
	if (*Config)(nil).Redacted() != nil {
		t.Errorf("nil")
	}
}

func TestDuration(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want time.Duration
		err  string
	}{
		{`1.5s`, 1500 * time.Millisecond, ""},
		{`200ms`, 200 * time.Millisecond, ""},
		{`"2m"`, 2 * time.Minute, ""},
		{`1h30m`, 90 * time.Minute, ""},
		{`0`, 0, ""},
		{`5`, 0, `line 1: 5 has no unit (write e.g. "5s" or "5ms")`},
		{`-1s`, 0, `line 1: "-1s" is negative (expected a duration of 0 or more)`},
		{`fast`, 0, `line 1: "fast" is not a duration`},
	} {
		var d Duration
		err := yaml.Unmarshal([]byte(tt.yaml), &d)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.yaml, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: got %v, want %q", tt.yaml, err, tt.err)
		case tt.err == "" && d.D() != tt.want:
			t.Errorf("%s: got %v, want %v", tt.yaml, d.D(), tt.want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0s", 1500 * time.Millisecond: "1.5s", 2 * time.Minute: "2m", 90 * time.Minute: "1h30m", time.Hour: "1h", 61 * time.Second: "1m1s"} {
		if got := Duration(d).String(); got != want {
			t.Errorf("String(%v) = %q, want %q", d, got, want)
		}
		out, err := yaml.Marshal(struct{ D Duration }{Duration(d)})
		if err != nil || string(out) != "d: "+want+"\n" {
			t.Errorf("MarshalYAML(%v) = %q, %v", d, out, err)
		}
		var back Duration
		if err := back.UnmarshalText([]byte(want)); err != nil || back.D() != d {
			t.Errorf("UnmarshalText(%q) = %v, %v", want, back, err)
		}
	}
}

// TestRoundTrip prints a parsed config back as YAML and parses that again.
func TestRoundTrip(t *testing.T) {
	for _, f := range []string{"../../config/full.yaml", "../../config/backends.yaml", "testdata/seed.yaml"} {
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := Parse(out, "printed.yaml")
		if err != nil {
			t.Fatalf("%s printed back does not parse: %v\n%s", f, err, out)
		}
		for i := range c.Backends {
			c.Backends[i].Line, c2.Backends[i].Line = 0, 0
		}
		c.Source, c2.Source = "", ""
		if !reflect.DeepEqual(c, c2) {
			t.Errorf("%s: round trip differs:\n%+v\n%+v", f, c, c2)
		}
	}
}

func TestExampleConfigs(t *testing.T) {
	c, err := Load("../../config/backends.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Backends) != 2 || c.Backends[0].Port != 9001 || c.Backends[0].EffectiveWeight() != 2 ||
		c.Backends[1].Port != 9002 || c.Backends[1].EffectiveWeight() != 1 {
		t.Errorf("config/backends.yaml: %+v", c.Backends)
	}
	full, err := Load("../../config/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// full.yaml sets every key to its default, so apart from the backends
	// it equals the built-in config.
	def := Default()
	full.Backends, def.Backends = nil, nil
	full.Source = ""
	full.HealthCheck.Path = "" // written as "" in full.yaml: tcp checks have none
	if !reflect.DeepEqual(full, def) {
		t.Errorf("config/full.yaml is not all defaults:\n got %+v\nwant %+v", full, def)
	}
}

// TestAliasBomb checks that merge keys and aliases cannot make a small
// file expand without bound: each entry merges the previous one twice.
func TestAliasBomb(t *testing.T) {
	doc := "backends:\n  - &m0 {host: a, port: 1}\n"
	for i := 1; i < 40; i++ {
		prev := "*m" + strconv.Itoa(i-1)
		doc += "  - &m" + strconv.Itoa(i) + " {<<: [" + prev + ", " + prev + "], port: " + strconv.Itoa(i+1) + "}\n"
	}
	done := make(chan error, 1)
	go func() { _, err := Parse([]byte(doc), "bomb.yaml"); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.HasSuffix(err.Error(), ": document is too large or expands aliases too often") || strings.Contains(err.Error(), "\n") {
			t.Errorf("got %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Parse did not finish")
	}
}
