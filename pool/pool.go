package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/codec"
	"github.com/xproc-go/xproc/internal/ring"
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
	workers  []*worker        // by slot: the worker running in it, if any
	live     map[*worker]bool // workers started and not yet reaped
	starting int              // workers being started
	// usingTasks counts the uses of the tasks queue under way (see
	// usingTasks): Add under mu while the pool is open, Done without it.
	usingTasks  sync.WaitGroup
	tokens      map[uint64]bool // tokens of the workers started and not yet reaped
	ready       map[uint64]bool // tokens of the workers that said they are ready
	exits       map[int]error   // how recent workers ended, by pid (see workerExit)
	exitOrder   []int
	earlyDeaths int   // workers killed in a row before they were ready
	lastExit    error // how the last worker that exited unexpectedly ended
	calls       map[uint64]*call
	batches     map[uint64]*batch
	cancels     int           // the next slot of the cancelled ring
	changed     chan struct{} // closed and replaced when a worker exits or a call ends
	routerWG    sync.WaitGroup
	resends     sync.WaitGroup // failRunning's resend goroutines
	closeErr    error
	closed      chan struct{}
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
	left  int    // calls not yet answered
	got   []bool // which calls are answered, once answers come in parts
	// With Retries: the task message, to send again when the worker
	// running the batch dies, and the times it was sent again.
	msg     []byte
	retries int
}

// take records answer r, for calls r.first.. of b, marking in r.fresh
// those not answered before (a batch answered in parts, then again by
// another worker after a death, is answered twice), and reports whether
// every call of b is answered. The caller holds p.mu.
func (b *batch) take(r *result) (done bool) {
	if r.first == 0 && r.count == b.count && b.left == b.count {
		b.left = 0
		return true
	}
	if r.first < 0 || r.count < 0 || r.first+r.count > b.count {
		r.count = 0 // not an answer to this batch
		return false
	}
	if b.got == nil {
		b.got = make([]bool, b.count)
	}
	r.fresh = make([]bool, r.count)
	for i := range r.count {
		if !b.got[r.first+i] {
			b.got[r.first+i], r.fresh[i] = true, true
			b.left--
		}
	}
	return b.left == 0
}

