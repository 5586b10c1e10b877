package process

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xproc-go/xproc/internal/codec"
	"github.com/xproc-go/xproc/shm"
)

// Process is a worker process running one registered function: Python's
// multiprocessing.Process. Start makes one; Wait collects the function's
// result. Its methods are safe for concurrent use.
type Process[Out any] struct {
	*proc
	out codec.Of[Out] // to decode its result
}

// proc is the part of a Process that does not depend on the result type.
type proc struct {
	name string
	fn   string
	cmd  *exec.Cmd
	done chan struct{} // closed once the worker has exited and been reaped
	// Set before done is closed:
	hello    bool   // the worker reached Init
	reply    *reply // what it sent back, if it could be read
	replyErr error  // why it could not, if it sent something
	state    *os.ProcessState
	exited   atomic.Bool
	stopCtx  func() bool
}

var seq atomic.Int64

// Start starts a worker process running f(ctx, arg) and returns at once,
// as Python's Process(target=f, args=(arg,)).start() does. The worker is
// this program (/proc/self/exe) started again; its main must call Init
// first. It inherits the environment, the standard output and error, and
// the files given with Files, and never outlives this process: it exits
// when this process dies, however it dies.
//
// If ctx ends before the worker exits, the worker is killed, as
// exec.CommandContext does. Start fails with ErrCodec if arg cannot be
// encoded and ErrNotSupported on systems other than Linux. Called in a
// worker whose main did not call Init (the whole program running again,
// which would start workers without end), Start does not return: the
// worker exits at once, and its parent's Wait returns ErrNoInit.
func Start[In, Out any](ctx context.Context, f Func[In, Out], arg In, opts ...Option) (*Process[Out], error) {
	if f.name == "" {
		return nil, errors.New("process: Start of an unregistered Func (use Register)")
	}
	if os.Getenv(envFunc) != "" && !initCalled.Load() {
		// This is a worker whose main did not call Init: it is running
		// the whole program again, and would start workers that do the
		// same, without end. Stop here; the parent reports ErrNoInit.
		fmt.Fprintf(os.Stderr, "process: Start %s in a worker whose main did not call process.Init: %v\n", f.name, ErrNoInit)
		os.Exit(exitNoInit)
	}
	b, err := codec.For[In](f.Codec()).Marshal(&arg)
	if err != nil {
		return nil, fmt.Errorf("process: Start %s: %w: argument: %w (a queue, segment or file does not travel as a value: pass its name and open it in the worker, or hand it over with Files and open it there with OpenFile)", f.name, ErrCodec, err)
	}
	o := options{stdout: os.Stdout, stderr: os.Stderr}
	for _, opt := range opts {
		opt(&o)
	}
	if o.gomaxprocs < 0 {
		return nil, fmt.Errorf("process: Start %s: %w: GOMAXPROCS %d (want 0 or more)", f.name, shm.ErrInvalid, o.gomaxprocs)
	}
	if o.name == "" {
		o.name = "Process-" + strconv.FormatInt(seq.Add(1), 10)
	}
	p, err := start(ctx, f.name, b, &o)
	if err != nil {
		return nil, fmt.Errorf("process: Start %s: %w", f.name, err)
	}
	return &Process[Out]{p, codec.For[Out](f.Codec())}, nil
}

// Option configures Start.
type Option func(*options)

type options struct {
	name           string
	env            []string
	files          []*os.File
	gomaxprocs     int
	stdout, stderr io.Writer
}

// Name sets the process's name (default Process-N, as Python names
// them); the worker sees it in Current().Name.
func Name(name string) Option { return func(o *options) { o.name = name } }

// Env adds "KEY=value" entries to the worker's environment, which is
// otherwise this process's.
func Env(kv ...string) Option { return func(o *options) { o.env = append(o.env, kv...) } }

// Files hands files to the worker, which gets them with File(0),
// File(1), ...: anonymous segments (shm.Segment.File), pipes, sockets.
func Files(files ...*os.File) Option {
	return func(o *options) { o.files = append(o.files, files...) }
}

// GOMAXPROCS sets the worker's GOMAXPROCS (the number of threads running
// Go code at once); 0 leaves Go's default.
func GOMAXPROCS(n int) Option { return func(o *options) { o.gomaxprocs = n } }

// Stdout sets where the worker's standard output goes (default: this
// process's).
func Stdout(w io.Writer) Option { return func(o *options) { o.stdout = w } }

// Stderr sets where the worker's standard error goes (default: this
// process's).
func Stderr(w io.Writer) Option { return func(o *options) { o.stderr = w } }

// environ returns the worker's environment: this process's without the
// variables of this package, then o's, then the worker's own.
func (o *options) environ(fn string) []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case envFunc, envName, envFiles, envInitTimeout, envGrace:
			continue
		}
		env = append(env, kv)
	}
	env = append(env, o.env...)
	if o.gomaxprocs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(o.gomaxprocs))
	}
	return append(env, envFunc+"="+fn, envName+"="+o.name, envFiles+"="+strconv.Itoa(len(o.files)))
}

// collect reads the worker's reply and reaps it; it closes done. Once
// the worker has exited, whatever it wrote is in the pipe already: the
// reading gets a short while to finish, in case a process the worker
// started holds the pipe open after all.
func (p *proc) collect(out *os.File) {
	read := make(chan struct{})
	go func() {
		defer close(read)
		var hello [1]byte
		if _, err := io.ReadFull(out, hello[:]); err != nil || hello[0] != helloByte {
			return
		}
		p.hello = true
		var r reply
		if err := gob.NewDecoder(out).Decode(&r); err == nil {
			p.reply = &r
		} else if err != io.EOF {
			p.replyErr = err
		}
	}()
	p.cmd.Wait()
	out.SetReadDeadline(time.Now().Add(replyDrain))
	<-read
	out.Close()
	p.state = p.cmd.ProcessState
	p.exited.Store(true)
	if p.stopCtx != nil {
		p.stopCtx()
	}
	close(p.done)
}

