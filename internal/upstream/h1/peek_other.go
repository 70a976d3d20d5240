//go:build !unix

package h1

// peekFD cannot look at the socket here (no non-blocking peek in the
// syscall package): the connection counts as alive, as one without a
// socket does; a stale one is then caught by the retry of a replayable
// request.
func (c *conn) peekFD(uintptr) { c.peekOK = true }
