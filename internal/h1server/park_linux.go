//go:build linux

package h1server

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// parker holds the idle connections of a lean server (see
// Server.LeanAbove) without a goroutine each. A goroutine waiting in a read
// keeps its stack, 8 KiB once it has run the proxy: at thousands of idle
// connections the stacks alone are more memory than everything else a
// connection holds. A connection that parks is registered, at its first
// park and for its life, with an epoll instance of the parker's own;
// that instance is itself watched by Go's poller, so one goroutine (run)
// waits for all of them, and hands each parked connection that becomes
// readable (or hangs up) to a worker goroutine, which goes on where the
// parked one stopped (conn.resume) and, once the connection parks again,
// waits for the next one.
//
// The registration is edge-triggered: each arrival of bytes is reported
// once, whether the connection is parked or not, and parking again needs
// no system call. What a report says is kept on the connection (conn.edge,
// conn.hup) until a read answers it, and a connection with a report
// unanswered does not park (see park). A connection handed to another
// owner leaves (conn.leaveParker); one that closes leaves on its own.
//
// The cost: one epoll_ctl per connection (two if it is handed over), a
// hand-off to a worker per wake, and the epoll_wait that reports a batch
// of wakes. A connection that parked once stays registered when the server
// is no longer lean (and waits in a read): each of its requests is then
// reported to the parker too, for nothing: a share of run's batched
// epoll_wait, a lock and a lookup, but no epoll_ctl (dropping and adding
// the registration each time the server crosses its threshold would be
// two).
type parker struct {
	ep   *os.File // the epoll instance
	raw  syscall.RawConn
	epfd int
	// sweepEvery is how often the connections parked past their time
	// (conn.parkUntil) are closed: an eighth of the shortest wait bound,
	// within 10 ms … 1 s; 0 when the server bounds no wait.
	sweepEvery time.Duration

	mu     sync.Mutex
	swept  time.Time        // when the last sweep ran (tests wait for one)
	conns  map[uint64]*conn // registered connections (parked or not), by parkID
	nextID uint64
	closed bool
	done   chan struct{} // closed when run returns
	// workers are goroutines that served a connection until it parked and
	// wait for the next one to resume (most recently idle last): a new
	// goroutine would start with a small stack and grow it again.
	workers []chan *conn
	// No worker goroutine starts while running (idle or not) is at
	// workerLimit (workerBase to start from, maxWorkersPerCPU per CPU). A
	// connection woken while none is idle then waits in queue, and the
	// first worker done with its connection takes it without parking
	// first: at thousands of connections that saves a park and a wake-up
	// per request, and keeps fewer goroutines' stacks and connections warm
	// in the caches. The limit doubles, as admission's does, while the
	// queue waits and the CPUs were idle lately or no worker took from it
	// between two checks (every checkEvery): then the workers wait for
	// something else than the CPU (slow backends), and more can go. It
	// halves at such a check when the CPUs were busy, and with
	// admission's; a worker above it ends once done with its connection.
	queue       []*conn // from qhead on
	qhead       int
	running     int // worker goroutines
	workerLimit int
	workerBase  int
	taken       int           // connections workers took from queue (run compares)
	checkEvery  time.Duration // queueCheckEvery when the parker started
	// Admission: active counts the connections resumed and not yet back
	// to waiting for a request (conn.admitted). At limit the parker takes
	// no more wake-ups from the epoll instance until one is back
	// (signalled on room): under a flood of ready connections, requests
	// wait in the kernel's socket buffers rather than as runnable
	// goroutines holding read buffers and backend connections. When none
	// comes back for admitWait, the admitted requests are waiting for
	// something else than the CPU (slow backends, slow clients): the
	// limit doubles, so that they cannot hold the others off. It doubles
	// at once while the CPUs were idle more than a tenth of the time
	// lately (idleMeter): then the admitted ones wait for something else
	// than the CPU, and more can go. It halves again, down to base, while
	// under a quarter of it is used, or when it is reached while the CPUs
	// were busy: the limit settles where the CPUs just stay busy.
	active     int
	limit      int
	base       int           // the limit to start from
	roomWanted bool          // mu: run waits for room
	room       chan struct{} // a connection went back to waiting
	quit       chan struct{} // closed by close
	admitWait  time.Duration // admitWait when the parker started

	// turn lets Go's poller run between batches (nil: the system gave no
	// socket pair, or Go's poller would not watch it; run then only
	// yields).
	turn      *pollerTurn
	turnEvery time.Duration // pollerTurnEvery when the parker started

	// ctl's argument (made by park) and result.
	ctlFn  func(fd uintptr)
	ctlEv  syscall.EpollEvent
	ctlErr error
}

