//go:build linux && !race

// (Under the race detector, writes go through syscall.Write, which raises
// SIGPIPE: see raw_race.go.)

package sockio

import (
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// A write to a connection its peer has closed fails without raising
// SIGPIPE (MSG_NOSIGNAL). Go's runtime would ignore the signal, but only
// after the kernel delivered it and the runtime's handler ran.
//
// How the test knows no SIGPIPE came: after the writes it sends itself
// SIGALRM and waits for it. The runtime hands pending signals to
// os/signal lowest number first, and SIGPIPE (13) is below SIGALRM (14),
// so a SIGPIPE raised by a write is on its channel by the time SIGALRM
// arrives on its own.
func TestWriteToClosedPeerRaisesNoSIGPIPE(t *testing.T) {
	pipes := make(chan os.Signal, 16)
	alarm := make(chan os.Signal, 1)
	signal.Notify(pipes, syscall.SIGPIPE)
	signal.Notify(alarm, syscall.SIGALRM)
	defer signal.Stop(pipes)
	defer signal.Stop(alarm)

	if err := writeToClosedPeer(t); err == nil {
		t.Fatal("writes to a connection closed by its peer kept succeeding")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGALRM); err != nil {
		t.Fatal(err)
	}
	<-alarm
	if n := len(pipes); n != 0 {
		t.Errorf("the failed write raised SIGPIPE (%d on the channel), want none", n)
	}
}
