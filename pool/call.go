package pool

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/xproc-go/xproc/internal/codec"
	"github.com/xproc-go/xproc/process"
	"github.com/xproc-go/xproc/queue"
)

// call is one Map, Imap, ImapUnordered or Apply under way.
type call struct {
	p  *Pool
	id uint64
	// ctx is the caller's context, also cancelled when the call fails:
	// what its sends to the workers wait with.
	ctx     context.Context
	cancel  context.CancelFunc
	fn      string
	buf     []byte        // the last task message, reused
	failed  chan struct{} // closed by fail
	failErr error
	once    sync.Once
	// The router appends answers to inbox and wakes the call through
	// arrived (room for one wake-up): it never waits for a caller who is
	// slow to read, so one slow Imap does not hold up the pool's other
	// calls. The inbox holds at most the answers of the batches in
	// flight, which the window bounds.
	mu      sync.Mutex
	inbox   []answer
	arrived chan struct{}
}

type answer struct {
	b    *batch
	r    result
	done bool // the last answer of b
}

// maxWindow bounds the batches of one call in flight.
const maxWindow = 256

// newCall registers a call of fn made with ctx, unless the pool is
// closing or broken.
func (p *Pool) newCall(ctx context.Context, fn string) (*call, error) {
	c := &call{p: p, id: p.nextID.Add(1), fn: fn, failed: make(chan struct{}), arrived: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.state != stateOpen:
		return nil, ErrClosed
	case p.broken != nil:
		return nil, p.broken
	}
	p.calls[c.id] = c
	return c, nil
}

// endCall forgets c; batches still out are dropped when answered.
func (p *Pool) endCall(c *call) {
	c.cancel()
	p.mu.Lock()
	delete(p.calls, c.id)
	for id, b := range p.batches {
		if b.c == c {
			delete(p.batches, id)
		}
	}
	p.signal()
	p.mu.Unlock()
}

