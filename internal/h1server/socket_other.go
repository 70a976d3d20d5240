//go:build !linux

package h1server

import (
	"io"
	"net"
	"syscall"
)

// socketOf returns what to read and write nc through (nc itself: sockio's
// raw system calls are Linux's), and the RawConn idle reads go through, if
// nc has one.
func socketOf(nc net.Conn) (io.ReadWriter, syscall.RawConn) {
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return nc, rc
		}
	}
	return nc, nil
}
