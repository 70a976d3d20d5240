// Package linecache turns the lines of the message heads read from one
// connection into strings, reusing the strings of the connection's
// previous head where a line repeats; and a Memo keeps what parsing such a
// line gave, so that a repeated line is not parsed again.
//
// Why: a parsed head's names and values are strings, and a string made
// from the read buffer is an allocation, the only one left per proxied
// request on the fast paths. It is small, but it is what makes the garbage
// collector run several times a second under load, and a collection is
// where the slowest requests wait (docs/BENCHMARKS.md). On one connection
// most lines repeat: a client sends the same Host, User-Agent, Accept and
// Cookie lines with every request, a backend the same Server and
// Content-Type lines with every response. A line equal to the line at the
// same position in the previous head reuses that head's string; only the
// lines that differ are copied, into one new string. A head whose every
// line repeats costs no allocation.
//
// Memory: the strings kept belong to at most two allocations, and only the
// lines of a head of at most MaxKept bytes and maxKeptLines lines are kept
// for the next head (Release drops those of a larger one), so between its
// requests a connection holds at most 2×MaxKept bytes of head strings, plus
// the slots of 16 lines, or maxKeptLines once a head had more (48 bytes
// each with the scratch space).
package linecache

import (
	"bytes"
	"strings"
	"unsafe"
)

// MaxKept is the largest head (in bytes) whose lines are kept for the next
// head to reuse: 2 KiB holds a browser's usual request head with its
// cookies; a larger one is copied whole, as if nothing were kept.
const MaxKept = 2 << 10

// maxKeptLines is the most lines of a head kept (their slice headers are
// kept too).
const maxKeptLines = 64

// Cache holds the lines of one connection's last head. The zero value is
// an empty cache. It is not safe for concurrent use: one connection's
// reader owns it.
type Cache struct {
	lines []string // the last head's lines
	gens  []uint64 // gens[i]: the allocation lines[i] is part of
	gen   uint64   // the newest allocation's number (never wraps)
	kept  bool     // lines may be reused by the next head
	miss  []span   // Lines' scratch: the lines not reused
}

// span is a line of the head being split: its position and bytes.
type span struct{ i, start, end int }

// Lines splits head at each '\n' into lines, without the '\n' (a '\r'
// before it stays: the caller decides which line ends it takes); bytes
// after the last '\n' are a last line. Each line is a string equal to
// its bytes: the previous head's string at the same position when that
// one is equal, a part of one new string otherwise. False, and no lines,
// when head has more than maxLines lines.
//
// The slice is the cache's, valid until the next call; the strings are
// ordinary strings and stay valid as long as they are referenced.
func (c *Cache) Lines(head []byte, maxLines int) ([]string, bool) {
	prev := c.lines
	if !c.kept {
		prev = nil
	}
	if c.miss == nil {
		c.miss = make([]span, 0, 16) // grown once, not by doubling from one
	}
	c.miss = c.miss[:0]
	n := 0
	oldest, newest := ^uint64(0), uint64(0) // of the reused strings
	for start := 0; start < len(head); n++ {
		if n == maxLines {
			c.forget()
			return nil, false
		}
		end, next := cut(head, start)
		switch {
		case n >= maxKeptLines:
			// Too many to keep (see below): no need to compare.
		case n < len(prev) && prev[n] == string(head[start:end]):
			g := c.gens[n]
			oldest, newest = min(oldest, g), max(newest, g)
		default:
			c.miss = append(c.miss, span{n, start, end})
		}
		start = next
	}
	if n > maxKeptLines {
		// Not kept: a slice of its own, left to the collector.
		c.forget()
		return appendLines(make([]string, 0, n), string(head)), true
	}
	c.grow(n)
	switch {
	case len(c.miss) == 0:
	case oldest != newest:
		// Nothing reused (a first head), or the reused strings are
		// parts of two allocations already: the whole head is copied
		// into one, so that no more than two stay referenced.
		c.gen++
		c.lines = appendLines(c.lines[:0], string(head))
		for i := range c.gens {
			c.gens[i] = c.gen
		}
	default:
		size := 0
		for _, m := range c.miss {
			size += m.end - m.start
		}
		var b strings.Builder // one allocation: String does not copy
		b.Grow(size)
		for _, m := range c.miss {
			b.Write(head[m.start:m.end])
		}
		s := b.String()
		c.gen++
		off := 0
		for _, m := range c.miss {
			l := m.end - m.start
			c.lines[m.i], c.gens[m.i] = s[off:off+l], c.gen
			off += l
		}
	}
	c.kept = len(head) <= MaxKept
	return c.lines, true
}

// cut finds the line of head that begins at start: where it ends (its
// '\n', or the end of head) and where the next one begins.
func cut(head []byte, start int) (end, next int) {
	i := bytes.IndexByte(head[start:], '\n')
	if i < 0 {
		return len(head), len(head)
	}
	return start + i, start + i + 1
}

// appendLines appends the lines of s, split as Lines splits a head, to dst.
func appendLines(dst []string, s string) []string {
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return append(dst, s)
		}
		dst, s = append(dst, s[:i]), s[i+1:]
	}
	return dst
}

// grow makes c.lines and c.gens n long, keeping what they hold: room for
// 16 lines at first, for maxKeptLines once a head has more (two sizes, so
// that heads growing by a line do not make new slots each time).
func (c *Cache) grow(n int) {
	if cap(c.lines) < n {
		size := 16
		if n > size {
			size = maxKeptLines
		}
		lines := make([]string, n, size)
		copy(lines, c.lines)
		gens := make([]uint64, n, size)
		copy(gens, c.gens)
		c.lines, c.gens = lines, gens
		return
	}
	clear(c.lines[min(n, len(c.lines)):]) // no stale string stays referenced
	c.lines, c.gens = c.lines[:n], c.gens[:n]
}

// forget drops the kept lines.
func (c *Cache) forget() {
	clear(c.lines)
	c.lines, c.gens, c.kept = c.lines[:0], c.gens[:0], false
}

// Kept reports whether the lines of the last head are kept for the next
// one (after Release: whether the cache holds any). A caller that keeps
// strings of those lines beyond them (a memo of how they were parsed)
// keeps them only while this is true, so that it holds no more than the
// cache does.
func (c *Cache) Kept() bool { return c.kept }

// Holds reports whether s is one of the kept lines, or part of one (the
// same bytes in memory, not only equal ones): for a caller's tests that
// it keeps no string the cache has let go.
func (c *Cache) Holds(s string) bool {
	if s == "" {
		return true
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	for _, l := range c.lines {
		if l == "" {
			continue
		}
		start := uintptr(unsafe.Pointer(unsafe.StringData(l)))
		if p >= start && p+uintptr(len(s)) <= start+uintptr(len(l)) {
			return true
		}
	}
	return false
}

// Release drops the kept lines if they are more than a connection should
// hold while it waits: those of a head larger than MaxKept, kept only for
// the request that read it.
func (c *Cache) Release() {
	if !c.kept {
		c.forget()
	}
}
