package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// Target is one backend to check and how.
type Target struct {
	// Backend is the checked backend. The checker keys its state by this
	// pointer: backends are long-lived and reused across snapshots, so the
	// same address is always the same *Backend.
	Backend *upstream.Backend
	// Check is the backend's active health check with defaults applied
	// (config.Config.HealthCheckFor). Enabled false means no probes; the
	// backend still gets passive outlier detection.
	Check config.HealthCheck
	// TLS configures probes of an https backend (verification, CA, server
	// name); nil means the system roots and the backend's host name. It is
	// ignored for http backends. ALPN is dropped: probes speak HTTP/1.1.
	TLS *tls.Config
}

// Checker runs the active probes and the passive outlier detection of a set
// of backends and records their health transitions. Create it with
// NewChecker, give it targets with Update, and stop it with Close. All
// methods are safe for concurrent use.
type Checker struct {
	logger  *slog.Logger
	onEvent func(Event)

	// states is an immutable map replaced as a whole by Update and Close, so
	// that Observe finds a backend's state with one atomic load and no lock.
	states      atomic.Pointer[map[*upstream.Backend]*backendState]
	passive     atomic.Pointer[passiveConfig]
	transitions atomic.Uint64

	mu     sync.Mutex // serializes Update, InitialRound's start and Close
	closed bool
	ctx    context.Context // canceled by Close; parent of every backend's context
	cancel context.CancelFunc
	wg     sync.WaitGroup // probers, initial probes and cooldown timers

	closeOnce sync.Once
	events    eventLog
}

// backendState is the checker's view of one backend. The passive counters
// are atomics touched by Observe on the request path; everything else is
// guarded by mu and changes at most once per probe or ejection.
type backendState struct {
	b      *upstream.Backend
	ctx    context.Context // canceled when the backend leaves the checker
	cancel context.CancelFunc

	fails atomic.Int32  // consecutive connect failures, resets and timeouts
	fives atomic.Int32  // consecutive 5xx responses
	kinds atomic.Uint32 // bit per Outcome seen in the current run of fails

	mu      sync.Mutex
	removed bool // left the checker: no more results or transitions
	check   config.HealthCheck
	tls     *tls.Config
	spec    *probeSpec // compiled check; nil when active checks are off
	prober  *prober    // the running prober, nil when none
	vetted  bool       // an initial round has probed (or is probing) it

	activeDown bool // the active probes' verdict
	okStreak   int  // consecutive good probes
	failStreak int  // consecutive failed probes
	probes     uint64
	lastProbe  time.Time
	lastError  string

	ejected      bool // passive ejection in force
	cooldownOver bool // the ejection's cooldown has run out
	ejectedUntil time.Time
	ejectionLen  time.Duration
	ejections    uint64
	level        int       // doublings of the next cooldown
	lastRecovery time.Time // when the last ejection ended
	ejectGen     uint64    // identifies the current ejection for its timer

	reason      string // of the last transition
	source      string
	since       time.Time
	transitions uint64
}

// up is the combined verdict: active probes say up and no passive ejection
// is in force.
func (st *backendState) up() bool { return !st.activeDown && !st.ejected }

type prober struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *prober) stop() {
	p.cancel()
	<-p.done
}

// NewChecker returns a checker with no targets and the default passive
// settings (config.Passive's documented defaults) until SetPassive is
// called. logger receives one line per transition (nil: discard); onEvent,
// if not nil, is called with every transition, in order, from one
// goroutine of the checker's own, so it may block briefly and may call the
// checker's methods other than Close.
func NewChecker(logger *slog.Logger, onEvent func(Event)) *Checker {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Checker{logger: logger, onEvent: onEvent}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.states.Store(&map[*upstream.Backend]*backendState{})
	c.SetPassive(config.Passive{})
	c.events.start(c.deliver)
	return c
}

// Update makes targets the checked set. It is a diff: a backend not yet
// checked gets a prober (first probe at a random point of its first
// interval); a backend no longer listed has its prober stopped and its state
// dropped; a backend whose Check or TLS changed gets its prober restarted
// with the new settings. Backends that stay keep their health state,
// counters and any ejection in force. A backend listed twice is checked
// with its first entry. Update returns after removed probers have stopped.
// After Close it does nothing.
func (c *Checker) Update(targets []Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	old := *c.states.Load()
	next := make(map[*upstream.Backend]*backendState, len(targets))
	for _, t := range targets {
		if t.Backend == nil {
			continue
		}
		if _, dup := next[t.Backend]; dup {
			c.logger.Error("health: backend listed twice, keeping the first entry", "backend", t.Backend.String())
			continue
		}
		if st := old[t.Backend]; st != nil {
			c.reconfigure(st, t)
			next[t.Backend] = st
		} else {
			next[t.Backend] = c.add(t)
		}
	}
	for b, st := range old {
		if _, stays := next[b]; !stays {
			c.remove(st)
		}
	}
	c.states.Store(&next)
}

