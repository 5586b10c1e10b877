// Package registry holds the functions registered to run in worker
// processes (process.Register), by name: what a worker, which is the same
// program started again, looks up to run one call (package process) or a
// batch of calls (package pool).
package registry

import (
	"context"
	"sync"
)

// Entry is a registered function, seen through its encoded arguments and
// results.
type Entry struct {
	// Call decodes one argument, runs the function and encodes its
	// result (in the codec the function was registered with).
	Call func(ctx context.Context, arg []byte) ([]byte, error)
	// Batch decodes n arguments from args (codec.Of's slice encoding,
	// raw bytes for fixed-size pointer-free types) and runs the function
	// on each in turn. It fails only if the arguments cannot be decoded.
	Batch func(ctx context.Context, args []byte, n int) (Results, error)
}

// Results are the results of a batch, to be encoded in one piece or in
// parts (a batch whose results do not fit one message is answered in
// several).
type Results interface {
	// Len returns the number of calls.
	Len() int
	// Failures returns the calls that returned an error or panicked,
	// in order.
	Failures() []Failure
	// Encode returns the encoding (codec.Of's slice encoding) of the
	// results of calls from to to-1: the zero value where a call failed.
	Encode(from, to int) ([]byte, error)
}

// Failure is one call of a batch that returned an error or panicked.
type Failure struct {
	Index   int // in the batch
	Message string
	Panic   bool
	Stack   string // for a panic
}

var reg = struct {
	sync.Mutex
	m map[string]Entry
}{m: make(map[string]Entry)}

// Add registers e under name and reports false if the name is taken.
func Add(name string, e Entry) bool {
	reg.Lock()
	defer reg.Unlock()
	if _, dup := reg.m[name]; dup {
		return false
	}
	reg.m[name] = e
	return true
}

// Lookup returns the entry registered under name.
func Lookup(name string) (Entry, bool) {
	reg.Lock()
	defer reg.Unlock()
	e, ok := reg.m[name]
	return e, ok
}
