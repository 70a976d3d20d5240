package health

import (
	"strconv"
	"testing"
)

func TestEventRing(t *testing.T) {
	var l eventLog
	delivered := make(chan Event, 2*RecentEvents)
	l.start(func(ev Event) { delivered <- ev })
	const total = RecentEvents + 30
	for i := range total {
		l.add(Event{Backend: strconv.Itoa(i)})
		if i == 4 {
			if r := l.recent.List(); len(r) != 5 || r[0].Backend != "0" || r[4].Backend != "4" {
				t.Fatalf("recent before the ring is full = %+v", r)
			}
		}
	}
	l.stop()
	r := l.recent.List()
	if len(r) != RecentEvents {
		t.Fatalf("len(recent) = %d, want %d", len(r), RecentEvents)
	}
	for i, ev := range r {
		if want := strconv.Itoa(total - RecentEvents + i); ev.Backend != want {
			t.Fatalf("recent[%d] = %s, want %s", i, ev.Backend, want)
		}
	}
	if len(delivered) != total {
		t.Fatalf("%d events delivered, want %d", len(delivered), total)
	}
	for i := range total {
		if ev := <-delivered; ev.Backend != strconv.Itoa(i) {
			t.Fatalf("delivery %d was event %s: out of order", i, ev.Backend)
		}
	}
}

func TestFailureKinds(t *testing.T) {
	for mask, want := range map[uint32]string{
		1 << ConnectFailure:            "connect failures",
		1 << Reset:                     "resets",
		1 << Timeout:                   "timeouts",
		1<<ConnectFailure | 1<<Timeout: "failures (connect failure, timeout)",
		0:                              "failures",
	} {
		if got := failureKinds(mask, false); got != want {
			t.Errorf("failureKinds(%b) = %q, want %q", mask, got, want)
		}
	}
	if got := failureKinds(1<<Reset, true); got != "reset" {
		t.Errorf("failureKinds(reset, one) = %q", got)
	}
	if Outcome(42).String() != "Outcome(42)" || ServerError.String() != "5xx response" {
		t.Error("Outcome.String")
	}
}
