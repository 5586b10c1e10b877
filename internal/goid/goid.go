// Package goid tells goroutines apart, for the locks whose holder is a
// goroutine rather than a process: xsync.ReentrantMutex, and the lock of
// a value.Value or array.Array taken through its Lock method.
package goid

import (
	"runtime"
	"strconv"
)

// Get returns the calling goroutine's id, which Go does not expose. It is
// read from the header line of the goroutine's stack trace ("goroutine 42
// [running]:"), a format the runtime has kept since Go 1.0. Ids are never
// reused within a process and are never 0. It costs about a microsecond,
// so callers keep it off their fast paths.
func Get() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) <= len(prefix) || string(b[:len(prefix)]) != prefix {
		panic("goid: cannot read goroutine id from " + strconv.Quote(string(b)))
	}
	b = b[len(prefix):]
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	if id == 0 {
		panic("goid: cannot read goroutine id")
	}
	return id
}
