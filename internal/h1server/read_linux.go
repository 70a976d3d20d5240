//go:build linux

package h1server

import "github.com/lbproject/load_balancer/internal/sockio"

// leanWaits: idle connections can wait lean here (see Server.LeanAbove):
// a non-blocking read of the socket is at hand.
const leanWaits = true

// readFD reads the non-blocking socket fd once (see sockio).
func readFD(fd uintptr, p []byte) (int, error) { return sockio.ReadFD(fd, p) }
