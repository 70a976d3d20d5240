package proxy

import (
	"context"
	"io"
	"sync"
)

// tunnelSet tracks upgraded connections (WebSockets), which the http.Server
// no longer sees once hijacked, so that shutdown can wait for them and close
// them at the end of the grace period.
type tunnelSet struct {
	mu    sync.Mutex
	open  map[*tunnel]struct{}
	idle  chan struct{} // closed when the last tunnel ends while someone waits
	count int
	cut   bool // the grace period is over: tunnels are closed as they attach
}

// tunnel is one upgraded connection: its two ends, once attached.
type tunnel struct {
	ends []io.Closer
}

// begin counts a tunnel about to be set up.
func (t *tunnelSet) begin() *tunnel {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open == nil {
		t.open = make(map[*tunnel]struct{})
	}
	tn := &tunnel{}
	t.open[tn] = struct{}{}
	t.count++
	return tn
}

// attach records the ends of tn, so that a forced shutdown can close them.
func (t *tunnelSet) attach(tn *tunnel, ends ...io.Closer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tn.ends = ends
	if t.cut {
		for _, c := range ends {
			c.Close()
		}
	}
}

// end uncounts tn.
func (t *tunnelSet) end(tn *tunnel) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.open, tn)
	t.count--
	if t.count == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// WaitTunnels waits until every upgraded connection has ended or ctx is
// done; then it closes those still open and waits for them to end. Call it
// after http.Server.Shutdown has returned, so that no new tunnel can start.
func (h *Handler) WaitTunnels(ctx context.Context) {
	t := &h.tunnels
	t.mu.Lock()
	if t.count == 0 {
		t.mu.Unlock()
		return
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return
	case <-ctx.Done():
	}
	t.mu.Lock()
	t.cut = true
	for tn := range t.open {
		for _, c := range tn.ends {
			c.Close()
		}
	}
	t.mu.Unlock()
	<-idle // closing both ends ends each tunnel's copy loops promptly
}