// replyDrain bounds the reading of a reply after the worker has exited.
const replyDrain = time.Second

// Pid returns the worker's process id.
func (p *Process[Out]) Pid() int { return p.cmd.Process.Pid }

// Name returns the process's name.
func (p *Process[Out]) Name() string { return p.name }

// Alive reports whether the worker is still running (or not yet reaped).
func (p *Process[Out]) Alive() bool { return !p.exited.Load() }

// ExitCode returns the worker's exit code, as Python's exitcode: while
// the worker runs it returns -1 (Go's os.ProcessState convention; use
// Alive or Done to tell it from -1 for death by SIGHUP); once the worker
// has died of signal N, -N (Python's exitcode): -15 after Terminate, -9
// after Kill; once it has exited, its exit status: 0 if the function
// returned a result, 1 if it returned an error, panicked, is unknown to
// the worker, or its argument or result could not be encoded or decoded
// (Python's exitcode after an exception in target; Wait returns the
// error), 120 to 122 if the worker could not run it (no Init, its parent
// died, its pipes broke).
func (p *Process[Out]) ExitCode() int {
	if !p.exited.Load() {
		return -1
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal())
	}
	return p.state.ExitCode()
}

// Done returns a channel closed once the worker has exited.
func (p *Process[Out]) Done() <-chan struct{} { return p.done }

// Terminate sends the worker SIGTERM, as Python's terminate(), and the
// worker dies of it: Wait then returns an *ExitError with Signal SIGTERM
// (errors.Is ErrDied) and ExitCode returns -15. Go code gets to clean
// up first: the function's context is cancelled, and the worker dies as
// soon as the function returns, whatever it returns, or TerminateGrace
// after the signal if it has not returned by then (a function that
// ignores its context does not keep the worker alive). A worker still
// starting up dies of the signal at once. Only a worker that had sent its
// result in full before the signal came exits as it would have: Wait
// returns the result (a signal landing in the instant between the last
// byte of the result and the worker's note that it was sent still kills
// it: Wait returns the result and ExitCode -15). A worker whose program
// started with SIGTERM ignored (inherited from a parent that ignores it)
// cannot die of it: it exits with status 1 after its clean-up.
// Terminating a worker that has exited does nothing.
// The signal goes through the process's pidfd, so a pid that was reused
// after the worker exited is never signalled.
func (p *Process[Out]) Terminate() error { return p.signal(syscall.SIGTERM) }

// Kill kills the worker with SIGKILL, as Python's kill(): at once, with
// no clean-up; ExitCode then returns -9.
func (p *Process[Out]) Kill() error { return p.signal(syscall.SIGKILL) }

func (p *proc) signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("process: signal %s to %s (pid %d): %w", sig, p.name, p.cmd.Process.Pid, err)
	}
	return nil
}

// Wait waits until the worker has exited and returns the function's
// result, as Python's join() followed by reading the result. It returns
// ctx.Err() if ctx ends first, leaving the worker running. The errors:
// a *FuncError if the function returned an error or panicked; an
// *ExitError (errors.Is ErrDied) if the worker exited, was terminated or
// was killed without a result; ErrNoInit if the program does not call Init;
// ErrUnknownFunc; ErrCodec if the result cannot be decoded.
func (p *Process[Out]) Wait(ctx context.Context) (Out, error) {
	var out Out
	select {
	case <-p.done:
	case <-ctx.Done():
		return out, ctx.Err()
	}
	r, err := p.result()
	if err != nil {
		return out, err
	}
	if err := p.out.Unmarshal(r, &out); err != nil {
		return out, fmt.Errorf("process: %s (pid %d): %w: result: %w", p.fn, p.Pid(), ErrCodec, err)
	}
	return out, nil
}

func (p *Process[Out]) result() ([]byte, error) {
	pid := p.Pid()
	r := p.reply
	ee := &ExitError{Pid: pid, Code: p.state.ExitCode()}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		ee.Signal = ws.Signal()
	}
	switch {
	case !p.hello && (ee.Code == exitNoInit || ee.Code == 0):
		return nil, fmt.Errorf("process: %s (pid %d) exited with status %d without reaching process.Init to run %s: %w",
			p.name, pid, ee.Code, p.fn, ErrNoInit)
	case !p.hello:
		// Killed, or failed while starting up (a panic in a package's
		// initialisation, say): its standard error says why.
		return nil, fmt.Errorf("process: %s died while starting up (before reaching process.Init): %w", p.name, ee)
	case r == nil && p.replyErr != nil && (ee.Code == 0 || ee.Code == exitFuncFailed) && ee.Signal == 0:
		// It exited normally, but what it sent back cannot be read.
		return nil, fmt.Errorf("process: %s (pid %d): %w: reply: %w", p.name, pid, ErrCodec, p.replyErr)
	case r == nil:
		return nil, fmt.Errorf("process: %s: %w", p.name, ee)
	case r.Unknown:
		return nil, fmt.Errorf("process: %s (pid %d): %q: %w", p.name, pid, p.fn, ErrUnknownFunc)
	case r.Codec:
		return nil, fmt.Errorf("process: %s (pid %d): %s: %w", p.name, pid, r.Err, ErrCodec)
	case r.Err != "" || r.Panic:
		return nil, &FuncError{Func: p.fn, Pid: pid, Message: r.Err, Panic: r.Panic, Stack: r.Stack}
	}
	return r.Result, nil
}

// isCodec reports whether err is an encoding or decoding error.
func isCodec(err error) bool { return errors.Is(err, ErrCodec) }
