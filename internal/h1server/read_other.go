//go:build !unix

package h1server

import "errors"

// leanWaits: not here; idle connections keep their read buffer and wait
// in a read whatever their number.
const leanWaits = false

// readFD is not used where idle connections do not wait lean.
func readFD(uintptr, []byte) (int, error) {
	return 0, errors.New("h1server: no lean wait on this system")
}
