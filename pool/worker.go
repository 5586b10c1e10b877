package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/registry"
	"github.com/xproc-go/xproc/process"
	"github.com/xproc-go/xproc/queue"
)

// workerConfig is what a worker is started with (besides its files: the
// tasks queue, the results queue and the control array, as process.File
// 0, 1 and 2).
type workerConfig struct {
	Slot     int    // this worker's slot in the control array
	Token    uint64 // sent back in the ready message
	Retries  int    // runs of a batch after the first, when a worker died holding it
	MaxTasks int    // calls after which the worker exits and is replaced; 0: no limit
	MaxRSS   int64  // resident bytes past which it exits (see MaxRSS); 0: no limit
	// NoWatchdog (tests only) leaves MaxRSS to the check between
	// batches.
	NoWatchdog bool
	Init       string // a registered function run once before the first task
	InitArg    []byte // its argument, in the function's codec
}

// workerLoop is the function every pool worker runs: it takes batches
// from the tasks queue as leases, runs them, puts the results and acks.
var workerLoop = process.Register("xproc.pool.worker", runWorker)

// ctlLayout places the words of the control array, shared by the parent
// and its workers. For each of the n worker slots, the call and the batch
// the worker is running (0 when idle), which the worker writes; then
// cancelRing words of recently cancelled calls, and the number of calls
// cancelled so far, which the parent alone writes, the count after the
// call's word. A worker reads the ring again only when the count has
// changed: a batch costs it one load, not a scan. The parent reads a dead
// worker's batch word to fail that batch's calls at once.
type ctlLayout struct{ n int }

const cancelRing = 256

// layoutOf returns the layout of a control array of length words.
func layoutOf(length int) ctlLayout { return ctlLayout{n: (length - cancelRing - 1) / 2} }

func (l ctlLayout) len() int            { return 2*l.n + cancelRing + 1 }
func (l ctlLayout) call(slot int) int   { return slot }
func (l ctlLayout) batch(slot int) int  { return l.n + slot }
func (l ctlLayout) cancelled(i int) int { return 2*l.n + i%cancelRing }
func (l ctlLayout) cancelCount() int    { return 2*l.n + cancelRing }

func runWorker(ctx context.Context, cfg workerConfig) (struct{}, error) {
	var none struct{}
	tasks, err := queue.OpenFile(process.File(0))
	if err != nil {
		return none, err
	}
	defer tasks.Close()
	results, err := queue.OpenFile(process.File(1))
	if err != nil {
		return none, err
	}
	defer results.Close()
	ctl, err := array.OpenFile[uint64](process.File(2), 0)
	if err != nil {
		return none, err
	}
	defer ctl.Close()
	if l := layoutOf(ctl.Len()); cfg.Slot < 0 || cfg.Slot >= l.n || l.len() != ctl.Len() {
		return none, fmt.Errorf("pool: worker slot %d out of range", cfg.Slot)
	}
	if cfg.Init != "" {
		e, ok := registry.Lookup(cfg.Init)
		if !ok {
			return none, fmt.Errorf("pool: initializer %q: %w", cfg.Init, process.ErrUnknownFunc)
		}
		if _, err := e.Call(ctx, cfg.InitArg); err != nil {
			return none, fmt.Errorf("pool: initializer %s: %w", cfg.Init, err)
		}
	}
	pid := os.Getpid()
	w := &workerState{ctx: ctx, cfg: cfg, tasks: tasks, results: results, ctl: ctl, layout: layoutOf(ctl.Len()), pid: pid}
	w.batchCtx, w.cancelBatch = context.WithCancel(ctx)
	stop := w.watch()
	defer stop()
	if err := w.put(&result{batch: cfg.Token, pid: pid, status: statusReady}); err != nil {
		return none, err
	}
	stopFlushing := w.deferResults()
	defer stopFlushing()
	done := 0
	for {
		l, err := tasks.TryGetLease()
		if errors.Is(err, queue.ErrEmpty) {
			w.flushResults() // before waiting: the parent has every result
			l, err = tasks.GetLease(ctx)
		}
		switch {
		case err == nil && ctx.Err() != nil:
			l.Nak() // stopping: give it to another worker
			return none, nil
		case errors.Is(err, queue.ErrShutdown), ctx.Err() != nil:
			return none, nil // Close: stop quietly
		case err != nil:
			return none, err
		}
		if t, err := parseTask(l.Data()); err == nil && cfg.MaxTasks > 0 && done > 0 && t.count > cfg.MaxTasks-done {
			// More calls than this worker may still run: leave the batch
			// to another (its replacement, if need be).
			l.Nak()
			return none, nil
		}
		w.guardResults()
		n, err := w.serve(l)
		if err != nil {
			return none, err
		}
		done += n
		// Memory past MaxRSS that watch did not see (the function ended
		// within a watchPoll of taking it) ends the worker here.
		if cfg.MaxTasks > 0 && done >= cfg.MaxTasks || cfg.MaxRSS > 0 && rss() > cfg.MaxRSS {
			return none, nil // the parent starts a replacement
		}
	}
}

