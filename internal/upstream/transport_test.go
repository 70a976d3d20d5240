package upstream

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestConnCount(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backend.Close()
	var conns ConnCount
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(backend.URL, "http://"))
	p, _ := strconv.Atoi(port)
	tr := NewTransport(Address{Scheme: "http", Host: host, Port: p},
		TransportOptions{DialTimeout: time.Second, IdleConnTimeout: time.Minute, MaxIdleConns: 4, Conns: &conns})
	defer tr.CloseIdleConnections()
	for range 3 {
		res, err := tr.RoundTrip(httptest.NewRequest("GET", backend.URL, nil).WithContext(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if conns.Open() != 1 || conns.Dialed() != 1 {
		t.Fatalf("after 3 keep-alive requests: open %d dialed %d, want 1 1", conns.Open(), conns.Dialed())
	}
	if idle := conns.Idle(0); idle != 1 {
		t.Errorf("Idle(0) = %d, want 1", idle)
	}
	if idle := conns.Idle(5); idle != 0 {
		t.Errorf("Idle(5) = %d, want 0 (floored)", idle)
	}
	tr.CloseIdleConnections()
	deadline := time.Now().Add(2 * time.Second)
	for conns.Open() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if conns.Open() != 0 {
		t.Fatalf("after closing: open %d, want 0", conns.Open())
	}
}
