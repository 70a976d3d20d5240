package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/lbproject/load_balancer/internal/testbackend"
)

// TestProtocolInformationalForwarded: a 103 Early Hints from the backend
// reaches an HTTP/1.1 client before the final response (RFC 9110 §15.2: a
// proxy forwards 1xx responses), its fields stay out of the final response,
// and an HTTP/1.0 client never gets it.
func TestProtocolInformationalForwarded(t *testing.T) {
	t.Parallel()
	be := testbackend.Raw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
		}
	})
	lb := startProtoBalancer(t, "", be.Addr)

	var hints []int
	var hintLink string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, code)
		hintLink = h.Get("Link")
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctxFor(t, 10*time.Second), trace), "GET", lb.URL("/"), nil)
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("final response %d %q", res.StatusCode, body)
	}
	if len(hints) != 1 || hints[0] != 103 || hintLink != "</style.css>; rel=preload" {
		t.Fatalf("informational responses %v with Link %q, want one 103 with the backend's Link", hints, hintLink)
	}
	if got := res.Header.Get("Link"); got != "" {
		t.Fatalf("the 103's Link field leaked into the final response: %q", got)
	}

	raw := rawExchange(t, lb.Addr, "GET / HTTP/1.0\r\nHost: lb.test\r\n\r\n", 5*time.Second)
	if strings.Contains(raw, " 103 ") || !strings.Contains(raw, " 200 OK\r\n") {
		t.Fatalf("HTTP/1.0 client got %q, want the final response only", head(raw))
	}
}
