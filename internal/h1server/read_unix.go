//go:build unix && !linux

package h1server

import "syscall"

// leanWaits: idle connections can wait lean here (see Server.LeanAbove):
// a non-blocking read of the socket is at hand.
const leanWaits = true

// readFD reads the non-blocking socket fd once.
func readFD(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }
