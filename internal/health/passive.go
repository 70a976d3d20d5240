package health

import (
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// Outcome is how one attempt to forward a request to a backend ended, as
// the proxy reports it to Observe.
type Outcome int

const (
	// Success: a response other than a 5xx arrived.
	Success Outcome = iota
	// ConnectFailure: the dial was refused or timed out; nothing was sent.
	ConnectFailure
	// Reset: the connection was reset or closed before a response arrived.
	Reset
	// Timeout: no response header arrived within the response header
	// timeout.
	Timeout
	// ServerError: a 5xx response arrived. It counts only when
	// Passive.Consecutive5xx > 0, and in a run of its own.
	ServerError
)

// String returns the outcome's name as used in ejection reasons.
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case ConnectFailure:
		return "connect failure"
	case Reset:
		return "reset"
	case Timeout:
		return "timeout"
	case ServerError:
		return "5xx response"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// passiveConfig is config.Passive compiled for Observe.
type passiveConfig struct {
	enabled  bool
	failures int32 // 0: connect failures, resets and timeouts never eject
	fives    int32 // 0: 5xx responses never eject
	base     time.Duration
	max      time.Duration
}

// SetPassive replaces the passive (outlier detection) settings; Observe
// sees the new ones at once. Zero durations and a zero ConsecutiveFailures
// take the documented defaults; Consecutive5xx 0 ignores 5xx responses.
// Ejections in force run their course with the cooldown they started with.
func (c *Checker) SetPassive(p config.Passive) {
	pc := &passiveConfig{
		enabled:  p.IsEnabled(),
		failures: int32(min(max(p.ConsecutiveFailures, 0), 1<<30)),
		fives:    int32(min(max(p.Consecutive5xx, 0), 1<<30)),
		base:     p.BaseEjection.D(),
		max:      p.MaxEjection.D(),
	}
	if pc.failures == 0 {
		pc.failures = config.DefaultConsecutiveFailures
	}
	if pc.base <= 0 {
		pc.base = config.DefaultBaseEjection
	}
	if pc.max <= 0 {
		pc.max = max(config.DefaultMaxEjection, pc.base)
	}
	pc.max = max(pc.max, pc.base)
	c.passive.Store(pc)
}

// Observe records the outcome of one attempt to forward a request to b. The
// proxy calls it after every attempt; it takes no lock and allocates
// nothing unless the outcome ejects the backend. Unknown backends are
// ignored.
//
// A Success resets both runs of failures. ConnectFailure, Reset and Timeout
// add to one run; ServerError to another, and only when 5xx detection is
// on. A run reaching its threshold ejects a backend that is up: it is marked
// down for a cooldown of BaseEjection, doubled on each further ejection up
// to MaxEjection. The doubling starts over once the backend has stayed in
// service for MaxEjection since its last ejection ended. A backend that is
// already down is not ejected (its run starts over), so traffic it gets in
// panic mode does not lengthen its cooldowns.
//
// An ejected backend comes back when its cooldown is over and, if active
// checks are on for it, its probes (which keep running) have succeeded Rise
// times in a row since the ejection, whichever is later.
func (c *Checker) Observe(b *upstream.Backend, o Outcome) {
	st := (*c.states.Load())[b]
	if st == nil {
		return
	}
	if o == Success {
		// Loads first: a backend that keeps succeeding writes nothing, so
		// its counters' cache line is not bounced between cores.
		if st.fails.Load() != 0 {
			st.fails.Store(0)
		}
		if st.fives.Load() != 0 {
			st.fives.Store(0)
		}
		return
	}
	p := c.passive.Load()
	if !p.enabled {
		return
	}
	switch o {
	case ConnectFailure, Reset, Timeout:
		n := st.fails.Add(1)
		if n == 1 {
			st.kinds.Store(1 << o)
		} else {
			st.kinds.Or(1 << o)
		}
		if n >= p.failures {
			c.eject(st, p, o)
		}
	case ServerError:
		if p.fives > 0 && st.fives.Add(1) >= p.fives {
			c.eject(st, p, o)
		}
	}
}

// eject ejects st after a run of failures of o's kind reached its
// threshold.
func (c *Checker) eject(st *backendState, p *passiveConfig, o Outcome) {
	st.mu.Lock()
	defer st.mu.Unlock()
	kinds := st.kinds.Load()
	if o == ServerError {
		st.fives.Store(0)
	} else {
		st.fails.Store(0)
	}
	if st.removed || !st.up() {
		return
	}
	reason := fmt.Sprintf("passive: %d consecutive 5xx responses", p.fives)
	if o != ServerError {
		reason = fmt.Sprintf("passive: %d consecutive %s", p.failures, failureKinds(kinds, p.failures == 1))
	}

	now := time.Now()
	if st.level > 0 && now.Sub(st.lastRecovery) >= p.max {
		st.level = 0 // in service for a whole MaxEjection: start over
	}
	d := p.base
	for i := 0; i < st.level && d < p.max; i++ {
		d *= 2
	}
	d = min(d, p.max)
	if d < p.max {
		st.level++
	}

	st.ejected = true
	st.cooldownOver = false
	st.ejectedUntil = now.Add(d)
	st.ejectionLen = d
	st.ejections++
	st.ejectGen++
	st.okStreak = 0 // recovery needs Rise good probes after the ejection
	c.transition(st, false, now, "passive", reason)

	gen := st.ejectGen
	c.wg.Add(1) // before Close's Wait: Close marks st removed under st.mu first
	go func() {
		defer c.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-st.ctx.Done():
		case <-t.C:
			c.cooldownEnded(st, gen)
		}
	}()
}

// failureKinds names the failures of a run: "connect failures" ("connect
// failure" when one), or "failures (connect failure, reset)" for a mix.
func failureKinds(mask uint32, one bool) string {
	if bits.OnesCount32(mask) == 1 {
		switch o := Outcome(bits.TrailingZeros32(mask)); o {
		case ConnectFailure, Reset, Timeout:
			if one {
				return o.String()
			}
			return o.String() + "s"
		}
	}
	var names []string
	for _, o := range []Outcome{ConnectFailure, Reset, Timeout} {
		if mask&(1<<o) != 0 {
			names = append(names, o.String())
		}
	}
	if len(names) == 0 {
		return "failures"
	}
	return "failures (" + strings.Join(names, ", ") + ")"
}

// cooldownEnded is the end of ejection gen's cooldown.
func (c *Checker) cooldownEnded(st *backendState, gen uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.removed || !st.ejected || st.ejectGen != gen {
		return
	}
	st.cooldownOver = true
	c.tryRecover(st, time.Now(), "passive")
}

// tryRecover ends the ejection if its cooldown is over and, with active
// checks on, Rise good probes followed it. st.mu is held.
func (c *Checker) tryRecover(st *backendState, now time.Time, source string) {
	if !st.ejected || !st.cooldownOver {
		return
	}
	reason := fmt.Sprintf("passive: ejection of %s over", st.ejectionLen)
	if st.spec != nil {
		if st.okStreak < st.spec.rise {
			return
		}
		reason += ", " + consecutiveSuccesses(st.okStreak)
	}
	st.ejected = false
	st.lastRecovery = now
	if st.up() && !st.b.Healthy() {
		c.transition(st, true, now, source, reason)
	}
}