// answer hands the result of batch b to c. The router calls it; it never
// blocks.
func (c *call) answer(b *batch, r result, done bool) {
	c.mu.Lock()
	c.inbox = append(c.inbox, answer{b, r, done})
	c.mu.Unlock()
	select {
	case c.arrived <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// takeAnswers returns the answers that have arrived, in order, and
// empties the inbox; spare is reused for the next ones.
func (c *call) takeAnswers(spare []answer) []answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.inbox
	c.inbox = spare[:0]
	return got
}

// fail ends c with err: the pool was terminated under it.
func (c *call) fail(err error) {
	c.once.Do(func() {
		c.failErr = err
		close(c.failed)
		c.cancel() // a send waiting for room gives up
	})
}

// source is where a call's inputs come from: a slice (Map) or an
// iterator that a feeder goroutine reads (Imap, see feed). The
// dispatcher (drive) alone calls its methods.
type source[In any] interface {
	// take returns up to k inputs, those available now (it never
	// waits), and whether the input has ended with them. ahead is how
	// many inputs the dispatcher could send now (k, for each batch the
	// window has room for): a source may read that many ahead.
	take(k, ahead int) (xs []In, ended bool)
	// wait returns a channel that receives when inputs may be available
	// or the input may have ended, for take to be tried again; nil if
	// take never comes back empty before the end.
	wait() <-chan struct{}
	// broken returns a channel closed once reading the input has
	// panicked; rethrow then raises the panic again. nil: never.
	broken() <-chan struct{}
	rethrow()
	// release tells the source that results were yielded, for its
	// bound on reading ahead.
	release()
}

type sliceSource[In any] struct {
	xs []In
	i  int
}

func (s *sliceSource[In]) take(k, _ int) ([]In, bool) {
	k = min(k, len(s.xs)-s.i)
	out := s.xs[s.i : s.i+k]
	s.i += k
	return out, s.i == len(s.xs)
}

func (s *sliceSource[In]) wait() <-chan struct{}   { return nil }
func (s *sliceSource[In]) broken() <-chan struct{} { return nil }
func (s *sliceSource[In]) rethrow()                {}
func (s *sliceSource[In]) release()                {}

// maxHeld bounds how far Imap reads ahead of what it has yielded: the
// inputs read and waiting to be sent, in flight, and with their results
// held back while it waits for an earlier one (or one batch, if
// ChunkSize is larger).
const maxHeld = 8192

// feed reads an Imap's input in a goroutine of its own (the feeder), so
// that the call goes on while the iterator blocks: its results are
// yielded, its context's end is seen, and a batch goes out with the
// inputs read so far rather than waiting for more. The feeder reads
// ahead of the dispatcher by at most what the window has room for
// (ahead), and of the results yielded by at most bound inputs; it asks
// the iterator for an input only when there is room for it. A feeder
// waiting for room is woken once its buffer is half empty (not for each
// input taken), and at most once per round of answers for the bound.
// The iterator is called from the feeder alone. When the call ends, the
// feeder stops at the iterator's next yield (its loop ends, which stops
// the iterator); an iterator that never yields again keeps the feeder,
// and only it.
type feed[In any] struct {
	yielded atomic.Int64 // results the caller has been given (Imap's yield)

	mu       sync.Mutex
	buf      []In // inputs read, not yet taken
	out      []In // the inputs taken last, reused
	ahead    int  // the most buf holds: what the dispatcher could send
	bound    int  // the most inputs read and not yet yielded
	read     int
	ended    bool // the input has ended, or its iterator panicked
	stopping bool // the call has ended
	inIter   bool // the feeder runs the iterator's code, not feed's
	needIn   bool // the dispatcher waits on more
	needRoom bool // the feeder waits on room
	panicked bool
	goexit   bool // the iterator called runtime.Goexit
	pnc      any  // the value of its panic
	raised   bool // rethrow has raised it
	awaited  bool // stop waits for the feeder to return

	more   chan struct{} // room for one: inputs or the end, for the dispatcher
	room   chan struct{} // room for one: room in buf, for the feeder
	quit   chan struct{} // closed by stop
	broke  chan struct{} // closed if the iterator panicked
	exited chan struct{} // closed once the feeder has returned
}

// newFeed starts a feeder reading seq, bound inputs at most ahead of
// the results yielded.
func newFeed[In any](seq iter.Seq[In], bound int) *feed[In] {
	f := &feed[In]{ahead: 1, bound: bound, more: make(chan struct{}, 1), room: make(chan struct{}, 1),
		quit: make(chan struct{}), broke: make(chan struct{}), exited: make(chan struct{})}
	go f.run(seq)
	return f
}

// notify leaves a wake-up in ch, unless one is there already.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// orphanPanic raises a panic of the input iterator that no call is left
// to raise (see stop): in the feeder's goroutine, which ends the program.
// Tests count it instead.
var orphanPanic = func(v any) { panic(v) }

// run is the feeder.
func (f *feed[In]) run(seq iter.Seq[In]) {
	ok := false
	defer func() {
		if !ok {
			v := recover() // nil: runtime.Goexit, which goes on
			// Decide and record in one critical section: a stop in
			// between would neither wait for the feeder nor raise.
			if !f.fail(v) && v != nil {
				// Nobody is left to raise it in, or waits for the
				// feeder: the panic is this goroutine's.
				orphanPanic(v)
				close(f.exited) // tests' orphanPanic returns
				return
			}
		}
		close(f.exited)
	}()
	f.mu.Lock()
	if f.stopping { // the call ended before the feeder began
		f.mu.Unlock()
		ok = true
		return
	}
	f.inIter = true
	f.mu.Unlock()
	for x := range seq {
		if !f.put(x) {
			break
		}
	}
	ok = true
	f.mu.Lock()
	f.ended, f.inIter = true, false
	wake := f.needIn
	f.mu.Unlock()
	if wake {
		notify(f.more)
	}
}

// fail records a panic of the iterator, value v (nil: runtime.Goexit),
// for the dispatcher to raise again, and reports whether it did: not if
// the call has ended without waiting for the feeder (the panic is then
// the feeder's own).
func (f *feed[In]) fail(v any) (recorded bool) {
	f.mu.Lock()
	if f.stopping && !f.awaited {
		f.mu.Unlock()
		return false // the call has ended without waiting for the feeder
	}
	f.ended, f.inIter, f.panicked = true, false, true
	f.pnc, f.goexit = v, v == nil
	f.mu.Unlock()
	close(f.broke)
	return true
}

// hasRoom reports whether the feeder may read another input. The caller
// holds f.mu.
func (f *feed[In]) hasRoom() bool {
	return len(f.buf) < f.ahead && f.read-int(f.yielded.Load()) < f.bound
}

// put adds x, read from the iterator, and waits until there is room for
// another before it returns to the iterator (which then reads one), so
// that the input is read no further ahead than feed allows; it returns
// false once the call has ended.
func (f *feed[In]) put(x In) bool {
	f.mu.Lock()
	f.inIter = false
	if f.stopping {
		f.mu.Unlock()
		return false
	}
	f.buf = append(f.buf, x)
	f.read++
	if f.needIn {
		f.needIn = false
		notify(f.more)
	}
	for !f.stopping && !f.hasRoom() {
		f.needRoom = true
		f.mu.Unlock()
		select {
		case <-f.room:
		case <-f.quit:
		}
		f.mu.Lock()
	}
	ok := !f.stopping
	f.inIter = ok
	f.mu.Unlock()
	return ok
}

func (f *feed[In]) take(k, ahead int) ([]In, bool) {
	f.mu.Lock()
	f.ahead = max(1, ahead)
	n := min(k, len(f.buf))
	f.out = append(f.out[:0], f.buf[:n]...)
	m := copy(f.buf, f.buf[n:])
	clear(f.buf[m:]) // hold no reference to an input taken
	f.buf = f.buf[:m]
	ended := f.ended && !f.panicked && m == 0
	wake := f.wakeFeeder()
	f.mu.Unlock()
	if wake {
		notify(f.room)
	}
	return f.out, ended
}

// wakeFeeder reports whether the feeder waits for room and now has
// enough of it to be woken, and if so counts it woken. The caller holds
// f.mu.
func (f *feed[In]) wakeFeeder() bool {
	if f.needRoom && f.hasRoom() && len(f.buf) <= f.ahead/2 {
		f.needRoom = false
		return true
	}
	return false
}

func (f *feed[In]) wait() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.buf) > 0 || f.ended && !f.panicked { // a panic: broken
		notify(f.more)
	} else {
		f.needIn = true
	}
	return f.more
}

