package pool

import (
	"errors"
	"strconv"
)

// Errors returned by this package, wrapped; compare with errors.Is.
var (
	// ErrWorkerDied is the error (in a *TaskError) of a call whose worker
	// died while running it (killed, say, or exited), when no retry was
	// left; the *TaskError also wraps the worker's *process.ExitError.
	ErrWorkerDied = errors.New("pool: the worker running the task died")
	// ErrMaxRSS is the error (in a *TaskError) of a call whose worker's
	// resident memory passed the pool's MaxRSS while the call ran: the
	// worker answers the calls of the batch it runs with it, and exits;
	// a replacement starts, and the other calls go on. The message names
	// the worker's pid, its resident memory and MaxRSS, in bytes. The
	// call is not run again, whatever Retries says.
	ErrMaxRSS = errors.New("pool: the worker running the task exceeded MaxRSS")
	// ErrClosed is returned for calls made after Close or Terminate, and
	// for calls still running when Terminate is called.
	ErrClosed = errors.New("pool: closed")
	// ErrBroken is returned when a worker cannot be started, its
	// initializer fails, or workers keep being killed before they are
	// ready: the pool runs nothing more. New calls fail with it at once;
	// calls under way fail with it once no worker is left to run them.
	ErrBroken = errors.New("pool: broken")
)

// TaskError is the error of one call of a Map, Imap, Starmap or Apply:
// the function returned an error or panicked in a worker, the worker died
// running it (Err is ErrWorkerDied, wrapping the *process.ExitError) or
// passed MaxRSS running it (ErrMaxRSS), its argument or result could not
// be encoded (process.ErrCodec), or alone it does not fit a message,
// 2 MiB less its headers (queue.ErrTooLarge). The pool stays usable.
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
