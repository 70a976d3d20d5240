//go:build !linux

package h1server

import "time"

// parker parks idle connections without a goroutine on Linux (see
// park_linux.go); elsewhere there is none, and idle connections wait in a
// read.
type parker struct{}

func newParker(time.Duration) *parker { return nil }
func (*parker) park(*conn) bool       { return false }
func (*parker) forget(*conn)          {}
func (*parker) unregister(*conn)      {}
func (*parker) parkedConns() int      { return 0 }
func (*parker) close()                {}
func (*parker) leave(*conn)           {}
func (*conn) readable() bool          { return false }