func (f *feed[In]) broken() <-chan struct{} { return f.broke }

// rethrow raises the iterator's panic again, in the dispatcher: the
// caller's goroutine. Its value is the same; its stack is the
// dispatcher's.
func (f *feed[In]) rethrow() {
	f.mu.Lock()
	v, goexit := f.pnc, f.goexit
	f.raised = true
	f.mu.Unlock()
	if goexit {
		runtime.Goexit()
	}
	panic(v)
}

func (f *feed[In]) release() {
	f.mu.Lock()
	wake := f.wakeFeeder()
	f.mu.Unlock()
	if wake {
		notify(f.room)
	}
}

// stop ends the feeder's reading, once the call has ended: at once if
// it waits for room, at the iterator's next yield if it is running the
// iterator. In the first case (or if it has ended) stop waits until the
// iterator has returned, as iter.Pull's stop does, and raises a panic of
// the iterator that the call has not raised; in the second it does not
// wait for the iterator, which may block for ever (and a panic of the
// iterator then is the feeder's own: it ends the program).
func (f *feed[In]) stop() {
	f.mu.Lock()
	f.stopping = true
	clear(f.buf)
	f.buf = nil
	wait := !f.inIter
	f.awaited = wait
	f.mu.Unlock()
	close(f.quit)
	if !wait {
		return
	}
	<-f.exited
	f.mu.Lock()
	raise := f.panicked && !f.raised
	f.mu.Unlock()
	if raise {
		f.rethrow()
	}
}

// driver is the state of drive.
type driver[In, Out any] struct {
	ctx      context.Context
	p        *Pool
	c        *call
	src      source[In]
	in       codec.Of[In]
	out      codec.Of[Out]
	bat      *batcher
	progress reporter // nil once told the call has finished
	emit     func(i int, y Out, err error) bool
	total    int
	sent     int
	done     int
	inflight int
	// exhausted: the input has ended; unflushed: batches were sent with
	// PutDeferred since the workers were last woken.
	exhausted, unflushed bool
}

