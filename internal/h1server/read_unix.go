//go:build unix && !linux

package h1server

import (
	"io"
	"net"
	"syscall"
)

// leanWaits: idle connections can wait lean here (see Server.LeanAbove):
// a non-blocking read of the socket is at hand.
const leanWaits = true

// readFD reads the non-blocking socket fd once.
func readFD(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }

// socketOf returns what to read and write nc through (nc itself: sockio's
// raw system calls are Linux's), and the RawConn idle reads go through.
func socketOf(nc net.Conn) (io.ReadWriter, syscall.RawConn) { return nc, rawConnOf(nc) }
