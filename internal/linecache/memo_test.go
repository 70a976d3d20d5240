package linecache

import (
	"errors"
	"strings"
	"testing"
)

// lineLen is a parse function for the tests: the line's length, an error
// for a line with an 'x'.
func lineLen(line string) (int, error) {
	if strings.Contains(line, "x") {
		return 0, errors.New("x")
	}
	return len(line), nil
}

// TestMemo: a line the cache gave the last head's string takes the kept
// result; a line with the same bytes in another string, a changed line and
// a line whose parse fails are parsed; after a head the cache keeps, the
// memo holds results for that head's lines only, and after one it does not
// keep, none.
func TestMemo(t *testing.T) {
	var c Cache
	var m Memo[int]
	calls := 0
	parse := func(line string) (int, error) { calls++; return lineLen(line) }
	head := func(h string) []string {
		t.Helper()
		lines, ok := c.Lines([]byte(h), 100)
		if !ok {
			t.Fatal("too many lines")
		}
		parsed := true
		for i, l := range lines {
			n, err := m.Parse(i, l, parse)
			if err != nil {
				parsed = false
				break
			}
			if n != len(l) {
				t.Fatalf("line %d %q read as %d", i, l, n)
			}
		}
		m.End(parsed && c.Kept())
		for i := range m.Len() {
			if line, _ := m.At(i); !c.Holds(line) {
				t.Fatalf("the memo holds line %d %q, which the cache does not", i, line)
			}
		}
		return lines
	}

	head("a\nbb\nccc\n")
	if calls != 3 || m.Len() != 3 {
		t.Fatalf("first head: %d parses, %d kept; want 3, 3", calls, m.Len())
	}
	calls = 0
	head("a\nbb\ndddd\n")
	if calls != 1 {
		t.Errorf("head with one changed line: %d parses, want 1", calls)
	}
	calls = 0
	head("a\n")
	if calls != 0 || m.Len() != 1 {
		t.Errorf("shorter head: %d parses, %d kept; want 0, 1", calls, m.Len())
	}
	if line, n := m.At(0); line != "a" || n != 1 {
		t.Errorf("kept %q: %d", line, n)
	}
	// The same bytes in another string are parsed, not taken on trust, and
	// the last head's line, not repeated, is forgotten.
	a, _ := m.At(0)
	if _, ok := m.Get(0, strings.Clone("a")); ok {
		t.Error("a line with the same bytes in another string was taken from the memo")
	}
	if _, ok := m.Get(0, a); ok {
		t.Error("a line the head did not repeat is still kept")
	}
	m.End(true)
	// A head whose parse failed leaves nothing.
	calls = 0
	head("x\n")
	if _, ok := m.Get(0, "x"); ok || m.Len() != 0 {
		t.Errorf("a line whose parse failed is kept (%d lines)", m.Len())
	}
	// A head the cache does not keep: the memo forgets everything.
	head("a\nbb\n")
	head("a\n" + strings.Repeat("b", MaxKept) + "\n")
	if m.Len() != 0 {
		t.Errorf("after a head the cache does not keep, %d lines kept", m.Len())
	}
	// Lines past MemoLines are parsed every time, and never kept.
	var many strings.Builder
	for i := range MemoLines + 3 {
		many.WriteString(strings.Repeat("l", i+1) + "\n")
	}
	head(many.String())
	calls = 0
	head(many.String())
	if calls != 3 || m.Len() != MemoLines {
		t.Errorf("a head of %d lines again: %d parses, %d kept; want 3, %d", MemoLines+3, calls, m.Len(), MemoLines)
	}
	// A nil Memo only parses.
	var none *Memo[int]
	if n, err := none.Parse(0, "abc", lineLen); n != 3 || err != nil {
		t.Errorf("nil Memo: %d, %v", n, err)
	}
}
