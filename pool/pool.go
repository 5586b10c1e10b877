package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/codec"
	"github.com/xproc-go/xproc/process"
	"github.com/xproc-go/xproc/queue"
)

// Pool is a set of worker processes that run registered functions over
// inputs: Python's multiprocessing.Pool and joblib's Parallel. Start one
// with New; run work on it with Map, Imap, ImapUnordered, Starmap, Apply
// and ApplyAsync, from any number of goroutines; stop it with Close or
// Terminate. Its methods are safe for concurrent use.
type Pool struct {
	o       options
	n       int
	tasks   *queue.Queue
	results *queue.Queue
	ctl     *array.Array[uint64]

	nextID atomic.Uint64 // call and batch ids: one sequence, never 0

	mu       sync.Mutex
	state    int // open, closing, closed
	broken   error
	workers  []*worker
	byPid    map[int]*worker
	lastExit error           // how the last worker that exited unexpectedly ended
	ready    map[uint64]bool // tokens of the workers that said they are ready
	calls    map[uint64]*call
	batches  map[uint64]*batch
	cancels  int           // the next slot of the cancelled ring
	changed  chan struct{} // closed and replaced when a worker exits or a call ends
	routerWG sync.WaitGroup
	closeErr error
	closed   chan struct{}
}

const (
	stateOpen = iota
	stateClosing
	stateClosed
)

// worker is one worker process of the pool.
type worker struct {
	slot  int
	token uint64 // this start's, in its ready message
	p     *process.Process[struct{}]
	pid   int
	// set once the process has exited (done closed):
	done chan struct{}
	err  error // what Wait said
}

// batch is a batch of calls sent to the workers and not yet answered.
type batch struct {
	c     *call
	first int // index of its first input in the call
	count int
	sent  time.Time
}

// Errors returned by this package, wrapped; compare with errors.Is.
var (
	// ErrWorkerDied is the error (in a *TaskError) of a call whose worker
	// died while running it, when no retry was left.
	ErrWorkerDied = errors.New("pool: the worker running the task died")
	// ErrClosed is returned for calls made after Close or Terminate, and
	// for calls still running when Terminate is called.
	ErrClosed = errors.New("pool: closed")
	// ErrBroken is returned when a worker cannot be started or its
	// initializer fails: the pool cannot run anything.
	ErrBroken = errors.New("pool: broken")
)

// Sizes of the queues between the parent and the workers. A batch's
// arguments, or its results, must fit in maxMessage; batches are cut to
// fit.
const (
	ringSize   = 8 << 20
	maxMessage = 2 << 20
)

// New starts a pool of worker processes and returns once every worker is
// running and has run the initializer, if there is one: Python's
// Pool(processes, initializer, initargs, maxtasksperchild). The workers
// are this program started again (see package process: main must call
// process.Init first). ctx bounds the start-up; the pool then runs until
// Close or Terminate, which must be called.
//
// It fails with ctx.Err(), or with ErrBroken if a worker exits while
// starting (its initializer failed, say), and leaves nothing running.
func New(ctx context.Context, opts ...Option) (*Pool, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.initErr != nil {
		return nil, fmt.Errorf("pool: initializer %s: %w: argument: %w", o.initName, process.ErrCodec, o.initErr)
	}
	n := o.workerCount()
	if o.gomaxprocs == 0 {
		o.gomaxprocs = max(1, process.CPUCount()/n)
	}
	p := &Pool{o: o, n: n, byPid: map[int]*worker{}, calls: map[uint64]*call{}, batches: map[uint64]*batch{}, ready: map[uint64]bool{},
		changed: make(chan struct{}), closed: make(chan struct{})}
	if err := p.makeSegments(); err != nil {
		return nil, err
	}
	p.routerWG.Add(1)
	go p.route()
	p.workers = make([]*worker, n)
	for i := range n {
		if err := p.startWorker(i); err != nil {
			p.Terminate()
			return nil, fmt.Errorf("pool: starting worker %d: %w: %w", i+1, ErrBroken, err)
		}
	}
	if err := p.awaitReady(ctx); err != nil {
		p.Terminate()
		return nil, err
	}
	return p, nil
}

func (p *Pool) makeSegments() error {
	var err error
	if p.tasks, err = queue.CreateAnonymous(queue.Options{Size: ringSize, MaxMessage: maxMessage}); err != nil {
		return err
	}
	if p.results, err = queue.CreateAnonymous(queue.Options{Size: ringSize, MaxMessage: maxMessage}); err != nil {
		p.tasks.Close()
		return err
	}
	if p.ctl, err = array.CreateAnonymous[uint64](p.n + cancelRing + 1); err != nil {
		p.tasks.Close()
		p.results.Close()
		return err
	}
	return nil
}

// Workers returns the number of worker processes.
func (p *Pool) Workers() int { return p.n }

// Pids returns the pids of the pool's workers now running.
func (p *Pool) Pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, w := range p.workers {
		if w != nil {
			pids = append(pids, w.pid)
		}
	}
	return pids
}