type workerState struct {
	// Results go out with PutDeferred once the worker runs batches, and
	// the parent's router, if asleep, is woken once per burst (see
	// deferResults).
	deferring bool
	deferred  int // results put since the last flush
	guard     *flushTimer

	ctx            context.Context
	cfg            workerConfig
	tasks, results *queue.Queue
	ctl            *array.Array[uint64]
	layout         ctlLayout
	pid            int
	buf            []byte // the last result message, reused
	args           []byte // the running batch's arguments, copied out of the ring
	// The batches run with batchCtx, which watch cancels when the call
	// of the batch running is cancelled; the next batch then gets a
	// fresh one. current is that call while its function runs (0
	// otherwise); batch and count are the batch's id and size from
	// startBatch to endBatch.
	mu          sync.Mutex
	batchCtx    context.Context
	cancelBatch context.CancelFunc
	current     atomic.Uint64
	batch       uint64
	count       int
	acked       bool // the running batch's lease is acknowledged: overRSS may answer it
	lastName    string
	lastEntry   registry.Entry
	// The cancelled ring as last read, and the count it was read at.
	cmu         sync.Mutex
	cancelCount uint64
	cancelIDs   []uint64
}

// lookup returns the registered function named fn, remembering the last
// one: a pool's batches mostly call one function.
func (w *workerState) lookup(fn string) (registry.Entry, bool) {
	if fn == w.lastName && w.lastName != "" {
		return w.lastEntry, true
	}
	e, ok := registry.Lookup(fn)
	if ok {
		w.lastName, w.lastEntry = fn, e
	}
	return e, ok
}

// watchPoll is how often a worker looks, while a function runs, for the
// cancellation of its call and, with MaxRSS, at its resident memory. A
// look at the memory reads /proc/self/statm (about 10µs): every 5ms,
// 0.2% of a CPU, in a wake-up that the watch for cancellations makes
// anyway. A function may pass MaxRSS by what it makes resident within
// a period before it is seen to (see MaxRSS); a shorter period would
// cost more for every function, and bound that only where memory comes
// a 4 KiB page at a time.
const watchPoll = 5 * time.Millisecond

// exitMaxRSS is the exit status of a worker that has passed MaxRSS while
// running a function (see overRSS).
const exitMaxRSS = 3

// watch, every watchPoll while a function runs, cancels its batch's
// context when its call is cancelled (the parent writes the call into
// the cancelled ring), so that a cancelled Map stops the functions
// running for it, and only those; and, with MaxRSS, ends the worker once
// its resident memory has passed MaxRSS (overRSS).
func (w *workerState) watch() (stop func()) {
	quit := make(chan struct{})
	watchRSS := w.cfg.MaxRSS > 0 && !w.cfg.NoWatchdog
	go func() {
		t := time.NewTicker(watchPoll)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			id := w.current.Load()
			if id == 0 {
				continue
			}
			if w.cancelled(id) {
				w.mu.Lock()
				if w.current.Load() == id {
					w.cancelBatch()
				}
				w.mu.Unlock()
			}
			if watchRSS {
				if r := rss(); r > w.cfg.MaxRSS {
					w.overRSS(r)
				}
			}
		}
	}()
	return func() { close(quit) }
}

