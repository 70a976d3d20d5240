package config

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a configuration file, with where it is. Parse and
// Load return a single *Error or several joined with errors.Join (one per
// line); Errors unpacks either.
type Error struct {
	File  string // file name as given to Load/Parse; "" for built-in configs
	Line  int    // 1-based line; 0 when unknown
	Field string // path of the key, e.g. "backends[1].port"; "" for the whole file
	Msg   string // what is wrong and, where possible, what is expected
}

// Error formats e as "FILE:LINE: FIELD: MSG", leaving out the parts that
// are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors returns every *Error inside err (as returned by Load, Parse or
// Validate), in order. It returns nil when err holds none.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		switch x := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	return out
}

// errorList collects problems and turns them into one error.
type errorList []*Error

// err sorts the problems by line (stable, so problems on one line keep the
// order they were found in), drops exact duplicates and joins them; nil when
// there are none.
func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	s := slices.Clone(l)
	slices.SortStableFunc(s, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	s = slices.CompactFunc(s, func(a, b *Error) bool { return *a == *b })
	if len(s) == 1 {
		return s[0]
	}
	errs := make([]error, len(s))
	for i, e := range s {
		errs[i] = e
	}
	return errors.Join(errs...)
}