// add creates the state of a new backend and starts its prober. The
// backend's current health is kept: one that is down needs Rise good probes.
// c.mu is held.
func (c *Checker) add(t Target) *backendState {
	st := &backendState{b: t.Backend, since: time.Now()}
	st.ctx, st.cancel = context.WithCancel(c.ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	c.configure(st, t)
	st.activeDown = st.spec != nil && !t.Backend.Healthy()
	if st.up() && !t.Backend.Healthy() {
		c.transition(st, true, time.Now(), "active", "active checks disabled")
	}
	c.logger.Debug("health: checking backend", "backend", st.b.String(), "active", st.spec != nil)
	return st
}

// reconfigure restarts the prober of a staying backend if its check
// changed. c.mu is held.
func (c *Checker) reconfigure(st *backendState, t Target) {
	st.mu.Lock()
	if reflect.DeepEqual(st.check, t.Check) && st.tls == t.TLS {
		st.mu.Unlock()
		return
	}
	old := st.prober
	st.prober = nil
	st.mu.Unlock()
	if old != nil {
		old.stop() // without st.mu: the prober may be waiting for it
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	c.configure(st, t)
	if st.spec == nil {
		// Active checks are off: their verdict no longer holds, and an
		// ejection whose cooldown is over no longer waits for probes.
		st.activeDown, st.okStreak, st.failStreak = false, 0, 0
		now := time.Now()
		if st.ejected {
			c.tryRecover(st, now, "active")
		} else if st.up() && !st.b.Healthy() {
			c.transition(st, true, now, "active", "active checks disabled")
		}
	}
}

// configure stores t's check in st and starts a prober when active checks
// are on. st.mu and c.mu are held; st has no running prober.
func (c *Checker) configure(st *backendState, t Target) {
	st.check, st.tls, st.spec = t.Check, t.TLS, nil
	if !t.Check.IsEnabled() {
		return
	}
	spec, problems := newProbeSpec(t)
	for _, p := range problems {
		c.logger.Error("health: invalid health check, using a default", "backend", st.b.String(), "problem", p)
	}
	st.spec = spec
	ctx, cancel := context.WithCancel(st.ctx)
	p := &prober{cancel: cancel, done: make(chan struct{})}
	st.prober = p
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(p.done)
		c.probeLoop(ctx, st, p, spec)
	}()
}

// remove stops a backend's prober and timers and drops its state. c.mu is
// held.
func (c *Checker) remove(st *backendState) {
	st.mu.Lock()
	st.removed = true
	p := st.prober
	st.prober = nil
	st.mu.Unlock()
	st.cancel()
	if p != nil {
		<-p.done
	}
	c.logger.Debug("health: stopped checking backend", "backend", st.b.String())
}

// Close stops every prober and timer, waits for them and for the delivery
// of pending events, and makes Update, InitialRound and Observe no-ops.
func (c *Checker) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		states := *c.states.Load()
		c.states.Store(&map[*upstream.Backend]*backendState{})
		for _, st := range states {
			st.mu.Lock()
			st.removed = true
			st.prober = nil
			st.mu.Unlock()
		}
		c.mu.Unlock()
		c.cancel()
		c.wg.Wait()
		c.events.stop()
	})
}

// probeLoop probes one backend until ctx ends: first at a random point of
// the first interval, then every interval plus jitter.
func (c *Checker) probeLoop(ctx context.Context, st *backendState, p *prober, spec *probeSpec) {
	timer := time.NewTimer(spec.firstDelay())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		err := spec.run(ctx)
		if ctx.Err() != nil {
			return
		}
		c.applyProbe(st, p, err, false)
		timer.Reset(spec.nextDelay())
	}
}

// firstDelay spreads the first probes of many backends over one interval.
func (s *probeSpec) firstDelay() time.Duration {
	return time.Duration(rand.Int64N(int64(s.interval)))
}

