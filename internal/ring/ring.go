// Package ring keeps the last N items of a stream (health transitions,
// config reloads) for the admin API: a fixed-size ring, safe for concurrent
// use, that never grows past its size.
package ring

import "sync"

// Ring holds the last Size items added. The zero value is not usable: set
// Size (New does).
type Ring[T any] struct {
	mu    sync.Mutex
	size  int
	items []T // up to size, oldest at next once full
	next  int
}

// New returns a ring of the last size items.
func New[T any](size int) *Ring[T] { return &Ring[T]{size: size} }

// Add appends v, dropping the oldest item when the ring is full.
func (r *Ring[T]) Add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.items) < r.size {
		r.items = append(r.items, v)
		return
	}
	r.items[r.next] = v
	r.next = (r.next + 1) % r.size
}

// List returns a copy of the items, oldest first.
func (r *Ring[T]) List() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]T, 0, len(r.items))
	out = append(out, r.items[r.next:]...)
	return append(out, r.items[:r.next]...)
}
