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
	MaxRSS   int64  // resident bytes after which it exits between batches; 0: no limit
	Init     string // a registered function run once before the first task
	InitArg  []byte // its argument, gob-encoded
}

// workerLoop is the function every pool worker runs: it takes batches
// from the tasks queue as leases, runs them, puts the results and acks.
var workerLoop = process.Register("xproc.pool.worker", runWorker)

// Control array layout: one word per worker slot, the call it is running
// a batch of (0 when idle); then cancelRing words of recently cancelled
// calls; then the number of calls cancelled so far, which the parent
// stores after the call's word (the parent alone writes both). A worker
// reads the ring again only when that number has changed: a batch costs
// it one load, not a scan.
const cancelRing = 256

// ctlLen returns the length of the control array of a pool of n workers.
func ctlLen(n int) int { return n + cancelRing + 1 }

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
	if cfg.Slot < 0 || cfg.Slot >= ctl.Len()-cancelRing-1 {
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
	w := &workerState{ctx: ctx, cfg: cfg, tasks: tasks, results: results, ctl: ctl, pid: pid}
	w.batchCtx, w.cancelBatch = context.WithCancel(ctx)
	stop := w.watchCancels()
	defer stop()
	if err := w.put(&result{batch: cfg.Token, pid: pid, status: statusReady}); err != nil {
		return none, err
	}
	done := 0
	for {
		l, err := tasks.GetLease(ctx)
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
		n, err := w.serve(l)
		if err != nil {
			return none, err
		}
		done += n
		if cfg.MaxTasks > 0 && done >= cfg.MaxTasks || cfg.MaxRSS > 0 && rss() > cfg.MaxRSS {
			return none, nil // the parent starts a replacement
		}
	}
}

type workerState struct {
	ctx            context.Context
	cfg            workerConfig
	tasks, results *queue.Queue
	ctl            *array.Array[uint64]
	pid            int
	buf            []byte
	// The batches run with batchCtx, which watchCancels cancels when the
	// call of the batch running is cancelled; the next batch then gets a
	// fresh one. current is that call (0 between batches).
	mu          sync.Mutex
	batchCtx    context.Context
	cancelBatch context.CancelFunc
	current     atomic.Uint64
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

// cancelPoll is how often a worker looks for the cancellation of the call
// whose batch it runs.
const cancelPoll = 5 * time.Millisecond

// watchCancels cancels the running batch's context when its call is
// cancelled (the parent writes the call into the cancelled ring), so that
// a cancelled Map stops the functions running for it, and only those.
func (w *workerState) watchCancels() (stop func()) {
	quit := make(chan struct{})
	go func() {
		t := time.NewTicker(cancelPoll)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			if id := w.current.Load(); id != 0 && w.cancelled(id) {
				w.mu.Lock()
				if w.current.Load() == id {
					w.cancelBatch()
				}
				w.mu.Unlock()
			}
		}
	}()
	return func() { close(quit) }
}

// startBatch marks call's batch as running and returns its context.
func (w *workerState) startBatch(call uint64) context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.batchCtx.Err() != nil {
		w.batchCtx, w.cancelBatch = context.WithCancel(w.ctx)
	}
	w.current.Store(call)
	w.ctl.AtomicStore(w.cfg.Slot, call)
	return w.batchCtx
}

func (w *workerState) endBatch() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.current.Store(0)
	w.ctl.AtomicStore(w.cfg.Slot, 0)
}

// serve answers the batch of lease l, acks it and returns the calls it
// ran. The results are put before the ack: a worker killed between the
// two leaves the batch to be answered twice, and the parent keeps the
// first answer; the other order could lose it.
func (w *workerState) serve(l *queue.Lease) (int, error) {
	t, err := parseTask(l.Data())
	if err != nil {
		l.Ack() // nothing to answer: no batch id to answer to
		return 0, nil
	}
	r := result{batch: t.batch, count: t.count, pid: w.pid}
	var rs registry.Results
	switch {
	case l.Redelivered() && l.DeadConsumer() != 0 && l.NumDelivered() > 1+w.cfg.Retries:
		r.status, r.deadPid = statusDied, l.DeadConsumer()
	case w.cancelled(t.call):
		r.status = statusCancelled
	default:
		e, ok := w.lookup(t.fn)
		if !ok {
			r.status = statusUnknown
			break
		}
		ctx := w.startBatch(t.call)
		start := time.Now()
		rs, err = e.Batch(ctx, t.args, t.count)
		r.ns = int64(time.Since(start))
		w.endBatch()
		if err != nil {
			r.status, r.message = statusFailed, trim("arguments: "+err.Error(), maxFailMessage)
		}
	}
	if rs != nil {
		err = w.putResults(r, rs, 0, t.count)
	} else {
		err = w.put(&r)
	}
	if err != nil {
		return 0, err
	}
	if err := l.Ack(); err != nil {
		return 0, err
	}
	if rs == nil {
		return 0, nil
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
	return w.results.Put(w.ctx, w.buf)
}

// cancelled reports whether call is among the recently cancelled calls.
func (w *workerState) cancelled(call uint64) bool {
	count := w.ctl.Len() - 1
	n := w.ctl.AtomicLoad(count)
	if n == 0 {
		return false // nothing ever cancelled
	}
	w.cmu.Lock()
	defer w.cmu.Unlock()
	if n != w.cancelCount {
		base := count - cancelRing
		w.cancelIDs = w.cancelIDs[:0]
		for i := range cancelRing {
			w.cancelIDs = append(w.cancelIDs, w.ctl.AtomicLoad(base+i))
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