// overRSS ends the worker, whose resident memory, r bytes, has passed
// MaxRSS while it runs a function: it answers the batch running as
// failed with statusMaxRSS (its calls fail with ErrMaxRSS), clears the
// batch's words in the control array (the parent is not to take the
// exit for a death holding the batch, which would fail it with
// ErrWorkerDied or send it again), and exits with exitMaxRSS; the
// parent starts a replacement. The function cannot be stopped otherwise.
// A batch whose function has returned (or whose lease is not yet
// acknowledged) is not answered here: its results are sent as usual, and
// the check after the batch ends the worker. If the answer cannot be sent,
// the worker exits all the same, with the batch's words set: its calls
// fail with ErrWorkerDied.
func (w *workerState) overRSS(r int64) {
	w.mu.Lock() // never unlocked: the batch running stays the one answered
	if w.current.Load() == 0 || w.batch == 0 || !w.acked {
		// Between batches, or before the lease is acknowledged: exiting
		// then would leave the lease to be recovered and the batch run
		// again. The check after the batch ends the worker.
		w.mu.Unlock()
		return
	}
	res := result{batch: w.batch, count: w.count, pid: w.pid, status: statusMaxRSS,
		message: fmt.Sprintf("worker %d: resident memory %d bytes, MaxRSS %d bytes", w.pid, r, w.cfg.MaxRSS)}
	if msg, err := appendResult(nil, &res); err == nil && w.results.Put(w.ctx, msg) == nil {
		w.ctl.AtomicStore(w.layout.call(w.cfg.Slot), 0)
		w.ctl.AtomicStore(w.layout.batch(w.cfg.Slot), 0)
	}
	os.Exit(exitMaxRSS)
}

// startBatch marks batch, of call and of count calls, as running and
// returns its context.
func (w *workerState) startBatch(call, batch uint64, count int) context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.batchCtx.Err() != nil {
		w.batchCtx, w.cancelBatch = context.WithCancel(w.ctx)
	}
	w.batch, w.count = batch, count
	w.current.Store(call)
	w.ctl.AtomicStore(w.layout.batch(w.cfg.Slot), batch)
	w.ctl.AtomicStore(w.layout.call(w.cfg.Slot), call)
	return w.batchCtx
}

// endBatch marks the batch as answered: its results are sent.
func (w *workerState) endBatch() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.current.Store(0)
	w.batch, w.count, w.acked = 0, 0, false
	w.ctl.AtomicStore(w.layout.call(w.cfg.Slot), 0)
	w.ctl.AtomicStore(w.layout.batch(w.cfg.Slot), 0)
}

// serve answers the batch of lease l, acks it and returns the calls it
// ran.
//
// A batch to run is copied out of the ring and its lease acknowledged
// before it runs: a lease held while a long batch runs would keep the
// ring's room behind it from being reused, and stall every call of the
// pool once the ring had gone round. From then on the batch word in the
// control array stands for the lease: the parent fails, or sends again,
// the batch of a worker that dies with it set (Pool.failRunning). The
// word is set before the ack and cleared once the results are sent, so
// that there is no moment at which a death loses the batch; a death at
// either edge has the batch answered twice, and the parent keeps the
// first answer. A batch answered without running (its worker died with
// no retry left, its call was cancelled, its function is unknown) is
// acknowledged after its answer is sent, as before.
func (w *workerState) serve(l *queue.Lease) (int, error) {
	t, err := parseTask(l.Data())
	if err != nil {
		l.Ack() // nothing to answer: no batch id to answer to
		return 0, nil
	}
	r := result{batch: t.batch, count: t.count, pid: w.pid}
	var e registry.Entry
	switch {
	case l.Redelivered() && l.DeadConsumer() != 0 && l.NumDelivered() > 1+w.cfg.Retries:
		r.status, r.deadPid = statusDied, l.DeadConsumer()
	case w.cancelled(t.call):
		r.status = statusCancelled
	default:
		var ok bool
		if e, ok = w.lookup(t.fn); !ok {
			r.status = statusUnknown
		}
	}
	if r.status != statusOK {
		if err := w.put(&r); err != nil {
			return 0, err
		}
		return 0, l.Ack()
	}
	w.args = append(w.args[:0], t.args...)
	ctx := w.startBatch(t.call, t.batch, t.count)
	defer w.endBatch()
	if err := l.Ack(); err != nil {
		return 0, err
	}
	w.mu.Lock()
	w.acked = true
	w.mu.Unlock()
	start := time.Now()
	rs, err := e.Batch(ctx, w.args, t.count)
	r.ns = int64(time.Since(start))
	// Run: a cancellation no longer concerns it, and overRSS no longer
	// answers it (under mu, so that it answers a batch either while it
	// runs or not at all).
	w.mu.Lock()
	w.current.Store(0)
	w.mu.Unlock()
	if err != nil {
		r.status, r.message = statusFailed, trim("arguments: "+err.Error(), maxFailMessage)
		return 0, w.put(&r)
	}
	if err := w.putResults(r, rs, 0, t.count); err != nil {
		return 0, err
	}
	return t.count, nil
}

