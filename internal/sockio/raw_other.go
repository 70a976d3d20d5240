//go:build !linux

package sockio

import "syscall"

// supported: raw system calls are used on Linux only; elsewhere Open
// returns nil and callers keep net.Conn.
const supported = false

func rawRead(uintptr, []byte) (int, syscall.Errno)  { return 0, syscall.ENOSYS }
func rawWrite(uintptr, []byte) (int, syscall.Errno) { return 0, syscall.ENOSYS }

func nonBlocking(syscall.RawConn) bool { return false }
