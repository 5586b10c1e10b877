package pool

import (
	"strconv"
)

// TaskError is the error of one call of a Map, Imap, Starmap or Apply:
// the function returned an error or panicked in a worker, the worker died
// running it (Err is ErrWorkerDied, wrapping the *process.ExitError), its
// argument or result could not be encoded (process.ErrCodec), or alone it
// does not fit a message, 2 MiB less its headers (queue.ErrTooLarge).
// The pool stays usable.
type TaskError struct {
	Index   int    // the call's position in the input
	Func    string // the registered function
	Pid     int    // the worker that ran it (or died running it)
	Message string // the error's text, or the panic value printed
	Panic   bool   // the function panicked
	Stack   string // the worker's stack at the panic
	Err     error  // a sentinel of this package, process or queue; nil for the function's own error
}

// Error names the task, the function and the worker, and gives the stack
// of a panic.
func (e *TaskError) Error() string {
	what := "failed"
	switch {
	case e.Panic:
		what = "panicked"
	case e.Err != nil:
		s := "pool: task " + strconv.Itoa(e.Index) + " (" + e.Func + "): " + e.Err.Error()
		if e.Message != "" && e.Message != e.Err.Error() {
			s += ": " + e.Message
		}
		return s
	}
	s := "pool: task " + strconv.Itoa(e.Index) + " (" + e.Func + ", worker " + strconv.Itoa(e.Pid) + ") " + what + ": " + e.Message
	if e.Stack != "" {
		s += "\n" + e.Stack
	}
	return s
}

// Unwrap returns Err.
func (e *TaskError) Unwrap() error { return e.Err }