// epollET is syscall.EPOLLET as the event mask's type (syscall declares
// it negative).
const epollET = 1 << 31

// maxIdleWorkers is how many goroutines wait for a connection to resume
// (their stacks, 8 KiB each, are what parking saves; the rest end).
const maxIdleWorkers = 128

// Admission (see parker.active): the limit to start from, per CPU the Go
// scheduler uses, and how long no admitted connection may come back before
// the limit doubles. Variables for tests. Measured at 2000 busy
// connections on one CPU (docs/BENCHMARKS.md): 64 gave 16 % more requests
// per CPU-second than 256 and less memory; 16 left the CPU idle at times.
var (
	maxActivePerCPU = 64
	admitWait       = 10 * time.Millisecond
)

// maxWorkersPerCPU is the worker limit to start from, per CPU the Go
// scheduler uses (see parker.queue); a variable for tests. Measured at
// 2000 busy connections on one CPU (docs/BENCHMARKS.md): 32 gave 16 % and
// 19 % more requests per CPU-second than a goroutine for every woken
// connection (two A/Bs); 16 did as well within the noise, 64 a little
// less, and 32 starts with more room for handlers that wait on I/O.
var maxWorkersPerCPU = 32

// queueCheckEvery is how often run looks at a waiting queue (see
// parker.queue); a variable for tests.
var queueCheckEvery = idleEvery

// pollerTurnEvery is how long after its last wait for Go's poller the
// parker waits for it again, rather than only yielding, before it takes
// the next batch of woken connections (see pollerTurn). Measured at 512
// busy connections (docs/BENCHMARKS.md): waiting after every batch cost
// 6–9 % of the requests per CPU-second; once a millisecond moved them by
// −5 to +5 % in three A/Bs (within their spread) and cut p99 by a sixth.
// A variable for tests.
var pollerTurnEvery = time.Millisecond

// parkBatch is the most reports run takes from the epoll instance at once
// (as Go's poller); a variable for tests.
var parkBatch = 128

// newParker starts a parker for waits bounded by at least bound (0: none
// is); nil if the system will not give one (the server then keeps idle
// connections waiting in a read).
func newParker(bound time.Duration) *parker {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil
	}
	f := os.NewFile(uintptr(fd), "h1server-park")
	raw, err := f.SyscallConn()
	// A deadline can be set only on a file Go's poller watches.
	if err != nil || f.SetReadDeadline(time.Time{}) != nil {
		f.Close()
		return nil
	}
	p := &parker{
		ep: f, raw: raw, epfd: fd,
		conns:     make(map[uint64]*conn),
		done:      make(chan struct{}),
		limit:     maxActivePerCPU * runtime.GOMAXPROCS(0),
		base:      maxActivePerCPU * runtime.GOMAXPROCS(0),
		room:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		admitWait: admitWait,
	}
	p.workerBase = max(1, maxWorkersPerCPU*runtime.GOMAXPROCS(0))
	p.workerLimit, p.checkEvery = p.workerBase, queueCheckEvery
	p.ctlFn = p.ctl
	p.turn, p.turnEvery = newPollerTurn(), pollerTurnEvery
	if bound > 0 {
		p.sweepEvery = min(max(bound/8, 10*time.Millisecond), time.Second)
	}
	go p.run()
	return p
}

// park parks c, waiting for its next request, to be resumed when it
// becomes readable; c is registered at its first park. False if it cannot
// be: the parker is closed or the system refused (the caller waits in a
// read as without a parker), or a report about c is unanswered (see
// conn.edge: the caller reads first).
// Once park returns true, c belongs to the goroutine that resumes it (or
// closes it): the caller must not touch it any more.
func (p *parker) park(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	register := c.parkID == 0
	if register {
		p.nextID++
		c.parkID = p.nextID
		p.conns[c.parkID] = c
	}
	c.parkUntil = time.Time{}
	if c.idleWait > 0 {
		c.parkUntil = time.Now().Add(c.idleWait)
	}
	c.parked.Store(true)
	if register {
		// Edge-triggered, for the connection's life: each arrival of
		// bytes is reported once (and bytes there already, at once).
		// No system call is needed to park again.
		p.ctlEv = syscall.EpollEvent{
			Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET,
			Fd:     int32(uint32(c.parkID)),
			Pad:    int32(uint32(c.parkID >> 32)),
		}
		// Control holds the socket open: its number cannot name another one.
		if err := c.raw.Control(p.ctlFn); err != nil || p.ctlErr != nil {
			if !c.unpark() {
				// A shutdown took it meanwhile (closeIdle and Close unpark
				// without mu): it is theirs to close.
				return true
			}
			delete(p.conns, c.parkID)
			c.parkID = 0
			return false
		}
	}
	// Bytes reported since the last read attempt began: that attempt may
	// not have read them, and their report is gone. The caller reads.
	if (c.edge.Load() || c.hup.Load()) && c.unpark() {
		return false
	}
	return true
}