// nextDelay is the interval lengthened by a random fraction up to jitter.
func (s *probeSpec) nextDelay() time.Duration {
	return s.interval + time.Duration(rand.Float64()*s.jitter*float64(s.interval))
}

// applyProbe records one probe result. p is the prober that made it (nil
// for an initial-round probe); a result of a prober that was replaced is
// dropped. initial marks the verdict of an initial round: a failure marks
// the backend down at once.
func (c *Checker) applyProbe(st *backendState, p *prober, err error, initial bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.removed || st.spec == nil || (p != nil && st.prober != p) {
		return
	}
	spec := st.spec
	now := time.Now()
	source := "active"
	if initial {
		source = "initial"
	}
	st.probes++
	st.lastProbe = now

	if err != nil {
		st.lastError = err.Error()
		st.okStreak = 0
		st.failStreak++
		if !st.activeDown && (initial || st.failStreak >= spec.fall) {
			st.activeDown = true
			if st.b.Healthy() {
				c.transition(st, false, now, source, st.lastError)
			}
		}
		return
	}

	st.lastError = ""
	st.failStreak = 0
	st.okStreak++
	if st.activeDown && st.okStreak >= spec.rise {
		st.activeDown = false
	}
	if st.ejected {
		c.tryRecover(st, now, source)
		return
	}
	if st.up() && !st.b.Healthy() {
		c.transition(st, true, now, source, consecutiveSuccesses(st.okStreak))
	}
}

// initialRound is one InitialRound call: until it is over, its probes'
// results are initial verdicts; afterwards they count as ordinary probes.
type initialRound struct {
	mu   sync.Mutex
	over bool
}

// InitialRound probes, concurrently and once, every target that no initial
// round has probed yet (at startup: all of them; after a reload: the ones
// Update just added), and waits until all have answered, bound has passed
// or ctx is done, whichever comes first.
//
// A backend whose first probe fails within the bound is marked down at once
// (source "initial"), without waiting for Fall failures: nothing has been
// sent to it yet, so one failed probe proves it down and no request has to
// find that out. A backend that has not answered within the bound stays
// healthy, so that the first requests are never refused only because
// probes have not finished; its probe goes on and its result then counts as
// an ordinary probe toward Fall. Backends with active checks off are not
// probed. The regular probers run independently of the round.
func (c *Checker) InitialRound(ctx context.Context, bound time.Duration) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	round := &initialRound{}
	states := *c.states.Load()
	done := make(chan struct{}, len(states)) // never blocks a probe
	n := 0
	for _, st := range states {
		st.mu.Lock()
		spec := st.spec
		skip := st.removed || spec == nil || st.vetted
		st.vetted = true
		st.mu.Unlock()
		if skip {
			continue
		}
		n++
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			err := spec.run(st.ctx)
			if st.ctx.Err() == nil {
				round.mu.Lock()
				c.applyProbe(st, nil, err, !round.over)
				round.mu.Unlock()
			}
			done <- struct{}{}
		}()
	}
	c.mu.Unlock()

	timer := time.NewTimer(bound)
	defer timer.Stop()
wait:
	for range n {
		select {
		case <-done:
		case <-timer.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	round.mu.Lock()
	round.over = true
	round.mu.Unlock()
}

// transition sets the backend's health and records the change as an event.
// st.mu is held.
func (c *Checker) transition(st *backendState, up bool, now time.Time, source, reason string) {
	if !st.b.SetHealthy(up) {
		return
	}
	st.reason, st.source, st.since = reason, source, now
	st.transitions++
	c.transitions.Add(1)
	c.events.add(Event{Backend: st.b.String(), Healthy: up, Reason: reason, Time: now, Source: source})
}

// deliver logs one transition and passes it to onEvent. It runs on the
// event goroutine only, in transition order.
func (c *Checker) deliver(ev Event) {
	if ev.Healthy {
		c.logger.Info("backend up", "backend", ev.Backend, "reason", ev.Reason, "source", ev.Source)
	} else {
		c.logger.Warn("backend down", "backend", ev.Backend, "reason", ev.Reason, "source", ev.Source)
	}
	if c.onEvent != nil {
		c.onEvent(ev)
	}
}

// consecutiveSuccesses is the reason of a recovery by probes.
func consecutiveSuccesses(n int) string {
	if n == 1 {
		return "1 consecutive success"
	}
	return fmt.Sprintf("%d consecutive successes", n)
}