// putResults puts the results of the batch's calls from to to-1 (and
// their failures) in one message or, if they do not fit one or cannot be
// encoded together, in parts; a call whose result cannot be sent even
// alone is answered as failed. The time the batch took (r.ns) is shared
// among the parts.
func (w *workerState) putResults(r result, rs registry.Results, from, to int) error {
	part := r
	part.first, part.count = from, to-from
	part.ns = r.ns * int64(to-from) / int64(max(1, rs.Len()))
	for _, f := range rs.Failures() {
		if f.Index >= from && f.Index < to {
			part.fails = append(part.fails, f)
		}
	}
	part.fails = trimFailures(part.fails)
	payload, err := rs.Encode(from, to)
	if err == nil {
		part.payload = payload
		if err = w.put(&part); !errors.Is(err, queue.ErrTooLarge) {
			return err
		}
	}
	if to-from == 1 {
		part.status, part.fails, part.payload = statusFailed, nil, nil
		if errors.Is(err, queue.ErrTooLarge) {
			part.status = statusTooLarge
		}
		part.message = trim("result: "+err.Error(), maxFailMessage)
		return w.put(&part)
	}
	h := from + (to-from)/2
	if err := w.putResults(r, rs, from, h); err != nil {
		return err
	}
	return w.putResults(r, rs, h, to)
}

// put sends r to the parent. It returns queue.ErrTooLarge (wrapped) if r
// does not fit a message.
func (w *workerState) put(r *result) error {
	var err error
	if w.buf, err = appendResult(w.buf[:0], r); err != nil {
		return fmt.Errorf("%w: failures: %w", process.ErrCodec, err)
	}
	if !w.deferring {
		return w.results.Put(w.ctx, w.buf)
	}
	err = w.results.PutDeferred(w.ctx, w.buf)
	if w.deferred++; w.deferred >= resultBurst {
		w.flushResults()
	}
	return err
}

// resultBurst bounds the results a worker puts before it wakes the
// parent's router; resultFlushDelay bounds how long one waits while the
// worker runs the next batch.
const (
	resultBurst      = 8
	resultFlushDelay = time.Millisecond
)

// deferResults has the results put from now on wake the parent's router
// once per burst: when the worker finds no batch waiting (before it
// sleeps), after resultBurst results, and, while it runs a batch, within
// resultFlushDelay of a result (a timer, armed at most once per delay).
// One task per message: 1.2-1.4x the calls per second of a wake-up per
// result. It returns the function that flushes and stops the timer, to
// call before the results queue is closed.
func (w *workerState) deferResults() (stop func()) {
	w.deferring = true
	w.guard = newFlushTimer(resultFlushDelay, w.results.Flush)
	return func() {
		w.guard.stop()
		w.flushResults()
	}
}

// flushResults wakes the parent's router for the results put since the
// last flush.
func (w *workerState) flushResults() {
	if w.deferred > 0 {
		w.results.Flush()
		w.deferred = 0
	}
}

// guardResults arms the timer that flushes results deferred while the
// next batch runs, unless it is armed already.
func (w *workerState) guardResults() {
	if w.deferred > 0 {
		w.guard.arm()
	}
}

// cancelled reports whether call is among the recently cancelled calls.
func (w *workerState) cancelled(call uint64) bool {
	n := w.ctl.AtomicLoad(w.layout.cancelCount())
	if n == 0 {
		return false // nothing ever cancelled
	}
	w.cmu.Lock()
	defer w.cmu.Unlock()
	if n != w.cancelCount {
		w.cancelIDs = w.cancelIDs[:0]
		for i := range cancelRing {
			w.cancelIDs = append(w.cancelIDs, w.ctl.AtomicLoad(w.layout.cancelled(i)))
		}
		w.cancelCount = n
	}
	return slices.Contains(w.cancelIDs, call)
}

// rss returns the resident memory of this process in bytes, or 0 if it
// cannot be read.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