// Sizes of the queues between the parent and the workers. A batch's
// arguments, or its results, must fit in maxMessage; batches are cut to
// fit. A ring of ringSize takes a message of maxMessage wherever its free
// space starts (ring.MaxPayloadFor), and automatic batches are cut to a
// quarter of that, so several are in flight. Larger rings would add to
// the start-up, whose largest part is reserving their memory (8 MiB
// rings: 1.3 ms more per New, and no faster Map).
const (
	ringSize   = 4 << 20
	maxMessage = ringSize/2 - ring.HeaderSize
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
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.initErr != nil {
		return nil, fmt.Errorf("pool: initializer %s: %w: argument: %w", o.initName, process.ErrCodec, o.initErr)
	}
	o.serialize()
	n := o.workerCount()
	if o.gomaxprocs == 0 {
		o.gomaxprocs = max(1, process.CPUCount()/n)
	}
	p := &Pool{o: o, n: n, live: map[*worker]bool{}, tokens: map[uint64]bool{}, ready: map[uint64]bool{}, exits: map[int]error{},
		calls: map[uint64]*call{}, batches: map[uint64]*batch{},
		changed: make(chan struct{}), closed: make(chan struct{})}
	if err := p.makeSegments(); err != nil {
		return nil, err
	}
	p.routerWG.Add(1)
	go p.route()
	p.workers = make([]*worker, n)
	// The workers start side by side: most of a start is the kernel's
	// and the new process's work, and the cores are idle meanwhile.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.startWorker(i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
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

// makeSegments creates the two queues, side by side (reserving a ring's
// memory takes a few milliseconds), and the control array.
func (p *Pool) makeSegments() error {
	var errTasks, errResults error
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.tasks, errTasks = queue.CreateAnonymous(queue.Options{Size: ringSize, MaxMessage: maxMessage})
	}()
	p.results, errResults = queue.CreateAnonymous(queue.Options{Size: ringSize, MaxMessage: maxMessage})
	<-done
	if err := errors.Join(errTasks, errResults); err != nil {
		if errTasks == nil {
			p.tasks.Close()
		}
		if errResults == nil {
			p.results.Close()
		}
		return err
	}
	if p.n >= process.CPUCount() {
		// The workers keep every CPU busy: the router, waiting for
		// results, would spin on a CPU a worker needs. It sleeps at once
		// (Map of one call per message: 0.41 to about 0.6 M calls/s;
		// commit 05810e7).
		p.results.SetSpin(0)
	}
	var err error
	if p.ctl, err = array.CreateAnonymous[uint64](ctlLayout{p.n}.len()); err != nil {
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
//
// While it starts, p.starting counts it, so that terminate waits for it
// before it closes the segments the worker is handed; a worker started
// after all is killed at once.
func (p *Pool) startWorker(i int) error {
	token := p.nextID.Add(1)
	p.mu.Lock()
	if p.state == stateClosed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.starting++
	p.tokens[token] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.starting--
		p.signal()
		p.mu.Unlock()
	}()
	cfg := workerConfig{Slot: i, Token: token, Retries: p.o.retries, MaxTasks: p.o.maxTasks, MaxRSS: p.o.maxRSS,
		NoWatchdog: p.o.noWatchdog, Init: p.o.initName, InitArg: p.o.initArg}
	proc, err := process.Start(context.Background(), workerLoop, cfg,
		process.Files(p.tasks.File(), p.results.File(), p.ctl.Segment().File()),
		process.GOMAXPROCS(p.o.gomaxprocs), process.Name(fmt.Sprintf("PoolWorker-%d", i+1)),
		process.Stdout(p.o.stdout), process.Stderr(p.o.stderr))
	if err != nil {
		p.mu.Lock()
		delete(p.tokens, token)
		p.mu.Unlock()
		return err
	}
	w := &worker{slot: i, token: token, p: proc, pid: proc.Pid(), done: make(chan struct{})}
	p.mu.Lock()
	p.workers[i] = w
	p.live[w] = true
	p.mu.Unlock()
	go p.monitor(w)
	return nil
}

// exitedOverRSS reports whether err is the exit of a worker that passed
// MaxRSS while running a function (workerState.overRSS).
func exitedOverRSS(err error) bool {
	var ee *process.ExitError
	return errors.As(err, &ee) && ee.Signal == 0 && ee.Code == exitMaxRSS
}

// maxEarlyDeaths is how many workers in a row may be killed before they
// are ready (by the OOM killer in the initializer, say) before the pool
// gives up and counts itself broken.
const maxEarlyDeaths = 5

// monitor waits for w to exit, then replaces it while the pool has work:
// while it is open, and while it is closing with calls left (Close lets
// them finish). A worker that failed by itself before it was ready
// (its initializer, a program without process.Init), or too many killed
// before they were ready, make the pool broken; when no worker is left,
// the calls under way fail with that.
func (p *Pool) monitor(w *worker) {
	_, w.err = w.p.Wait(context.Background())
	p.mu.Lock()
	defer p.mu.Unlock()
	// A worker that returned nil had put its ready message (runWorker
	// sends it first), even if the router has not read it yet; so had
	// one that passed MaxRSS running a function.
	ready := p.ready[w.token] || w.err == nil || exitedOverRSS(w.err)
	delete(p.ready, w.token)
	delete(p.tokens, w.token)
	delete(p.live, w)
	if p.workers[w.slot] == w {
		p.workers[w.slot] = nil
	}
	p.recordExit(w)
	var fe *process.FuncError
	var ee *process.ExitError
	killed := errors.As(w.err, &ee) && ee.Signal != 0
	switch {
	case ready:
		p.earlyDeaths = 0
	case killed:
		p.earlyDeaths++
	}
	if p.broken == nil && (errors.As(w.err, &fe) || !ready && !killed || p.earlyDeaths >= maxEarlyDeaths) {
		why := w.err
		if why == nil {
			why = errors.New("exited before it was ready")
		}
		p.broken = fmt.Errorf("%w: worker %d: %w", ErrBroken, w.pid, why)
	}
	if w.err != nil {
		p.lastExit = fmt.Errorf("worker %d: %w", w.pid, w.err)
	}
	p.failRunning(w)
	// done closes once the pool's records no longer count w: whoever
	// waited for it then sees it gone (in Pids, say).
	close(w.done)
	p.signal()
	replace := p.broken == nil && (p.state == stateOpen || p.state == stateClosing && len(p.calls) > 0)
	if !replace {
		p.failIfStranded()
		return
	}
	p.mu.Unlock()
	// A worker that died holding a lease gives it back now rather than
	// at the next scan of the queue.
	if errors.Is(w.err, process.ErrDied) {
		p.useTasks(func() error { _, err := p.tasks.Recover(context.Background()); return err })
	}
	err := p.startWorker(w.slot)
	p.mu.Lock()
	if err != nil && p.broken == nil && p.state != stateClosed {
		p.broken = fmt.Errorf("%w: restarting worker %d: %w", ErrBroken, w.slot+1, err)
		p.signal()
	}
	p.failIfStranded()
}

// failRunning deals with the batch that w was running when it died (see
// workerState.serve: the batch word in the control array stands for the
// batch's lease once the worker runs it): it sends the batch again if a
// retry is left (Retries), and fails its calls with ErrWorkerDied
// otherwise. It then clears w's words in the control array, which its
// replacement takes over. Not after Terminate, whose calls fail with
// ErrClosed. The caller holds p.mu; the control array is still mapped
// (terminate unmaps it once every worker is done).
func (p *Pool) failRunning(w *worker) {
	l := ctlLayout{p.n}
	id := p.ctl.AtomicLoad(l.batch(w.slot))
	p.ctl.AtomicStore(l.call(w.slot), 0)
	p.ctl.AtomicStore(l.batch(w.slot), 0)
	b := p.batches[id]
	if id == 0 || b == nil || p.state == stateClosed {
		return
	}
	if b.retries < p.o.retries {
		b.retries++
		p.resends.Add(1)
		go p.resend(b)
		return
	}
	r := result{batch: id, count: b.count, pid: w.pid, status: statusDied, deadPid: w.pid}
	done := b.take(&r)
	if done {
		delete(p.batches, id)
	}
	if r.count > 0 {
		b.c.answer(b, r, done)
	}
}

// resend puts the task message of b back in the tasks queue. It gives up
// when b's call ends (the Put waits for room while the call lasts), and
// when the pool is terminated (the queue is shut down).
func (p *Pool) resend(b *batch) {
	defer p.resends.Done()
	p.tasks.Put(b.c.ctx, b.msg)
}

// failIfStranded fails every call under way with p.broken when the pool
// is broken and no worker is left to answer them. The caller holds p.mu.
func (p *Pool) failIfStranded() {
	if p.broken == nil || len(p.live) > 0 || p.starting > 0 {
		return
	}
	for _, c := range p.calls {
		c.fail(p.broken)
	}
}

// recordExit remembers how w ended, for the calls it held (see
// workerExit); the oldest records go once there are maxExits. The caller
// holds p.mu.
func (p *Pool) recordExit(w *worker) {
	err := w.err
	if err == nil {
		err = fmt.Errorf("worker %d exited", w.pid)
	}
	if _, ok := p.exits[w.pid]; !ok {
		p.exitOrder = append(p.exitOrder, w.pid)
	}
	p.exits[w.pid] = err
	for len(p.exitOrder) > maxExits {
		delete(p.exits, p.exitOrder[0])
		p.exitOrder = p.exitOrder[1:]
	}
}

const maxExits = 1024

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
		switch {
		case errors.Is(err, queue.ErrShutdown), errors.Is(err, queue.ErrClosed):
			return // Close or Terminate
		case err != nil:
			// The results queue is damaged: nothing more can be answered.
			p.mu.Lock()
			if p.broken == nil {
				p.broken = fmt.Errorf("%w: results: %w", ErrBroken, err)
			}
			for _, c := range p.calls {
				c.fail(p.broken)
			}
			p.signal()
			p.mu.Unlock()
			return
		}
		r, err := parseResult(msg)
		if err != nil {
			continue // not from a worker of this pool
		}
		if r.status == statusReady {
			p.mu.Lock()
			if p.tokens[r.batch] { // a worker of this pool, still there
				p.ready[r.batch] = true
			}
			p.signal()
			p.mu.Unlock()
			continue
		}
		p.mu.Lock()
		b := p.batches[r.batch]
		var done bool
		if b != nil {
			done = b.take(&r)
			if done {
				delete(p.batches, r.batch)
			}
		}
		p.mu.Unlock()
		if b != nil && r.count > 0 {
			b.c.answer(b, r, done)
		}
	}
}

