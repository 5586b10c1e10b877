package pool

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/xproc-go/xproc/internal/codec"
	"github.com/xproc-go/xproc/process"
	"github.com/xproc-go/xproc/shm"
)

// Option configures New.
type Option func(*options)

type options struct {
	workers    int
	gomaxprocs int
	maxTasks   int
	maxRSS     int64
	noWatchdog bool // tests: MaxRSS between batches only
	retries    int
	chunk      int
	grace      time.Duration
	initName   string
	initArg    []byte
	initErr    error
	progress   func() reporter
	stdout     io.Writer
	stderr     io.Writer
}

func defaultOptions() options {
	return options{grace: time.Second, stdout: os.Stdout, stderr: os.Stderr}
}

// Workers sets the number of worker processes. 0 (the default) means
// process.CPUCount(); a negative n counts as joblib's n_jobs does: -1 is
// every CPU, -2 every CPU but one, and so on (at least 1).
func Workers(n int) Option { return func(o *options) { o.workers = n } }

// check refuses the options out of range: each is an error wrapping
// shm.ErrInvalid that names the option and the value, as for every
// argument out of range in xproc.
func (o *options) check() error {
	for _, v := range []struct {
		name string
		v    int64
	}{{"MaxTasksPerChild", int64(o.maxTasks)}, {"MaxRSS", o.maxRSS}, {"Retries", int64(o.retries)},
		{"ChunkSize", int64(o.chunk)}, {"GOMAXPROCS", int64(o.gomaxprocs)}} {
		if v.v < 0 {
			return fmt.Errorf("pool: %w: %s %d (want 0 or more)", shm.ErrInvalid, v.name, v.v)
		}
	}
	if o.grace < 0 {
		return fmt.Errorf("pool: %w: Grace %v (want 0 or more)", shm.ErrInvalid, o.grace)
	}
	return nil
}

func (o *options) workerCount() int {
	switch {
	case o.workers > 0:
		return o.workers
	case o.workers < 0:
		return max(1, process.CPUCount()+1+o.workers)
	}
	return process.CPUCount()
}

// Initializer has each worker run f(arg) once, before its first task,
// as Python's Pool(initializer=f, initargs=(arg,)). A worker whose
// initializer fails makes the pool ErrBroken: New fails with the error,
// and so do later calls if a replacement worker's fails.
func Initializer[In, Out any](f process.Func[In, Out], arg In) Option {
	return func(o *options) {
		o.initName = f.Name()
		o.initArg, o.initErr = codec.For[In](f.Codec()).Marshal(&arg)
	}
}

// MaxTasksPerChild replaces a worker once it has run n calls (Python's
// maxtasksperchild): batches are then at most n calls. 0 means no limit.
func MaxTasksPerChild(n int) Option { return func(o *options) { o.maxTasks = n } }

// MaxRSS caps each worker's resident memory at bytes (0, the default:
// no cap). A watchdog in the worker reads its resident memory every 5ms
// while a function runs; once it exceeds bytes, the calls of the batch
// running fail with a *TaskError wrapping ErrMaxRSS (naming the worker's
// pid, its resident memory and the cap), the worker exits, and a
// replacement starts; the other calls go on. The memory is also checked
// after each batch, and a worker past the cap then is replaced, its
// results delivered. A function that allocates fast can pass the cap by
// what it allocates within one 5ms period before it is stopped: some 12
// MiB (2.5 MiB/ms) where each 4 KiB page is faulted in alone, but
// hundreds of MiB where the kernel backs a large allocation with
// transparent huge pages (a 512 MiB Go slice was made resident in 2ms on
// the machine this was measured on). Set the cap below the memory there
// is to spare by that much.
//
// Resident memory is what /proc/self/statm counts: the program's own
// pages (about 8 MiB for a small Go program, several times that with the
// race detector) and the parts of the pool's rings the worker has
// touched are in it, so a cap of a few MiB fails every call that runs
// for more than one check (5ms) with ErrMaxRSS, and replaces the worker.
func MaxRSS(bytes int64) Option { return func(o *options) { o.maxRSS = bytes } }