// startWorker starts the worker of slot i. The caller holds no lock.
func (p *Pool) startWorker(i int) error {
	token := p.nextID.Add(1)
	cfg := workerConfig{Slot: i, Token: token, Retries: p.o.retries, MaxTasks: p.o.maxTasks, MaxRSS: p.o.maxRSS,
		Init: p.o.initName, InitArg: p.o.initArg}
	proc, err := process.Start(context.Background(), workerLoop, cfg,
		process.Files(p.tasks.File(), p.results.File(), p.ctl.Segment().File()),
		process.GOMAXPROCS(p.o.gomaxprocs), process.Name(fmt.Sprintf("PoolWorker-%d", i+1)),
		process.Stdout(p.o.stdout), process.Stderr(p.o.stderr))
	if err != nil {
		return err
	}
	w := &worker{slot: i, token: token, p: proc, pid: proc.Pid(), done: make(chan struct{})}
	p.mu.Lock()
	p.workers[i] = w
	p.byPid[w.pid] = w
	p.mu.Unlock()
	go p.monitor(w)
	return nil
}

// monitor waits for w to exit, then replaces it while the pool is open.
func (p *Pool) monitor(w *worker) {
	_, w.err = w.p.Wait(context.Background())
	close(w.done)
	p.mu.Lock()
	ready := p.ready[w.token]
	delete(p.ready, w.token)
	open := p.state == stateOpen && p.broken == nil
	if p.workers[w.slot] == w {
		p.workers[w.slot] = nil
	}
	var initErr error
	var fe *process.FuncError
	var ee *process.ExitError
	killed := errors.As(w.err, &ee) && ee.Signal != 0
	if errors.As(w.err, &fe) || !ready && !killed {
		// The worker's loop itself failed, or the worker never got as
		// far as taking tasks (its initializer failed, the program does
		// not call process.Init): a replacement would fail the same way.
		initErr = w.err
		if initErr == nil {
			initErr = errors.New("exited before it was ready")
		}
		if p.broken == nil {
			p.broken = fmt.Errorf("%w: worker %d: %w", ErrBroken, w.pid, initErr)
		}
	}
	if w.err != nil {
		p.lastExit = fmt.Errorf("worker %d: %w", w.pid, w.err)
	}
	p.signal()
	p.mu.Unlock()
	if !open || initErr != nil {
		return
	}
	// A worker that died holding a lease gives it back now rather than
	// at the next scan of the queue.
	if errors.Is(w.err, process.ErrDied) {
		p.tasks.Recover(context.Background())
	}
	if err := p.startWorker(w.slot); err != nil {
		p.mu.Lock()
		if p.broken == nil {
			p.broken = fmt.Errorf("%w: restarting worker %d: %w", ErrBroken, w.slot+1, err)
		}
		p.signal()
		p.mu.Unlock()
	}
}