// unregister forgets c and takes its socket out of the epoll instance
// (see conn.leaveParker).
func (p *parker) unregister(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c.parkID)
	if !p.closed { // (closed, the instance's number may name another file now)
		c.raw.Control(func(fd uintptr) {
			syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		})
	}
}

// ctl registers the socket fd as park asks (a syscall.RawConn control
// function, made once: a closure per registration would be an allocation).
func (p *parker) ctl(fd uintptr) {
	p.ctlErr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &p.ctlEv)
}

// forget drops c, which is ending, from the registered connections. Its
// socket leaves the epoll instance when it is closed.
func (p *parker) forget(c *conn) {
	p.mu.Lock()
	delete(p.conns, c.parkID)
	p.mu.Unlock()
}

// run waits for parked connections to become readable and resumes them,
// and sweeps out those idle for too long, until the parker is closed.
func (p *parker) run() {
	defer close(p.done)
	defer func() {
		// Ended by an error of the epoll instance rather than by close:
		// no parked connection could be woken any more.
		for _, c := range p.stop() {
			c.finish()
		}
		if p.turn != nil {
			p.turn.closeWriter()
		}
	}()
	events := make([]syscall.EpollEvent, parkBatch)
	batch := events
	var n int
	var werr error
	poll := func(fd uintptr) bool {
		for {
			n, werr = syscall.EpollWait(int(fd), batch, 0)
			if werr != syscall.EINTR {
				return n > 0 || werr != nil
			}
		}
	}
	var nextSweep time.Time
	if p.sweepEvery > 0 {
		nextSweep = time.Now().Add(p.sweepEvery)
	}
	var deadline time.Time // the epoll instance's read deadline in force
	var idle idleMeter
	idle.idle() // starts it
	admit := time.NewTimer(idleEvery)
	defer admit.Stop()
	var waited time.Duration // without room, and nothing came back
	var checked time.Time    // the queue's last check
	lastTaken := -1          // taken at that check
	var turnAt time.Time     // when run last waited for the poller's turn
	for {
		// Also while waiting for room: a connection idle too long is
		// closed even when admission holds the others back.
		if p.sweepEvery > 0 {
			if now := time.Now(); !now.Before(nextSweep) {
				p.sweep(now)
				nextSweep = now.Add(p.sweepEvery)
			}
		}
		// One reading of the CPUs for the queue's check and admission's.
		idleNow, fresh := idle.idle()
		// While connections wait in queue for a worker, look every
		// checkEvery whether the workers wait for something else than
		// the CPU. The wait for reports below ends at the next sweep and
		// at the next look.
		dl := nextSweep
		if waiting, taken := p.queued(); waiting {
			now := time.Now()
			if now.Sub(checked) >= p.checkEvery {
				switch {
				case idleNow || taken == lastTaken:
					p.growWorkers()
				case fresh:
					p.shrinkWorkers() // the CPUs are busy: fewer at once
				}
				checked, lastTaken = now, taken
			}
			if look := now.Add(min(p.checkEvery, idleEvery)); dl.IsZero() || look.Before(dl) {
				dl = look
			}
		} else {
			lastTaken = -1
		}
		if !dl.Equal(deadline) {
			p.ep.SetReadDeadline(dl)
			deadline = dl
		}
		k := p.roomFor(len(events))
		if k == 0 {
			switch {
			case idleNow || waited >= p.admitWait:
				p.grow()
				waited = 0
				continue
			case fresh:
				p.shrink() // the CPUs are busy: no more at once than needed
			}
			// Waits in slices, to look at the CPUs (and sweep) again.
			admit.Reset(idleEvery)
			select {
			case <-p.room:
				waited = 0
			case <-admit.C:
				waited += idleEvery
			case <-p.quit:
				return
			}
			continue
		}
		waited = 0
		batch = events[:k]
		err := p.raw.Read(poll)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
		case err != nil || werr != nil:
			return // closed
		default:
			for _, ev := range batch[:n] {
				p.wake(uint64(uint32(ev.Fd))|uint64(uint32(ev.Pad))<<32, ev.Events)
			}
			// The connections woken go first: taking the next batch at
			// once would admit every ready connection together, ahead
			// of the responses of those admitted before. Once turnEvery
			// has passed since the last time, they go until Go's poller
			// has run: yielding alone, run would keep the run queue from
			// emptying while connections keep coming, and with it the
			// poller from waking the goroutines that wait on sockets
			// (see pollerTurn). (Sweeps and the queue's checks wait as
			// long: a round of the run queue, at most the runtime's
			// own 10 ms.)
			if p.turn != nil && time.Since(turnAt) >= p.turnEvery && p.turn.wait() {
				turnAt = time.Now()
			} else {
				runtime.Gosched()
			}
		}
	}
}