// drive runs call c, registered already, of a function whose codec is
// cc: it takes inputs from src (total of them, or -1 if unknown), sends
// them to the workers in batches, keeps a bounded window of batches in
// flight, and hands each result to emit as answers arrive. emit
// returning false stops the call: the caller has stopped reading, or ctx
// has ended. drive returns ctx.Err() if ctx ends first, ErrClosed if the
// pool is terminated under it (or its ErrBroken error if it breaks), and
// nil otherwise; it ends c.
//
// Whatever way it ends short of the call's end (ctx, the caller
// stopping, the pool closing, or a panic or runtime.Goexit in the
// caller's code that runs in it: the input iterator, the loop body of
// an Imap, a Progress function), the call's work in the workers is
// cancelled, as for a cancelled ctx, and a panic goes on unchanged.
func drive[In, Out any](ctx context.Context, p *Pool, c *call, cc process.Codec, total int, src source[In],
	emit func(i int, y Out, err error) bool) error {
	in, out := codec.For[In](cc), codec.For[Out](cc)
	d := &driver[In, Out]{ctx: ctx, p: p, c: c, src: src, in: in, out: out,
		bat:      newBatcher(p, total, min(fitCount(in), fitCount(out))),
		progress: p.o.reporter(), emit: emit, total: total}
	returned, complete := false, false
	defer func() {
		d.flush()
		if !complete {
			p.cancelCall(c) // does nothing once the pool is terminated
		}
		p.endCall(c)
		if d.progress == nil { // finished
			return
		}
		if returned {
			d.progress(d.done, d.known(), stopped)
			return
		}
		// Panicking: a second panic of the caller's Progress function
		// would replace the first, which must go on unchanged.
		func() {
			defer func() { _ = recover() }()
			d.progress(d.done, d.known(), stopped)
		}()
	}()
	complete, err := d.loop()
	returned = true
	return err
}

// flush wakes the workers for the batches sent with PutDeferred.
func (d *driver[In, Out]) flush() {
	if d.unflushed {
		d.unflushed = false
		d.p.flush()
	}
}

// known returns the total as far as it is known: Imap's once its input
// has ended.
func (d *driver[In, Out]) known() int {
	if d.total < 0 && d.exhausted {
		return d.sent
	}
	return d.total
}

// count hands a result to emit.
func (d *driver[In, Out]) count(i int, y Out, err error) bool {
	d.done++
	return d.emit(i, y, err)
}

// stopped is what the call returns once emit has returned false: ctx's
// error if it has ended, nil if the caller stopped reading.
func (d *driver[In, Out]) stopped() error { return d.ctx.Err() }

// loop runs the call; complete reports that it ran to its end (every
// input answered, or the pool failed it: no work of it is left).
func (d *driver[In, Out]) loop() (complete bool, err error) {
	ctxDone := d.ctx.Done()
	var answers []answer
	for {
		if stop, err := d.dispatch(); stop {
			return false, err
		}
		if d.inflight == 0 && d.exhausted {
			if d.progress != nil {
				d.progress(d.done, d.sent, finished)
				d.progress = nil
			}
			return true, nil
		}
		d.flush() // the batches just sent, before waiting
		var more <-chan struct{}
		if !d.exhausted && d.inflight < d.bat.window() {
			more = d.src.wait()
		}
		select {
		case <-d.c.arrived:
		case <-more:
			continue
		case <-d.src.broken():
			d.src.rethrow()
		case <-ctxDone:
			return false, d.ctx.Err()
		case <-d.c.failed:
			return true, d.c.failErr
		}
		// Inputs read meanwhile go to the workers before the answers go
		// to the caller, who may be slow to take them.
		if stop, err := d.dispatch(); stop {
			return false, err
		}
		d.flush()
		answers = d.c.takeAnswers(answers)
		for _, a := range answers {
			select { // whichever the select chose, an ended ctx stops the call
			case <-ctxDone:
				return false, d.ctx.Err()
			default:
			}
			if a.done {
				d.inflight--
			}
			d.bat.observe(&a.r)
			if !deliver(d.p, d.c, d.out, a, d.count) {
				return false, d.stopped()
			}
		}
		d.src.release()
		if d.progress != nil {
			d.progress(d.done, d.known(), running)
		}
	}
}