// signal wakes whoever waits for a change (a worker's exit, a call's
// end). The caller holds p.mu.
func (p *Pool) signal() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// awaitReady waits until every worker has said it is ready.
func (p *Pool) awaitReady(ctx context.Context) error {
	for {
		p.mu.Lock()
		ready := 0
		for _, w := range p.workers {
			if w != nil && p.ready[w.token] {
				ready++
			}
		}
		broken, changed := p.broken, p.changed
		var exited error
		for _, w := range p.workers {
			if w == nil {
				exited = p.lastExit
				if exited == nil {
					exited = errors.New("a worker exited while starting")
				}
			}
		}
		p.mu.Unlock()
		switch {
		case broken != nil:
			return broken
		case exited != nil:
			return fmt.Errorf("%w: %w", ErrBroken, exited)
		case ready == p.n:
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// route reads the results queue until the pool closes, handing each
// batch's answer to its call.
func (p *Pool) route() {
	defer p.routerWG.Done()
	for {
		msg, err := p.results.Get(context.Background())
		if err != nil {
			return // shut down by Close or Terminate
		}
		r, err := parseResult(msg)
		if err != nil {
			continue // not from a worker of ours
		}
		if r.status == statusReady {
			p.mu.Lock()
			p.ready[r.batch] = true // the worker's token
			p.signal()
			p.mu.Unlock()
			continue
		}
		p.mu.Lock()
		b := p.batches[r.batch]
		delete(p.batches, r.batch) // a second answer (a redelivery) is dropped
		p.mu.Unlock()
		if b != nil {
			b.c.answer(b, r)
		}
	}
}

// workerExit returns how the worker with pid ended, waiting for it to be
// reaped (it is dead already when this is asked).
func (p *Pool) workerExit(pid int) error {
	p.mu.Lock()
	w := p.byPid[pid]
	p.mu.Unlock()
	if w == nil {
		return fmt.Errorf("worker %d", pid)
	}
	select {
	case <-w.done:
		if w.err != nil {
			return w.err
		}
		return fmt.Errorf("worker %d exited", pid)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("worker %d", pid)
	}
}

// Close finishes the work already given to the pool, stops the workers
// and frees the pool's segments: Python's close() then join(). New calls
// fail with ErrClosed. If ctx ends first, it terminates the pool instead
// and returns ctx.Err(). After Close, no worker process is left, not even
// a zombie. Calling it again returns the first call's result.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.state != stateOpen {
		p.mu.Unlock()
		<-p.closed
		return p.closeErr
	}
	p.state = stateClosing
	p.mu.Unlock()
	// Wait for the calls under way.
	for {
		p.mu.Lock()
		busy, changed := len(p.calls), p.changed
		p.mu.Unlock()
		if busy == 0 {
			break
		}
		select {
		case <-changed:
			continue
		case <-ctx.Done():
			p.terminate(ctx.Err())
			return p.closeErr
		}
	}
	// Workers drain what is left (nothing) and exit.
	p.tasks.Shutdown(false)
	for _, w := range p.allWorkers() {
		select {
		case <-w.done:
		case <-ctx.Done():
			p.terminate(ctx.Err())
			return p.closeErr
		}
	}
	p.terminate(nil)
	return p.closeErr
}

// Terminate stops the workers at once (SIGKILL), as Python's
// terminate(): calls under way fail with ErrClosed. It waits until every
// worker has been reaped and frees the pool's segments. Calling it again,
// or after Close, does nothing.
func (p *Pool) Terminate() error {
	p.terminate(ErrClosed)
	return nil
}

// terminate kills the workers, fails the calls with why (if not nil),
// stops the router and frees the segments, once.
func (p *Pool) terminate(why error) {
	p.mu.Lock()
	if p.state == stateClosed {
		p.mu.Unlock()
		<-p.closed
		return
	}
	p.state = stateClosed
	p.closeErr = why
	if errors.Is(why, ErrClosed) {
		p.closeErr = nil
	}
	calls := make([]*call, 0, len(p.calls))
	for _, c := range p.calls {
		calls = append(calls, c)
	}
	p.signal()
	p.mu.Unlock()
	for _, w := range p.allWorkers() {
		w.p.Kill()
	}
	for _, w := range p.allWorkers() {
		<-w.done
	}
	if why == nil {
		why = ErrClosed
	}
	for _, c := range calls {
		c.fail(why)
	}
	p.results.Shutdown(true)
	p.routerWG.Wait()
	p.tasks.Close()
	p.results.Close()
	p.ctl.Close()
	close(p.closed)
}

// allWorkers returns every worker process the pool has started that may
// not have been reaped yet.
func (p *Pool) allWorkers() []*worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ws []*worker
	for _, w := range p.byPid {
		select {
		case <-w.done:
		default:
			ws = append(ws, w)
		}
	}
	return ws
}

// cancelCall stops the work of c, after c's caller gave up: its id goes
// into the cancelled ring, so that workers skip its batches still queued,
// and a worker running one cancels its function's context (within a few
// milliseconds; see watchCancels). A worker still running a batch of c
// after the grace period is killed, and replaced.
//
// The design's first plan, SIGTERM to the workers running the call, would
// also cancel a batch of another call that such a worker had started in
// the meantime; the ring names the call, so only its functions are
// cancelled.
func (p *Pool) cancelCall(c *call) {
	p.mu.Lock()
	base := p.n
	p.ctl.AtomicStore(base+p.cancels%cancelRing, c.id)
	p.cancels++
	for id, b := range p.batches {
		if b.c == c {
			delete(p.batches, id)
		}
	}
	var running []*worker
	for _, w := range p.workers {
		if w != nil && p.ctl.AtomicLoad(w.slot) == c.id {
			running = append(running, w)
		}
	}
	grace := p.o.grace
	p.mu.Unlock()
	for _, w := range running {
		go func(w *worker) {
			select {
			case <-w.done:
			case <-p.closed:
			case <-time.After(grace):
				p.mu.Lock()
				still := p.state != stateClosed && p.ctl.AtomicLoad(w.slot) == c.id
				p.mu.Unlock()
				if still {
					w.p.Kill() // its function ignores its context
				}
			}
		}(w)
	}
}

// submit sends a batch of c: inputs first..first+count-1, encoded by
// args.
func (p *Pool) submit(ctx context.Context, c *call, first, count int, args func([]byte) ([]byte, error)) error {
	id := p.nextID.Add(1)
	msg, err := appendTask(c.buf[:0], &task{batch: id, call: c.id, count: count, fn: c.fn}, args)
	if err != nil {
		return fmt.Errorf("%w: arguments: %w", process.ErrCodec, err)
	}
	c.buf = msg
	b := &batch{c: c, first: first, count: count, sent: time.Now()}
	p.mu.Lock()
	if p.state == stateClosed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.batches[id] = b
	p.mu.Unlock()
	if err := p.tasks.Put(ctx, msg); err != nil {
		p.mu.Lock()
		delete(p.batches, id)
		p.mu.Unlock()
		if errors.Is(err, queue.ErrShutdown) || errors.Is(err, queue.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	return nil
}

// fitCount returns how many values of T fit a message, to cut batches.
func fitCount[T any](o codec.Of[T]) int {
	if !o.Raw() {
		return 4096 // gob: sizes unknown until encoded
	}
	var zero T
	return max(1, (maxMessage-4096)/max(1, int(unsafe.Sizeof(zero))))
}
