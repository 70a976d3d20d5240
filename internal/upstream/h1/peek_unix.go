//go:build unix

package h1

import "syscall"

// peekFD is alive's look at the socket: nothing to read yet (EAGAIN) is
// the only good answer; bytes, the end of the connection (0) or an error
// (ECONNRESET) are not.
func (c *conn) peekFD(fd uintptr) {
	_, _, err := syscall.Recvfrom(int(fd), c.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	c.peekOK = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}
