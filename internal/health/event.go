package health

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lbproject/load_balancer/internal/upstream"

	"github.com/lbproject/load_balancer/internal/ring"
)

// RecentEvents is how many transitions Recent keeps.
const RecentEvents = 100

// Event is one health transition of one backend: it went down or came back.
// Only changes are events; a probe that confirms the current state is not.
type Event struct {
	Backend string    // the backend's key, e.g. "http://127.0.0.1:9001"
	Healthy bool      // the new state
	Reason  string    // e.g. "tcp connect: connection refused", "2 consecutive successes"
	Time    time.Time // when the transition happened
	// Source is what decided: "active" (probes), "passive" (outlier
	// detection from real traffic) or "initial" (the startup round).
	Source string
}

// Status is the health of one backend as the admin API shows it.
type Status struct {
	Backend     string
	Healthy     bool      // the backend's current health flag
	Reason      string    // of the last transition; "" if it never changed
	Source      string    // of the last transition
	Since       time.Time // last transition, or when checking began
	Transitions uint64    // how many times its health changed

	ActiveChecks         bool      // probes are running
	Probes               uint64    // probes completed
	LastProbe            time.Time // when the last probe completed
	LastError            string    // reason of the last probe if it failed, else ""
	ConsecutiveFailures  int       // failed probes in a row
	ConsecutiveSuccesses int       // good probes in a row

	PassiveFailures int       // connect failures, resets and timeouts in a row
	Passive5xx      int       // 5xx responses in a row
	Ejected         bool      // a passive ejection is in force
	Ejections       uint64    // passive ejections so far
	EjectedUntil    time.Time // end of the current ejection's cooldown; zero if not ejected
}

// Transitions returns how many health transitions the checker has made.
func (c *Checker) Transitions() uint64 { return c.transitions.Load() }

// Recent returns the last RecentEvents transitions, oldest first.
func (c *Checker) Recent() []Event { return c.events.recent.List() }

// Status returns the health of b, and false if b is not checked.
func (c *Checker) Status(b *upstream.Backend) (Status, bool) {
	st := (*c.states.Load())[b]
	if st == nil {
		return Status{}, false
	}
	return st.status(), true
}

// Statuses returns the health of every checked backend, sorted by backend.
func (c *Checker) Statuses() []Status {
	states := *c.states.Load()
	out := make([]Status, 0, len(states))
	for _, st := range states {
		out = append(out, st.status())
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Backend, b.Backend) })
	return out
}

func (st *backendState) status() Status {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := Status{
		Backend:              st.b.String(),
		Healthy:              st.b.Healthy(),
		Reason:               st.reason,
		Source:               st.source,
		Since:                st.since,
		Transitions:          st.transitions,
		ActiveChecks:         st.spec != nil,
		Probes:               st.probes,
		LastProbe:            st.lastProbe,
		LastError:            st.lastError,
		ConsecutiveFailures:  st.failStreak,
		ConsecutiveSuccesses: st.okStreak,
		PassiveFailures:      int(st.fails.Load()),
		Passive5xx:           int(st.fives.Load()),
		Ejected:              st.ejected,
		Ejections:            st.ejections,
	}
	if st.ejected {
		s.EjectedUntil = st.ejectedUntil
	}
	return s
}

// eventLog keeps the recent transitions and hands every new one, in order,
// to a delivery goroutine, so that logging and the onEvent hook never run
// under a backend's lock or on a request's goroutine.
type eventLog struct {
	recent *ring.Ring[Event] // the last RecentEvents

	mu    sync.Mutex
	queue []Event // waiting for delivery

	wake chan struct{} // capacity 1: queue is not empty
	quit chan struct{}
	done chan struct{}
}

func (l *eventLog) start(deliver func(Event)) {
	l.recent = ring.New[Event](RecentEvents)
	l.wake = make(chan struct{}, 1)
	l.quit = make(chan struct{})
	l.done = make(chan struct{})
	go func() {
		defer close(l.done)
		var batch []Event
		for {
			select {
			case <-l.wake:
			case <-l.quit:
				batch = l.take(batch)
				for _, ev := range batch {
					deliver(ev)
				}
				return
			}
			batch = l.take(batch)
			for _, ev := range batch {
				deliver(ev)
			}
		}
	}()
}

// take swaps the queue with spare (emptied) and returns the queued events.
func (l *eventLog) take(spare []Event) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queue
	l.queue = spare[:0]
	return q
}

// stop delivers what is queued and ends the delivery goroutine. Events
// added afterwards are kept in the ring only.
func (l *eventLog) stop() {
	close(l.quit)
	<-l.done
}

func (l *eventLog) add(ev Event) {
	l.recent.Add(ev)
	l.mu.Lock()
	l.queue = append(l.queue, ev)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}