// wake records the report events of the connection registered as id, and
// resumes it if it is parked.
func (p *parker) wake(id uint64, events uint32) {
	p.mu.Lock()
	c := p.conns[id]
	if c == nil {
		p.mu.Unlock()
		return
	}
	if events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		c.hup.Store(true)
	}
	c.edge.Store(true)
	// Its request came: Shutdown lets it be served (set first, so that
	// Shutdown never sees it neither parked nor woken).
	was := c.woken.Swap(true)
	if !c.unpark() {
		if !was { // (one woken and not yet read stays so)
			c.woken.Store(false)
		}
		p.mu.Unlock()
		return // active: it reads before it parks again
	}
	p.active++
	c.admitted = true
	if n := len(p.workers); n > 0 {
		w := p.workers[n-1]
		p.workers = p.workers[:n-1]
		p.mu.Unlock()
		w <- c
		return
	}
	if p.running >= p.workerLimit {
		p.queue = append(p.queue, c) // the first worker done takes it
		p.mu.Unlock()
		return
	}
	p.running++
	p.mu.Unlock()
	go p.work(c, nil)
}

// queued reports whether connections wait in queue, and how many workers
// took from it so far (growWorkers' own starts not counted: they are no
// sign that the workers move).
func (p *parker) queued() (bool, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue) > p.qhead, p.taken
}

// dequeue takes the connection that waited longest in queue; nil if none
// does. p.mu is held.
func (p *parker) dequeue() *conn {
	if p.qhead == len(p.queue) {
		return nil
	}
	c := p.queue[p.qhead]
	p.queue[p.qhead] = nil
	p.qhead++
	switch {
	case p.qhead == len(p.queue):
		p.queue, p.qhead = p.queue[:0], 0
	case p.qhead >= 1024 && p.qhead*2 >= len(p.queue):
		// Taken from the front, added at the back: the slice moves down
		// now and then rather than growing for ever.
		n := copy(p.queue, p.queue[p.qhead:])
		clear(p.queue[n:])
		p.queue, p.qhead = p.queue[:n], 0
	}
	return c
}

// growWorkers doubles the worker limit and starts workers for the
// connections waiting in queue, up to it.
func (p *parker) growWorkers() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.workerLimit *= 2
	for p.running < p.workerLimit {
		c := p.dequeue()
		if c == nil {
			break
		}
		p.running++
		go p.work(c, nil)
	}
}

// work resumes c, then, while the parker needs it, the connections wake
// gives it on w.
func (p *parker) work(c *conn, w chan *conn) {
	defer func() { // (also if a handler ends the goroutine: runtime.Goexit)
		p.mu.Lock()
		p.running--
		p.mu.Unlock()
	}()
	for {
		c.resume()
		if w == nil {
			w = make(chan *conn, 1)
		}
		p.mu.Lock()
		if !p.closed && p.running <= p.workerLimit {
			if c = p.dequeue(); c != nil {
				p.taken++
				p.mu.Unlock()
				continue
			}
		}
		if p.closed || len(p.workers) >= maxIdleWorkers || p.running > p.workerLimit {
			p.mu.Unlock()
			return
		}
		p.workers = append(p.workers, w)
		p.mu.Unlock()
		if c = <-w; c == nil {
			return // closed
		}
	}
}

// roomFor returns how many more connections may be resumed now, at most
// k; 0 also records that run waits for room.
func (p *parker) roomFor(k int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	k = min(k, p.limit-p.active)
	if k <= 0 {
		p.roomWanted = true
		return 0
	}
	return k
}