// workerExit returns how the worker with pid ended. The worker is dead
// when this is asked; its monitor may not have recorded it yet, and
// signals when it has.
func (p *Pool) workerExit(pid int) error {
	timeout := time.NewTimer(5 * time.Second) // a pid not of this pool's workers
	defer timeout.Stop()
	for {
		p.mu.Lock()
		err, ok := p.exits[pid]
		changed := p.changed
		p.mu.Unlock()
		if ok {
			return err
		}
		select {
		case <-changed:
		case <-timeout.C:
			return fmt.Errorf("worker %d", pid)
		}
	}
}

// Close finishes the work already given to the pool, stops the workers
// and frees the pool's segments: Python's close() then join(). New calls
// fail with ErrClosed. If ctx ends first, it terminates the pool instead
// (the calls under way fail with ErrClosed) and returns ctx.Err(). After
// Close, no worker process is left, not even a zombie. Calling it again
// waits for the first call, or for its own ctx, and returns the first
// call's result (or its ctx.Err()).
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.state != stateOpen {
		p.mu.Unlock()
		select {
		case <-p.closed:
			return p.closeErr
		case <-ctx.Done():
			return ctx.Err()
		}
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
			return ctx.Err()
		}
	}
	// Workers drain what is left (nothing) and exit.
	p.tasks.Shutdown(false)
	for _, w := range p.allWorkers() {
		select {
		case <-w.done:
		case <-ctx.Done():
			p.terminate(ctx.Err())
			return ctx.Err()
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
	p.terminate(nil)
	return nil
}

// terminate kills the workers, fails the calls under way with ErrClosed,
// stops the router and frees the segments, once; Close returns closeErr
// from then on.
func (p *Pool) terminate(closeErr error) {
	p.mu.Lock()
	if p.state == stateClosed {
		p.mu.Unlock()
		<-p.closed
		return
	}
	p.state = stateClosed
	p.closeErr = closeErr
	calls := make([]*call, 0, len(p.calls))
	for _, c := range p.calls {
		calls = append(calls, c)
	}
	p.signal()
	// Workers being started are waited for: they are handed the
	// segments about to be closed, and are killed below.
	for p.starting > 0 {
		changed := p.changed
		p.mu.Unlock()
		<-changed
		p.mu.Lock()
	}
	p.mu.Unlock()
	for _, w := range p.allWorkers() {
		w.p.Kill()
	}
	for _, w := range p.allWorkers() {
		<-w.done
	}
	for _, c := range calls {
		c.fail(ErrClosed)
	}
	p.tasks.Shutdown(true) // a batch being sent (again) gives up
	// No use of the tasks queue begins now that the pool is closed (every
	// Add happened under mu before), so the wait cannot miss one.
	p.usingTasks.Wait()
	p.resends.Wait()
	p.results.Shutdown(true)
	p.routerWG.Wait()
	p.tasks.Close()
	p.results.Close()
	p.ctl.Close()
	close(p.closed)
}

// allWorkers returns every worker process the pool has started that has
// not been reaped yet.
func (p *Pool) allWorkers() []*worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := make([]*worker, 0, len(p.live))
	for w := range p.live {
		ws = append(ws, w)
	}
	return ws
}

