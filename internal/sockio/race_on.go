//go:build race

package sockio

import (
	"runtime"
	"unsafe"
)

// The race detector does not see what a system call reads or writes, nor
// the order that data through a socket gives: syscall.Read and Write tell
// it, and so do these, the same way (one synchronisation point for all
// sockets).
const raceEnabled = true

var ioSync int64

// raceRead: the kernel wrote p (bytes read), after every socket write
// before it.
func raceRead(p []byte) {
	if len(p) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&p[0]), len(p))
	}
	runtime.RaceAcquire(unsafe.Pointer(&ioSync))
}

// raceWrite: the kernel reads p (bytes to write).
func raceWrite(p []byte) {
	runtime.RaceReleaseMerge(unsafe.Pointer(&ioSync))
	runtime.RaceReadRange(unsafe.Pointer(&p[0]), len(p))
}
