//go:build linux

package h1server

import (
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/lbproject/load_balancer/internal/sockio"
)

// Idle reads (readFD, recvfrom) go only to what sockio takes: a TCP
// connection gets a Socket and its RawConn; a packet socket, which has a
// RawConn too, gets neither, and its connection waits in a plain read.
func TestSocketOfOnlyStreamSockets(t *testing.T) {
	_, b := loopbackPair(t)
	rw, raw := socketOf(b)
	if _, ok := rw.(*sockio.Socket); !ok || raw == nil {
		t.Errorf("TCP connection: got %T and RawConn %v, want a *sockio.Socket and its RawConn", rw, raw)
	}

	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Skip("no seqpacket socket pair:", err)
	}
	defer syscall.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), "seqpacket")
	nc, err := net.FileConn(f) // dups the descriptor
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, ok := nc.(syscall.Conn); !ok {
		t.Fatalf("%T is no syscall.Conn", nc)
	}
	rw, raw = socketOf(nc)
	if rw != nc || raw != nil {
		t.Errorf("seqpacket connection: got %T and RawConn %v, want the connection itself and no RawConn", rw, raw)
	}
}
