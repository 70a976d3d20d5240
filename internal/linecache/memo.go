package linecache

import "unsafe"

// MemoLines is how many lines of a head a Memo keeps results for: the
// first ones. A backend's response head has 5 to 10 lines, a browser's
// request head 10 to 15.
const MemoLines = 16

// Memo keeps a result per line of a connection's last head, such as how a
// field line was split into name and value, so that a line that repeats
// the one at its position in the last head reuses the result instead of
// being parsed and checked again.
//
// A line repeats when the Cache gave it the last head's string (Lines
// reuses the string of an equal line): the test is that string, a length
// and a pointer check, not a comparison of bytes. So the Memo holds only
// strings the Cache holds, and End makes it forget everything when the
// Cache does not keep a head: it never keeps memory the Cache let go.
//
// The zero value is empty. Like the Cache, it belongs to one connection's
// reader. Results should hold only parts of their line, constants, or
// strings made from the line no longer than it (a field name made
// canonical): so a Memo holds at most MemoLines such small strings beyond
// what the Cache holds.
type Memo[T any] struct {
	slots [MemoLines]memoSlot[T]
	hi    int // slots[:hi] may be set
	cur   int // lines of the head being parsed that were asked for or kept
}

type memoSlot[T any] struct {
	line   string
	result T
}

// Get returns the result kept for the i-th line (from 0) of the last head,
// if line is that line's string.
func (m *Memo[T]) Get(i int, line string) (T, bool) {
	if i >= MemoLines {
		var zero T
		return zero, false
	}
	m.cur = max(m.cur, i+1)
	s := &m.slots[i]
	if line != "" && len(s.line) == len(line) && unsafe.StringData(s.line) == unsafe.StringData(line) {
		return s.result, true
	}
	// The last head's line, which this head does not repeat: forgotten,
	// so that no line of an older head stays below cur (a failed parse
	// puts nothing in its place).
	*s = memoSlot[T]{}
	var zero T
	return zero, false
}

// Put keeps result for the i-th line of the head being parsed, line being
// the string the Cache gave it (or part of it).
func (m *Memo[T]) Put(i int, line string, result T) {
	if i >= MemoLines {
		return
	}
	m.slots[i] = memoSlot[T]{line, result}
	m.hi, m.cur = max(m.hi, i+1), max(m.cur, i+1)
}

// End ends a head: when kept (the head was parsed and the Cache keeps its
// lines, Cache.Kept), the Memo keeps its results for this head's lines and
// forgets those of lines past them; otherwise it forgets everything.
func (m *Memo[T]) End(kept bool) {
	n := m.cur
	if !kept {
		n = 0
	}
	if n < m.hi {
		clear(m.slots[n:m.hi])
		m.hi = n
	}
	m.cur = 0
}

// Len is the number of lines the Memo holds results for, and At the i-th
// of them: for tests that check what it holds.
func (m *Memo[T]) Len() int { return m.hi }

// At returns the i-th line and result kept, i < Len.
func (m *Memo[T]) At(i int) (string, T) { return m.slots[i].line, m.slots[i].result }

// Parse returns the result kept for the i-th line of the head if line
// repeats it, and otherwise parse(line), which it keeps when parse
// succeeds. A nil Memo only parses.
func (m *Memo[T]) Parse(i int, line string, parse func(string) (T, error)) (T, error) {
	if m == nil {
		return parse(line)
	}
	if r, ok := m.Get(i, line); ok {
		return r, nil
	}
	r, err := parse(line)
	if err == nil {
		m.Put(i, line, r)
	}
	return r, err
}
