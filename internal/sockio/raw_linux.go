//go:build linux

package sockio

import (
	"syscall"
	"unsafe"
)

const supported = true

// rawRead is read(2) without telling the scheduler: fd is non-blocking.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if raceEnabled && errno == 0 {
		raceRead(p[:n])
	}
	return int(n), errno
}

// rawWrite is write(2) without telling the scheduler: fd is non-blocking.
func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	if raceEnabled {
		raceWrite(p)
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), errno
}

// ReadFD reads the non-blocking socket fd once, as syscall.Read does but
// without telling the scheduler: for code that reads inside a
// syscall.RawConn read function.
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