// Retries runs a batch again, up to n more times, when the worker running
// it dies; after that its calls fail with ErrWorkerDied (the default, n
// 0, fails them at once). Functions that may run twice must tolerate it.
// With n > 0, the parent keeps each batch's encoded arguments until it is
// answered, to send them again.
func Retries(n int) Option { return func(o *options) { o.retries = n } }

// ChunkSize sends calls to the workers in batches of at most n (Python's
// chunksize): of n when the inputs are at hand (Map), of those read so far
// when Imap's input is slower than the workers. 0, the default, sizes batches automatically, as joblib's
// batch_size="auto" does: the first calls go one at a time, then batches
// are sized to take about 0.2s each by a moving average of the time per
// call (so they follow a change of speed within a few batches), but no
// more than a quarter
// of each worker's share of what is left (Python's default chunking), so
// that the workers finish together. It holds for every call of the pool,
// where Python's chunksize is given to each map: calls that need another
// size need another pool (pools are cheap to start; see the README's
// figures).
func ChunkSize(n int) Option { return func(o *options) { o.chunk = n } }

// GOMAXPROCS sets each worker's GOMAXPROCS. The default is the CPUs
// divided among the workers (at least 1), so that the workers do not
// oversubscribe the machine.
func GOMAXPROCS(n int) Option { return func(o *options) { o.gomaxprocs = n } }

// Grace is how long a worker running a cancelled call has, once its
// function's context is cancelled, before it is killed (SIGKILL) and
// replaced. Default 1s.
func Grace(d time.Duration) Option { return func(o *options) { o.grace = d } }

// Stdout and Stderr set where the workers' standard output and error go
// (default: this process's). A writer that is not an *os.File is written
// by one goroutine per worker, in turns: it need not be safe for
// concurrent use, and Stdout and Stderr may be the same writer.
func Stdout(w io.Writer) Option { return func(o *options) { o.stdout = w } }

// Stderr: see Stdout.
func Stderr(w io.Writer) Option { return func(o *options) { o.stderr = w } }

// serialize makes the workers' writes to the same writer take turns.
// An *os.File is handed to the workers as it is.
func (o *options) serialize() {
	wrap := func(w io.Writer) io.Writer {
		if _, ok := w.(*os.File); ok || w == nil {
			return w
		}
		return &lockedWriter{w: w}
	}
	same := o.stdout != nil && reflect.TypeOf(o.stdout).Comparable() && o.stdout == o.stderr
	o.stdout = wrap(o.stdout)
	if same {
		o.stderr = o.stdout
	} else {
		o.stderr = wrap(o.stderr)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Progress calls fn(done, total) as the calls of each Map, Imap,
// ImapUnordered, Starmap, Apply, ApplyAsync or MapAsync complete: done
// calls of total (-1 while unknown, for Imap and ImapUnordered, until
// their input ends). Each call of fn reports a change; when a call runs
// to its end, the last has done == total (one stopped early, cancelled or
// ended by the pool's closing stops reporting where it was). fn runs in
// the goroutine that called Map (or ranges over Imap; for ApplyAsync and
// MapAsync, a goroutine of the pool's), so calls under way at once call
// fn at once: it must be safe for concurrent use then. Reports come as
// answers arrive, a batch of calls at a time: with automatic batching a
// Map of a few dozen quick calls may report twice in all (ChunkSize(1)
// reports every call, at the cost of a message each). If fn panics, the
// call's work in the workers is cancelled, as when its context ends, and
// the panic goes on in the goroutine that called fn.
func Progress(fn func(done, total int)) Option {
	return func(o *options) {
		o.progress = func() reporter {
			last := [2]int{-1, -1}
			return func(done, total int, _ stage) {
				if now := [2]int{done, total}; now != last {
					last = now
					fn(done, total)
				}
			}
		}
	}
}

// reporter returns a fresh progress reporter for a call, or nil.
func (o *options) reporter() reporter {
	if o.progress == nil {
		return nil
	}
	return o.progress()
}
