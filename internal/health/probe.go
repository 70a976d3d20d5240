package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// maxBodyMatch is how much of an HTTP probe's body is searched for
// ExpectBody.
const maxBodyMatch = 64 << 10

// probeSpec is everything one prober needs, computed once when the prober
// starts: a probe allocates nothing but its connection and buffers.
type probeSpec struct {
	kind      string // "tcp" or "http"
	hostPort  string
	tls       *tls.Config // non-nil: complete a TLS handshake after connecting
	timeout   time.Duration
	interval  time.Duration
	jitter    float64
	fall      int
	rise      int
	request   []byte // the whole HTTP/1.1 request of an http probe
	statusLo  int    // accepted status codes, inclusive
	statusHi  int
	expectRaw string // ExpectStatus as written, for reasons
	body      string // ExpectBody
}

// newProbeSpec compiles a target's check. Zero fields take config's
// defaults (the loader has applied them already; this keeps a hand-built
// HealthCheck safe). Invalid values that the loader rejects fall back to
// the defaults too; the returned problems say which (the caller logs them).
func newProbeSpec(t Target) (*probeSpec, []string) {
	h := t.Check
	var problems []string
	s := &probeSpec{
		kind:      h.Type,
		hostPort:  t.Backend.HostPort(),
		timeout:   h.Timeout.D(),
		interval:  h.Interval.D(),
		jitter:    min(max(h.JitterFraction(), 0), 1),
		fall:      h.Fall,
		rise:      h.Rise,
		expectRaw: h.ExpectStatus,
		body:      h.ExpectBody,
	}
	if s.interval <= 0 {
		s.interval = config.DefaultHealthInterval
	}
	if s.timeout <= 0 {
		s.timeout = config.DefaultHealthTimeout
	}
	if s.fall <= 0 {
		s.fall = config.DefaultFall
	}
	if s.rise <= 0 {
		s.rise = config.DefaultRise
	}
	switch s.kind {
	case "tcp", "http":
	case "":
		s.kind = "tcp"
		if h.Path != "" {
			s.kind = "http"
		}
	default:
		problems = append(problems, fmt.Sprintf("unknown type %q, using tcp", s.kind))
		s.kind = "tcp"
	}
	if t.Backend.Address().TLS() {
		s.tls = probeTLSConfig(t.TLS, t.Backend.Address().Host)
	}
	if s.kind == "http" {
		if s.expectRaw == "" {
			s.expectRaw = config.DefaultExpectStatus
		}
		lo, hi, ok := h.StatusRange()
		if !ok {
			problems = append(problems, fmt.Sprintf("invalid expect_status %q, using %s", s.expectRaw, config.DefaultExpectStatus))
			s.expectRaw = config.DefaultExpectStatus
			lo, hi, _ = config.HealthCheck{}.StatusRange()
		}
		s.statusLo, s.statusHi = lo, hi
		req, err := buildRequest(h.Path, probeHost(h.Host, t.Backend.Address()))
		if err != nil {
			problems = append(problems, err.Error()+", using /")
			req, _ = buildRequest("/", probeHost("", t.Backend.Address()))
		}
		s.request = req
	}
	return s, problems
}

// probeTLSConfig returns the TLS config of probes to an https backend: the
// backend's own (verification, CA, server name) with HTTP/1.1 as the only
// protocol, because probes speak HTTP/1.1 on a fresh connection.
func probeTLSConfig(base *tls.Config, host string) *tls.Config {
	var c *tls.Config
	if base != nil {
		c = base.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		c.ServerName = host
	}
	c.NextProtos = nil
	return c
}

// probeHost is the Host header of HTTP probes: the configured one, else the
// backend's host with its port unless that is the scheme's default (what an
// HTTP client would send for the backend's URL).
func probeHost(configured string, a upstream.Address) string {
	if configured != "" {
		return configured
	}
	if (a.TLS() && a.Port == 443) || (!a.TLS() && a.Port == 80) {
		if strings.Contains(a.Host, ":") {
			return "[" + a.Host + "]"
		}
		return a.Host
	}
	return a.HostPort()
}

// buildRequest returns the bytes of a GET request for path with the given
// Host header. The connection is closed after the response: probe
// connections are never pooled, so a probe sees what a new connection sees.
func buildRequest(path, host string) ([]byte, error) {
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if strings.ContainsAny(path, " \r\n\t") {
		return nil, fmt.Errorf("invalid path %q", path)
	}
	if strings.ContainsAny(host, " \r\n\t") {
		return nil, fmt.Errorf("invalid host %q", host)
	}
	return []byte("GET " + path + " HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"User-Agent: load_balancer-health-check\r\n" +
		"Accept: */*\r\n" +
		"Connection: close\r\n\r\n"), nil
}

// run performs one probe. It returns nil when the backend passed, or an
// error whose text is the reason shown in events and logs ("tcp connect:
// connection refused", "http status 503 not in 200-399", ...). Everything,
// name resolution included, is bounded by the spec's timeout and by ctx.
func (s *probeSpec) run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.hostPort)
	if err != nil {
		return s.fail("tcp connect", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// Cancellation (Close, Update) interrupts blocked reads and writes.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if s.tls != nil {
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return s.fail("tls handshake", err)
		}
		conn = tc
	}
	if s.kind != "http" {
		return nil
	}

	if _, err := conn.Write(s.request); err != nil {
		return s.fail("http", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("http: connection closed before response")
	}
	if err != nil {
		return s.fail("http", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < s.statusLo || resp.StatusCode > s.statusHi {
		return fmt.Errorf("http status %d not in %s", resp.StatusCode, s.expectRaw)
	}
	if s.body == "" {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyMatch))
	switch {
	case bytes.Contains(b, []byte(s.body)):
		return nil
	case err != nil:
		return s.fail("http body", err)
	default:
		return fmt.Errorf("http body does not contain %q", s.body)
	}
}

// fail turns a network error into a short reason prefixed by the stage
// that failed. Timeouts read "timeout after 1s" whatever layer saw them.
func (s *probeSpec) fail(stage string, err error) error {
	return fmt.Errorf("%s: %s", stage, describe(err, s.timeout))
}

func describe(err error, timeout time.Duration) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout after " + timeout.String()
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by peer"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}
