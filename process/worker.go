package process

import (
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The worker's side. A worker is this program started again with envFunc
// naming the function to run and these files inherited:
//
//	fd 3  argument: the encoded In, then EOF (the parent closes it)
//	fd 4  reply: the worker writes helloByte as soon as Init runs, then
//	      one encoded reply, then exits
//	fd 5  lifeline: the parent never writes it; EOF means the parent died
//	fd 6… the files the caller passed with the Files option
const (
	envFunc        = "XPROC_PROCESS_FUNC"
	envName        = "XPROC_PROCESS_NAME"
	envFiles       = "XPROC_PROCESS_FILES"
	envInitTimeout = "XPROC_PROCESS_INIT_TIMEOUT"
	envGrace       = "XPROC_PROCESS_TERMINATE_GRACE" // tests only: overrides TerminateGrace

	fdArg      = 3
	fdReply    = 4
	fdLifeline = 5
	fdUser     = 6
)

// Exit statuses of a worker: its function failed, or it could not run it.
const (
	// The function returned an error or panicked, or is not registered
	// here (the reply says which): 1, as Python's exitcode after an
	// exception in target.
	exitFuncFailed = 1

	exitNoInit  = 120 // main did not call Init in time
	exitOrphan  = 121 // the parent died
	exitFailure = 122 // the protocol with the parent broke
)

// defaultInitTimeout bounds the time from a worker's start to its call of
// Init: a program that does not call Init (or calls it late) is stopped
// then, and its parent gets ErrNoInit.
const defaultInitTimeout = 10 * time.Second

// TerminateGrace is how long a worker's function has, after Terminate,
// to return before the worker dies of SIGTERM regardless: it bounds the
// clean-up that the function's deferred calls do once its context is
// cancelled (closing or unlinking segments, releasing a shared lock,
// removing a temporary file, acknowledging or giving back a lease: system
// calls of micro- to milliseconds, even on a loaded machine), and the
// time a function that checks its context between pieces of work takes to
// notice. Half a second leaves that margin while keeping Terminate
// followed by Wait prompt, as Python's terminate() is, and a function
// that ignores its context cannot keep a terminated worker alive beyond
// it.
const TerminateGrace = 500 * time.Millisecond

// helloByte is the first byte a worker writes: that it reached Init. A
// worker that exits without it never ran Init (ErrNoInit).
const helloByte = 'I'

// reply is what a worker sends back: the encoded result, or the error.
type reply struct {
	Result  []byte
	Err     string
	Panic   bool
	Stack   string
	Codec   bool // Err is an encoding error
	Unknown bool // the function is not registered here
}

var (
	initCalled atomic.Bool
	// workerName is this process's name as its parent gave it ("" in a
	// process that is not a worker).
	workerName string
	userFiles  int
)

func init() {
	if os.Getenv(envFunc) == "" {
		return
	}
	d := defaultInitTimeout
	if v, err := time.ParseDuration(os.Getenv(envInitTimeout)); err == nil && v > 0 {
		d = v
	}
	// A worker whose main never calls Init would run the parent's
	// program from the start, and perhaps start workers of its own.
	time.AfterFunc(d, func() {
		if !initCalled.Load() {
			fmt.Fprintf(os.Stderr, "process: %s: the program did not call process.Init within %v of starting as a worker\n", os.Getenv(envFunc), d)
			os.Exit(exitNoInit)
		}
	})
}

// Init must be called first thing in main (and in TestMain, before
// m.Run), before anything that depends on flags or starts work. In the
// program itself it returns at once. In a worker (the program started
// again by Start or by package pool) it runs the registered function it
// was started for, sends back its result, and exits: it never returns.
//
// A worker whose main does not reach Init within 10 seconds exits, and
// its parent gets ErrNoInit, as it does when such a worker exits or tries
// to start workers itself.
func Init() {
	fn := os.Getenv(envFunc)
	initCalled.Store(true)
	if fn == "" {
		return
	}
	workerName = os.Getenv(envName)
	userFiles, _ = strconv.Atoi(os.Getenv(envFiles))
	// The inherited files came without close-on-exec: a program the
	// function runs must not hold the reply pipe (Wait would wait for it)
	// or the segments handed over.
	for fd := fdArg; fd < fdUser+userFiles; fd++ {
		closeOnExec(fd)
	}
	// The function may run other programs: they are not workers.
	grace := TerminateGrace
	if d, err := time.ParseDuration(os.Getenv(envGrace)); err == nil && d > 0 {
		grace = d
	}
	for _, k := range []string{envFunc, envName, envFiles, envInitTimeout, envGrace} {
		os.Unsetenv(k)
	}
	os.Exit(runWorker(fn, grace))
}

// runWorker runs the function named fn and returns the exit status; if
// the worker is terminated (SIGTERM) before its reply is sent, it does
// not return but dies of the signal (see terminator), within grace.
func runWorker(fn string, grace time.Duration) int {
	arg, out, life := os.NewFile(fdArg, "argument"), os.NewFile(fdReply, "reply"), os.NewFile(fdLifeline, "lifeline")
	if arg == nil || out == nil || life == nil {
		fmt.Fprintln(os.Stderr, "process: worker started without its files")
		return exitFailure
	}
	// Until here SIGTERM kills the worker outright (Go's default); from
	// here it cancels the function's context first.
	ctx, term := newTerminator(grace)
	if _, err := out.Write([]byte{helloByte}); err != nil {
		return exitFailure
	}
	go watchLifeline(life)

	var r reply
	status := 0
	if e, ok := lookup(fn); !ok {
		r, status = reply{Unknown: true, Err: fn}, exitFuncFailed
	} else if b, err := io.ReadAll(arg); err != nil {
		fmt.Fprintln(os.Stderr, "process: reading the argument:", err)
		return exitFailure
	} else {
		res, err := call(ctx, fn, e, b)
		if err != nil {
			status = exitFuncFailed
		}
		switch fe, isFE := err.(*FuncError); {
		case err == nil:
			r.Result = res
		case isFE:
			r.Err, r.Panic, r.Stack = fe.Message, fe.Panic, fe.Stack
		default:
			r.Err, r.Codec = err.Error(), isCodec(err)
		}
	}
	term.sending() // dies here if terminated
	if err := gob.NewEncoder(out).Encode(&r); err != nil {
		fmt.Fprintln(os.Stderr, "process: sending the result:", err)
		return exitFailure
	}
	if err := out.Close(); err != nil {
		return exitFailure
	}
	term.sent()
	return status
}

// terminator turns SIGTERM (Terminate) into Python's terminate(): the
// worker dies of the signal, so that its parent sees exit code -15. Go
// code gets to clean up first: the function's context is cancelled, and
// the worker dies as soon as the function returns, or once the grace has
// passed if it has not returned by then. A SIGTERM that comes while the
// reply is being sent kills the worker at once; one that comes after the
// reply has been sent in full changes nothing: the worker exits with its
// status.
type terminator struct {
	mu         sync.Mutex
	state      int // stateRunning, stateSending or stateSent
	terminated bool
}

// The states of a terminator.
const (
	stateRunning = iota // the function runs (or is about to)
	stateSending        // the reply is being written
	stateSent           // the reply is written in full
)

// newTerminator starts watching for SIGTERM and returns the context to
// run the function with.
func newTerminator(grace time.Duration) (context.Context, *terminator) {
	t := &terminator{}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		for range sigs {
			t.mu.Lock()
			switch {
			case t.state == stateSending:
				dieOf(syscall.SIGTERM)
			case t.state == stateRunning && !t.terminated:
				t.terminated = true
				cancel()
				time.AfterFunc(grace, func() { dieOf(syscall.SIGTERM) })
			}
			t.mu.Unlock()
		}
	}()
	return ctx, t
}

// sending is called once the function has returned, before its reply is
// sent: a terminated worker dies here.
func (t *terminator) sending() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.terminated {
		dieOf(syscall.SIGTERM)
	}
	t.state = stateSending
}

// sent is called once the reply has been sent in full: a SIGTERM from now
// on is ignored, and the worker exits with its status.
func (t *terminator) sent() {
	t.mu.Lock()
	t.state = stateSent
	t.mu.Unlock()
}

// dieOf kills this process with sig, restoring the signal's default
// action first, so that the parent sees death by sig (Python's exit code
// -sig). It does not return.
func dieOf(sig syscall.Signal) {
	signal.Reset(sig)
	raise(sig)
	// The signal is on its way to a thread of this process; the runtime
	// then dies of it. Should it somehow not, exit rather than return.
	time.Sleep(time.Second)
	fmt.Fprintf(os.Stderr, "process: the worker survived %v\n", sig)
	os.Exit(exitFailure)
}

// watchLifeline exits the worker as soon as its parent dies: the kernel
// closes the parent's end of the lifeline pipe, and the read returns.
func watchLifeline(f *os.File) {
	var b [1]byte
	for {
		if _, err := f.Read(b[:]); err != nil {
			os.Exit(exitOrphan)
		}
	}
}
