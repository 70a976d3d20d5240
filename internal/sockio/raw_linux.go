//go:build linux

package sockio

import "syscall"

const supported = true

// ReadFD reads the non-blocking stream socket fd once (recvfrom, as a
// Socket reads), without telling the scheduler: for code that reads inside
// the read function of a Socket's RawConn.
func ReadFD(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, errno := rawRead(fd, p)
	if errno != 0 {
		return -1, errno
	}
	return n, nil
}

// nonBlocking reports whether the socket is in non-blocking mode, as the
// net package leaves it (File switches it to blocking).
func nonBlocking(rc syscall.RawConn) bool {
	ok := false
	rc.Control(func(fd uintptr) {
		flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		ok = errno == 0 && flags&syscall.O_NONBLOCK != 0
	})
	return ok
}
