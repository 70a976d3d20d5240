//go:build linux && race

package sockio

import "syscall"

// Under the race detector, reads and writes go through syscall.Read and
// Write: the detector does not see what a system call reads or writes, nor
// the order data through a socket gives, and those two tell it (on the one
// synchronisation point all of package syscall's reads and writes share,
// so that a Socket's write and a net.Conn's read of it are ordered too).
// They do not block either: the socket is non-blocking.

func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return n, errno(err)
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	return n, errno(err)
}

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}
