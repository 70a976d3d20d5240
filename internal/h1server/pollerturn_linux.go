//go:build linux

package h1server

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

// pollerTurn waits until Go's network poller has run. The runtime asks the
// poller for ready sockets only when no goroutine is runnable (or, failing
// that, from its monitor thread every 10 ms): a goroutine that keeps
// yielding and finding more work, as the parker's run does while
// connections keep coming, keeps the run queue from ever emptying, and
// every goroutine waiting on a socket (a handler waiting for its backend's
// answer, the accept loop) waits until it does. Measured at 2000 busy
// connections: such waits of up to 98 ms (docs/BENCHMARKS.md).
//
// It is a socket pair: wait writes a byte into one end after the read
// readiness of the other was reset, and waits for the poller to report
// it. The report comes with the next run of the poller, which also wakes
// whatever else became ready by then.
type pollerTurn struct {
	r      *os.File // read end, watched by Go's poller; closed by closeReader (the parker's stop)
	rc     syscall.RawConn
	w      int  // write end; closed by closeWriter, once r is no longer read
	armed  bool // the byte of the current wait is written
	waitFn func(fd uintptr) bool
}

// newPollerTurn returns a pollerTurn, or nil if the system will not give
// one (the caller then yields instead).
func newPollerTurn() *pollerTurn {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	t := &pollerTurn{r: os.NewFile(uintptr(fds[0]), "h1server-poller-turn"), w: fds[1]}
	rc, err := t.r.SyscallConn()
	// A deadline can be set only on a file Go's poller watches: without
	// it, a wait would return at once.
	if err != nil || t.r.SetReadDeadline(time.Time{}) != nil {
		t.r.Close()
		syscall.Close(t.w)
		return nil
	}
	t.rc = rc
	t.waitFn = t.poll
	return t
}

// wait returns true once Go's poller has run since wait was called; false
// at once if it could not wait (the read end closed, the byte not
// written).
func (t *pollerTurn) wait() bool {
	t.armed = false
	return t.rc.Read(t.waitFn) == nil && t.armed
}

// poll is wait's RawConn read function. Its first call, made after the
// read readiness was reset, drains what earlier waits left and writes the
// byte the poller will report; the wait then lasts until it does. A later
// call means the poller reported it.
func (t *pollerTurn) poll(fd uintptr) bool {
	if t.armed {
		return true
	}
	var b [64]byte
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if errno != 0 || n == 0 || int(n) < len(b) {
			break
		}
	}
	// One byte into an emptied socket pair: no EAGAIN. Should it fail,
	// wait ends at once, reporting that it did not wait.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(t.w), uintptr(unsafe.Pointer(&b[0])), 1); errno != 0 {
		return true
	}
	t.armed = true
	return false
}

// closeReader ends a wait in progress and makes later ones return at once.
func (t *pollerTurn) closeReader() { t.r.Close() }

// closeWriter closes the write end: only once no wait can run any more
// (the read end is closed, and its user is done).
func (t *pollerTurn) closeWriter() { syscall.Close(t.w) }
