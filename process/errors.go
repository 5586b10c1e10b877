package process

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"
)

// Errors returned by this package, wrapped; compare with errors.Is.
var (
	// ErrNoInit is returned when the worker, this program started again,
	// did not call Init first thing in main: it exited without running
	// the function, or did not reach Init within the start-up bound, or
	// tried to start workers itself before Init (which would re-run the
	// program again and again).
	ErrNoInit = errors.New("process: the program does not call process.Init at the top of main")
	// ErrUnknownFunc is returned when the worker does not know the
	// function's name: it was registered conditionally, not at package
	// initialisation.
	ErrUnknownFunc = errors.New("process: function not registered in the worker (register it at package initialisation, in a package-level var)")
	// ErrDied is returned (as an *ExitError) when the worker exited, was
	// terminated or was killed before returning a result.
	ErrDied = errors.New("process: worker died before returning")
	// ErrCodec is returned when an argument or result cannot be encoded
	// or decoded.
	ErrCodec = errors.New("process: cannot encode or decode")
	// ErrNotSupported is returned by Start on systems other than Linux.
	ErrNotSupported = errors.New("process: worker processes are not supported on this system")
)

// FuncError is the error a registered function returned, or the panic it
// raised, in a worker process. Errors do not cross processes as values:
// the worker's error survives as its message.
type FuncError struct {
	Func    string // the registered name
	Pid     int    // the worker's process id
	Message string // the error's text, or the panic value printed
	Panic   bool   // the function panicked
	Stack   string // the worker's stack at the panic; empty for an error
}

// Error formats the error with the function, the worker's pid and, for a
// panic, its stack.
func (e *FuncError) Error() string {
	what := "failed"
	if e.Panic {
		what = "panicked"
	}
	s := fmt.Sprintf("process: %s (pid %d) %s: %s", e.Func, e.Pid, what, e.Message)
	if e.Stack != "" {
		s += "\n" + e.Stack
	}
	return s
}

// ExitError is the error for a worker that exited, was terminated or was
// killed before it returned a result. errors.Is(err, ErrDied) holds.
// Process.ExitCode gives -Signal for a worker killed by a signal, as
// Python's exitcode; Code keeps os.ProcessState's -1.
type ExitError struct {
	Pid    int
	Code   int            // exit status; -1 if killed by a signal
	Signal syscall.Signal // the signal that killed it (SIGTERM after Terminate); 0 if it exited
}

// Error names the process and how it ended.
func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return "pid " + strconv.Itoa(e.Pid) + " killed by signal " + strconv.Itoa(int(e.Signal)) + " (" + e.Signal.String() + ")"
	}
	return "pid " + strconv.Itoa(e.Pid) + " exited with status " + strconv.Itoa(e.Code) + " before returning"
}

// Is reports whether target is ErrDied.
func (e *ExitError) Is(target error) bool { return target == ErrDied }
