package linecache

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// split is what Lines must return: head cut at each '\n'.
func split(head string) []string {
	if head == "" {
		return []string{}
	}
	lines := strings.SplitAfter(head, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\n")
	}
	return lines
}

// checker runs Lines on one cache and checks each result against split,
// and that the lines kept are parts of at most two allocations. It tells
// allocations apart by address, not by the cache's own bookkeeping: the
// lines a call did not reuse form a new one, and every string seen is kept
// so that no allocation's memory is reused by a later one.
type checker struct {
	c      Cache
	ranges [][2]uintptr // each allocation's addresses, [first, end)
	seen   []string
}

func (k *checker) check(t *testing.T, head string) []string {
	t.Helper()
	got, ok := k.c.Lines([]byte(head), len(head)+1) // no head has more lines
	if !ok {
		t.Fatalf("Lines(%q) refused", head)
	}
	if want := split(head); !reflect.DeepEqual(append([]string{}, got...), want) {
		t.Fatalf("Lines(%q) = %q, want %q", head, got, want)
	}
	k.seen = append(k.seen, got...)
	// Empty lines are left out: where an empty string points is not
	// telling (it may be just past the end of its allocation).
	lo, hi := ^uintptr(0), uintptr(0)
	for _, l := range got {
		if p := addr(l); l != "" && k.find(p) < 0 {
			lo, hi = min(lo, p), max(hi, p+uintptr(len(l)))
		}
	}
	if lo < hi {
		k.ranges = append(k.ranges, [2]uintptr{lo, hi})
	}
	if len(head) <= MaxKept && len(got) <= maxKeptLines {
		in := map[int]bool{}
		for _, l := range got {
			if l != "" {
				in[k.find(addr(l))] = true
			}
		}
		if len(in) > 2 {
			t.Fatalf("after %q the kept lines are parts of %d allocations, want at most 2", head, len(in))
		}
	}
	return got
}

func addr(s string) uintptr { return uintptr(unsafe.Pointer(unsafe.StringData(s))) }

// find returns the allocation holding address p, or -1.
func (k *checker) find(p uintptr) int {
	for i, r := range k.ranges {
		if p >= r[0] && p < r[1] {
			return i
		}
	}
	return -1
}

func TestLinesSplit(t *testing.T) {
	var k checker
	for _, head := range []string{
		"",
		"\n",
		"a",
		"GET / HTTP/1.1\r\nHost: a\r\n",
		"HTTP/1.1 200 OK\nServer: x\n\n",
		"A: 1\r\n\r\ntail",
		"\n\n\n",
	} {
		k.check(t, head)
	}
}

// same reports whether a and b share their bytes (one is the other's
// string reused).
func same(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// TestLinesReuse: a repeated line is the previous head's string; a head
// that repeats every line costs no allocation, one with changed lines one.
func TestLinesReuse(t *testing.T) {
	var k checker
	c := &k.c
	h1 := "GET /a HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test/1\r\nAccept: */*\r\n"
	h2 := "GET /b HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test/1\r\nAccept: */*\r\n"
	first := append([]string{}, k.check(t, h1)...)
	second := k.check(t, h2)
	if same(first[0], second[0]) {
		t.Error("the changed request line reuses the old string")
	}
	for i := 1; i < len(first); i++ {
		if !same(first[i], second[i]) {
			t.Errorf("line %d %q was copied, not reused", i, second[i])
		}
	}
	b1, b2 := []byte(h1), []byte(h2)
	if n := testing.AllocsPerRun(100, func() { c.Lines(b2, 100) }); n != 0 {
		t.Errorf("a repeated head: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { c.Lines(b1, 100); c.Lines(b2, 100) }); n != 2 {
		t.Errorf("two heads, each with one line changed: %v allocations, want 2", n)
	}
}

// TestLinesTwoAllocations: lines kept from many heads, each changing
// other lines, stay parts of at most two allocations (check counts them).
func TestLinesTwoAllocations(t *testing.T) {
	var k checker
	for i := range 50 {
		lines := []string{"l0", "l1", "l2", "l3", "l4"}
		lines[i%5] += strings.Repeat("x", i)
		lines[(i*3)%5] += "y"
		k.check(t, strings.Join(lines, "\n")+"\n")
	}
}

// TestLinesNotKept: a head over MaxKept bytes, or over maxKeptLines
// lines, is not reused; Release drops what a large head left.
func TestLinesNotKept(t *testing.T) {
	var k checker
	c := &k.c
	big := []byte("GET / HTTP/1.1\r\nCookie: " + strings.Repeat("c", MaxKept) + "\r\n")
	k.check(t, string(big))
	if n := testing.AllocsPerRun(10, func() { c.Lines(big, 100) }); n == 0 {
		t.Error("a head over MaxKept was reused")
	}
	c.Release()
	if len(c.lines) != 0 {
		t.Errorf("Release kept %d lines of a head over MaxKept", len(c.lines))
	}
	many := []byte(strings.Repeat("A: b\r\n", maxKeptLines+1))
	k.check(t, string(many))
	if len(c.lines) != 0 || cap(c.miss) > maxKeptLines {
		t.Errorf("a head of %d lines: %d kept, scratch of %d", maxKeptLines+1, len(c.lines), cap(c.miss))
	}
	small := []byte("A: b\r\n")
	k.check(t, string(small))
	c.Release()
	if len(c.lines) != 1 {
		t.Error("Release dropped the lines of a small head")
	}
}

func TestLinesTooMany(t *testing.T) {
	var k checker
	k.check(t, "a\nb\n")
	if lines, ok := k.c.Lines([]byte("a\nb\nc\n"), 2); ok || lines != nil {
		t.Fatalf("3 lines with at most 2: %q, %v", lines, ok)
	}
	k.check(t, "a\nb\n") // still usable
}

// FuzzLines: any sequence of heads reads as split reads them, whatever
// the cache kept from the ones before.
func FuzzLines(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n"), []byte("GET /x HTTP/1.1\r\nHost: a\r\n"))
	f.Add([]byte("a\nb\nc"), []byte("a\nb"))
	f.Add([]byte(""), []byte("\n\n"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var k checker
		for _, head := range [][]byte{a, b, a, bytes.ToUpper(b), b} {
			k.check(t, string(head))
		}
	})
}
