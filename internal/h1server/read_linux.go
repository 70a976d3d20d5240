//go:build linux

package h1server

import (
	"io"
	"net"
	"syscall"

	"github.com/lbproject/load_balancer/internal/sockio"
)

// leanWaits: idle connections can wait lean here (see Server.LeanAbove):
// a non-blocking read of the socket is at hand.
const leanWaits = true

// readFD reads the non-blocking socket fd once (see sockio).
func readFD(fd uintptr, p []byte) (int, error) { return sockio.ReadFD(fd, p) }

// socketOf returns what to read and write nc through, and the RawConn
// idle reads (readFD) go through: a sockio.Socket and its RawConn where nc
// is a plain non-blocking stream socket; otherwise nc and no RawConn (the
// connection then always waits in a read): readFD's recvfrom works on
// sockets only.
func socketOf(nc net.Conn) (io.ReadWriter, syscall.RawConn) {
	if s := sockio.Open(nc); s != nil {
		return s, s.RawConn()
	}
	return nc, nil
}