// cancelCall stops the work of c, after c's caller gave up: its id goes
// into the cancelled ring, so that workers skip its batches still queued,
// and a worker running one cancels its function's context (within a few
// milliseconds; see workerState.watch). A worker still running a batch of c
// after the grace period is killed, and replaced.
//
// The design's first plan, SIGTERM to the workers running the call, would
// also cancel a batch of another call that such a worker had started in
// the meantime; the ring names the call, so only its functions are
// cancelled.
func (p *Pool) cancelCall(c *call) {
	p.mu.Lock()
	if p.state == stateClosed {
		p.mu.Unlock()
		return // terminated: the workers are gone, the control array with them
	}
	l := ctlLayout{p.n}
	p.ctl.AtomicStore(l.cancelled(p.cancels), c.id)
	p.cancels++
	p.ctl.AtomicStore(l.cancelCount(), uint64(p.cancels))
	for id, b := range p.batches {
		if b.c == c {
			delete(p.batches, id)
		}
	}
	var running []*worker
	for _, w := range p.workers {
		if w != nil && p.ctl.AtomicLoad(l.call(w.slot)) == c.id {
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
				still := p.state != stateClosed && p.ctl.AtomicLoad(l.call(w.slot)) == c.id
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
	b := &batch{c: c, first: first, count: count, left: count}
	if p.o.retries > 0 {
		b.msg = bytes.Clone(msg)
	}
	p.mu.Lock()
	if p.state == stateClosed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.batches[id] = b
	p.usingTasks.Add(1) // see useTasks
	p.mu.Unlock()
	// The wake-up of a worker asleep is deferred to the call's next
	// flush (see drive): a burst of batches costs one system call.
	err = p.tasks.PutDeferred(ctx, msg)
	p.usingTasks.Done()
	if err != nil {
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

// flush wakes the workers asleep for the batches sent with PutDeferred.
func (p *Pool) flush() {
	p.useTasks(func() error { p.tasks.Flush(); return nil })
}

// useTasks runs f, a use of the tasks queue, unless the pool is
// terminated (ErrClosed); terminate waits for it before it closes the
// queue.
func (p *Pool) useTasks(f func() error) error {
	p.mu.Lock()
	if p.state == stateClosed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.usingTasks.Add(1)
	p.mu.Unlock()
	defer p.usingTasks.Done()
	return f()
}

// fitCount returns how many values of T fit a message, to cut batches.
func fitCount[T any](o codec.Of[T]) int {
	if !o.Raw() {
		return 4096 // a codec's sizes are unknown until encoded
	}
	var zero T
	return max(1, (maxMessage-4096)/max(1, int(unsafe.Sizeof(zero))))
}