// dispatch sends the inputs available, in batches, while the window has
// room. stop reports that the call must end, with err: ctx has ended,
// the pool failed the call (whose work is then gone: cancelling it does
// nothing), or the caller stopped reading (nil) while a result was
// handed over (an argument that cannot be sent fails its call at once).
func (d *driver[In, Out]) dispatch() (stop bool, err error) {
	for !d.exhausted && d.inflight < d.bat.window() {
		k := d.bat.size(d.total - d.sent)
		xs, ended := d.src.take(k, k*(d.bat.window()-d.inflight))
		d.exhausted = ended
		if len(xs) == 0 {
			return false, nil // none read yet, or the end
		}
		n, ok, err := send(d.c.ctx, d.p, d.c, d.in, d.bat, d.sent, xs, d.count)
		if err != nil {
			select {
			case <-d.c.failed: // the pool broke or was terminated
				return true, d.c.failErr
			default:
			}
			if d.ctx.Err() != nil {
				return true, d.ctx.Err()
			}
			return true, err
		}
		if !ok {
			return true, d.stopped()
		}
		d.sent += len(xs)
		d.inflight += n
		d.unflushed = d.unflushed || n > 0
	}
	return false, nil
}

// deliver decodes answer a and hands each of its calls' results to emit;
// it returns false if emit did.
func deliver[Out any](p *Pool, c *call, out codec.Of[Out], a answer, emit func(int, Out, error) bool) bool {
	b, r := a.b, a.r
	base := b.first + r.first // the call's index of the answer's first result
	fresh := func(i int) bool { return r.fresh == nil || r.fresh[i] }
	failAll := func(err error, pid int, msg string) bool {
		for i := range r.count {
			if fresh(i) && !emit(base+i, *new(Out), &TaskError{Index: base + i, Func: c.fn, Pid: pid, Message: msg, Err: err}) {
				return false
			}
		}
		return true
	}
	switch r.status {
	case statusDied:
		err := fmt.Errorf("%w: %w", ErrWorkerDied, p.workerExit(r.deadPid))
		return failAll(err, r.deadPid, "")
	case statusFailed:
		return failAll(process.ErrCodec, r.pid, r.message)
	case statusTooLarge:
		return failAll(queue.ErrTooLarge, r.pid, r.message)
	case statusUnknown:
		return failAll(process.ErrUnknownFunc, r.pid, r.message)
	case statusCancelled:
		return failAll(context.Canceled, r.pid, "cancelled")
	case statusMaxRSS:
		return failAll(ErrMaxRSS, r.pid, r.message)
	}
	ys, err := out.DecodeSlice(r.payload, r.count)
	if err != nil {
		return failAll(process.ErrCodec, r.pid, "results: "+err.Error())
	}
	fi := 0
	for i := range r.count {
		var terr error
		for fi < len(r.fails) && r.fails[fi].Index < r.first+i {
			fi++
		}
		if fi < len(r.fails) && r.fails[fi].Index == r.first+i {
			f := r.fails[fi]
			terr = &TaskError{Index: base + i, Func: c.fn, Pid: r.pid, Message: f.Message, Panic: f.Panic, Stack: f.Stack}
		}
		if fresh(i) && !emit(base+i, ys[i], terr) {
			return false
		}
	}
	return true
}

// send sends inputs xs, from input first of c on, in one batch or, if
// they do not fit one message (or cannot be encoded together), in parts;
// an input that cannot be sent even alone fails its call (emit). It
// returns the number of batches sent, false if emit did, and the error
// that stopped it (ctx's, or the pool closed).
func send[In, Out any](ctx context.Context, p *Pool, c *call, in codec.Of[In], bat *batcher, first int, xs []In,
	emit func(int, Out, error) bool) (int, bool, error) {
	err := p.submit(ctx, c, first, len(xs), func(dst []byte) ([]byte, error) { return in.AppendSlice(dst, xs) })
	if err == nil {
		bat.observeSize(len(c.buf), len(xs))
		return 1, true, nil
	}
	if !errors.Is(err, process.ErrCodec) && !errors.Is(err, queue.ErrTooLarge) {
		return 0, true, err
	}
	if len(xs) == 1 {
		p.flush() // emit may run the caller's code (ImapUnordered): wake the workers first
		te := &TaskError{Index: first, Func: c.fn, Message: strings.TrimPrefix(err.Error(), process.ErrCodec.Error()+": "), Err: process.ErrCodec}
		if errors.Is(err, queue.ErrTooLarge) {
			te.Message, te.Err = "argument: "+err.Error(), queue.ErrTooLarge
		}
		return 0, emit(first, *new(Out), te), nil
	}
	h := len(xs) / 2
	n1, ok, err := send(ctx, p, c, in, bat, first, xs[:h], emit)
	if !ok || err != nil {
		return n1, ok, err
	}
	n2, ok, err := send(ctx, p, c, in, bat, first+h, xs[h:], emit)
	return n1 + n2, ok, err
}