// grow doubles the admission limit.
func (p *parker) grow() {
	p.mu.Lock()
	p.limit *= 2
	p.mu.Unlock()
}

// shrinkWorkers halves the worker limit, down to workerBase; a worker
// above it ends once done with its connection.
func (p *parker) shrinkWorkers() {
	p.mu.Lock()
	p.halveWorkersLocked()
	p.mu.Unlock()
}

// halveWorkersLocked is shrinkWorkers with p.mu held.
func (p *parker) halveWorkersLocked() {
	p.workerLimit = max(p.workerLimit/2, p.workerBase)
}

// shrink halves the admission limit, down to base, and the worker limit,
// down to workerBase.
func (p *parker) shrink() {
	p.mu.Lock()
	p.limit = max(p.limit/2, p.base)
	p.halveWorkersLocked()
	p.mu.Unlock()
}

// idleMeter tells whether the process left its CPUs (GOMAXPROCS of them)
// idle lately: the CPU time it used (getrusage: every thread, user and
// system) against the wall time, over at least idleEvery. (The runtime's
// own /cpu/classes metrics change only at each GC.)
type idleMeter struct {
	at      time.Time
	cpu     time.Duration // the process's CPU time at at
	wasIdle bool
}

// idleEvery is the shortest time a reading covers; idleShare, the share of
// the CPUs' time left unused above which they count as idle.
const idleEvery = 5 * time.Millisecond

var idleShare = 0.1 // a variable for tests

// idle reports whether the CPUs were idle more than idleShare of the time
// covered by the last reading, and whether that reading is a new one
// (the first reading only starts the meter).
func (m *idleMeter) idle() (idle, fresh bool) {
	now := time.Now()
	wall := now.Sub(m.at)
	if wall < idleEvery {
		return m.wasIdle, false
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return false, false
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	started := !m.at.IsZero()
	if started {
		avail := float64(wall) * float64(runtime.GOMAXPROCS(0))
		m.wasIdle = avail-float64(cpu-m.cpu) > idleShare*avail
	}
	m.at, m.cpu = now, cpu
	return m.wasIdle, started
}

// leave counts a resumed connection out of the admitted ones: it is back
// to waiting for a request, or ended.
func (p *parker) leave(c *conn) {
	p.mu.Lock()
	c.admitted = false
	p.active--
	if p.limit > p.base && p.active < p.limit/4 {
		p.limit /= 2
		p.halveWorkersLocked()
	}
	wanted := p.roomWanted && p.active < p.limit
	if wanted {
		p.roomWanted = false
	}
	p.mu.Unlock()
	if wanted {
		select {
		case p.room <- struct{}{}:
		default:
		}
	}
}

// sweep closes the connections parked past their time: the idle timeout
// (or, before the first request, the header timeout).
func (p *parker) sweep(now time.Time) {
	var expired []*conn
	p.mu.Lock()
	p.swept = now
	for _, c := range p.conns {
		// One whose next request came in time, held back by admission,
		// is not idle: it waits to be resumed.
		if c.parked.Load() && !c.parkUntil.IsZero() && !now.Before(c.parkUntil) && !c.readable() && c.unpark() {
			expired = append(expired, c)
		}
	}
	p.mu.Unlock()
	for _, c := range expired {
		c.finish()
	}
}

// readable reports whether bytes (or the end) wait to be read on c.
func (c *conn) readable() bool {
	var ok bool
	c.raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = err == nil && n >= 0 // n == 0: the client closed
	})
	return ok
}

// parkedConns counts the connections parked now.
func (p *parker) parkedConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.conns {
		if c.parked.Load() {
			n++
		}
	}
	return n
}

// close stops the parker: the connections parked are closed, later parks
// are refused, and run has returned when close does.
func (p *parker) close() {
	for _, c := range p.stop() {
		c.finish()
	}
	<-p.done
}

// stop marks the parker closed (once) and returns the connections it took
// from parking, for the caller to close.
func (p *parker) stop() (parked []*conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.quit)
		for _, c := range p.conns {
			if c.unpark() {
				parked = append(parked, c)
			}
		}
		p.ep.Close()
		if p.turn != nil {
			p.turn.closeReader()
		}
		for _, w := range p.workers {
			close(w)
		}
		p.workers = nil
		// Woken and admitted, not yet served: closed as parked ones.
		parked = append(parked, p.queue[p.qhead:]...)
		p.queue, p.qhead = nil, 0
	}
	return parked
}
