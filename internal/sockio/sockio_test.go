//go:build linux

package sockio

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func TestOpenOnlyPlainSockets(t *testing.T) {
	a, _ := tcpPair(t)
	if Open(a) == nil {
		t.Error("TCP connection: no Socket")
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if Open(p1) != nil {
		t.Error("net.Pipe: a Socket over no socket")
	}
	if _, ok := ReadWriter(a).(*Socket); !ok {
		t.Error("ReadWriter of a TCP connection: not its Socket")
	}
	if rw := ReadWriter(p1); rw != p1 {
		t.Errorf("ReadWriter of a pipe: %T, not the pipe itself", rw)
	}
	if Open(tls.Client(a, &tls.Config{})) != nil {
		t.Error("TLS connection: a Socket that would bypass TLS")
	}

	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	u, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if Open(u) == nil {
		t.Error("Unix connection: no Socket")
	}

	// A datagram socket: a read of nothing is an empty datagram, not EOF.
	dpath := filepath.Join(t.TempDir(), "d")
	dl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: dpath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	if Open(dl) != nil {
		t.Error("unixgram socket: a Socket that would read an empty datagram as EOF")
	}

	// A socket switched to blocking mode (File's Fd does it, for the
	// duplicate and the original alike): a raw read would block.
	c, _ := tcpPair(t)
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Fd()
	if Open(c) != nil {
		t.Error("blocking socket: a Socket whose reads would block holding the processor")
	}
}

// A read waits for the peer's bytes, gets what was written, and io.EOF
// once the peer has closed.
func TestReadWaitsThenEOF(t *testing.T) {
	a, b := tcpPair(t)
	s := Open(b)
	got := make(chan []byte)
	go func() {
		p := make([]byte, 64)
		n, err := s.Read(p)
		if err != nil {
			t.Errorf("Read: %v", err)
		}
		got <- p[:n]
	}()
	if _, err := a.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if g := <-got; string(g) != "hello" {
		t.Errorf("read %q, want hello", g)
	}
	a.Close()
	if n, err := s.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("after the peer closed: %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := s.Read(nil); n != 0 || err != nil {
		t.Errorf("empty read: %d, %v; want 0, nil", n, err)
	}
}

// A write larger than the socket's buffers and than MaxRawWrite waits
// while the peer is slow, and every byte arrives in order.
func TestWriteWaitsForRoom(t *testing.T) {
	a, b := tcpPair(t)
	s := Open(a)
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i * 7 / 5)
	}
	got := make(chan []byte)
	go func() {
		var buf bytes.Buffer
		p := make([]byte, 4096) // small reads: the writer fills the buffers and waits
		for buf.Len() < len(want) {
			n, err := b.Read(p)
			buf.Write(p[:n])
			if err != nil {
				break
			}
		}
		got <- buf.Bytes()
	}()
	n, err := s.Write(want)
	if n != len(want) || err != nil {
		t.Fatalf("Write: %d, %v; want %d, nil", n, err, len(want))
	}
	if g := <-got; !bytes.Equal(g, want) {
		t.Fatalf("the peer got %d bytes, not the %d written", len(g), len(want))
	}
}

// Deadlines set on the connection bound the waits, with net.Conn's errors.
func TestDeadlines(t *testing.T) {
	a, b := tcpPair(t)
	s := Open(b)
	b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := s.Read(make([]byte, 8))
	checkTimeout(t, "read", err)

	w := Open(a)
	a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	big := make([]byte, 64<<20) // more than the buffers hold: nobody reads
	n, err := w.Write(big)
	checkTimeout(t, "write", err)
	if n == 0 || n >= len(big) {
		t.Errorf("wrote %d of %d before the deadline; want some, not all", n, len(big))
	}
}

func checkTimeout(t *testing.T, op string, err error) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op {
		t.Fatalf("%s: %v (%T), want a *net.OpError with Op %q", op, err, err, op)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || !oe.Timeout() {
		t.Errorf("%s: %v, want a timeout", op, err)
	}
	if oe.Source == nil || oe.Addr == nil {
		t.Errorf("%s: %v without the addresses", op, err)
	}
	if _, inner := oe.Err.(*net.OpError); inner {
		t.Errorf("%s: %v wraps an error of the same kind", op, err)
	}
}

// A closed connection, a reset one and one its peer closed give
// net.Conn's errors.
func TestClosedAndReset(t *testing.T) {
	_, b := tcpPair(t)
	s := Open(b)
	b.Close()
	if _, err := s.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read of a closed connection: %v, want net.ErrClosed", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write to a closed connection: %v, want net.ErrClosed", err)
	}

	c, d := tcpPair(t)
	r := Open(d)
	c.SetLinger(0) // close with RST
	c.Write([]byte("x"))
	c.Close()
	var err error
	for err == nil { // the byte sent before the reset may come first
		_, err = r.Read(make([]byte, 8))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read of a reset connection: %v, want ECONNRESET", err)
	}

	// EPIPE once the peer's reset is in; ECONNRESET if the write meets it.
	err = writeToClosedPeer(t)
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("write to a connection closed by its peer: %v, want EPIPE or ECONNRESET", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Errorf("write to a connection closed by its peer: %v, want a *net.OpError for write", err)
	}
}

// writeToClosedPeer writes through a Socket to a connection whose peer has
// closed until a write fails, and returns that failure (nil if 100 writes
// went through). The peer's kernel answers the first write with a reset.
func writeToClosedPeer(t *testing.T) error {
	e, f := tcpPair(t)
	w := Open(f)
	e.Close()
	for i := 0; i < 100; i++ {
		if _, err := w.Write([]byte("x")); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkReadWrite compares a small write and its read over a loopback
// TCP connection through net.Conn and through Socket.
func BenchmarkReadWrite(b *testing.B) {
	p := make([]byte, 100)
	q := make([]byte, 4096)
	b.Run("net.Conn", func(b *testing.B) {
		w, r := tcpPair(b)
		for b.Loop() {
			w.Write(p)
			r.Read(q)
		}
	})
	b.Run("Socket", func(b *testing.B) {
		w, r := tcpPair(b)
		ws, rs := Open(w), Open(r)
		for b.Loop() {
			ws.Write(p)
			rs.Read(q)
		}
	})
}
