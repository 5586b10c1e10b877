package pool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

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

// pullFlushDelay bounds how long an input iterator that blocks keeps the
// batches sent before it from the workers asleep (see drive).
const pullFlushDelay = time.Millisecond

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
// iterator (Imap).
type source[In any] interface {
	// take returns up to k more inputs; fewer (or none) at the end.
	take(k int) []In
}

type sliceSource[In any] struct {
	xs []In
	i  int
}

func (s *sliceSource[In]) take(k int) []In {
	k = min(k, len(s.xs)-s.i)
	out := s.xs[s.i : s.i+k]
	s.i += k
	return out
}

type pullSource[In any] struct {
	next func() (In, bool)
	buf  []In
	done bool
}

func (s *pullSource[In]) take(k int) []In {
	s.buf = s.buf[:0]
	for !s.done && len(s.buf) < k {
		x, ok := s.next()
		if !ok {
			s.done = true
			break
		}
		s.buf = append(s.buf, x)
	}
	return s.buf
}

// maxHeld bounds how far an ordered Imap reads ahead of what it has
// yielded: the inputs in flight and the results held back while it waits
// for an earlier one (or one batch, if larger).
const maxHeld = 8192

// run drives one call of f: it takes inputs from src (total of them, or
// -1 if unknown), sends them to the workers in batches, keeps a bounded
// window of batches in flight, and hands each result to emit as answers
// arrive. emit returning false stops the call (the caller has stopped
// reading). held, if not nil, returns how many results the caller holds
// back (ordered Imap); run then keeps those and the inputs in flight
// within maxHeld.
// run returns ctx.Err() if ctx ends first (the call's batches are
// cancelled and the workers running them stopped), ErrClosed if the pool
// is terminated under it.
func run[In, Out any](ctx context.Context, p *Pool, f process.Func[In, Out], total int, src source[In],
	held func() int, emit func(i int, y Out, err error) bool) error {
	c, err := p.newCall(ctx, f.Name())
	if err != nil {
		return err
	}
	return drive(ctx, p, c, f.Codec(), total, src, held, emit)
}

// drive is run for call c, registered already, encoding with cc (the
// function's codec); it ends c.
func drive[In, Out any](ctx context.Context, p *Pool, c *call, cc process.Codec, total int, src source[In],
	held func() int, emit func(i int, y Out, err error) bool) error {
	defer p.endCall(c)
	// Batches go out with PutDeferred, and the workers asleep are woken
	// once per burst: before waiting for answers, and on any return.
	unflushed := false
	flush := func() {
		if unflushed {
			unflushed = false
			p.flush()
		}
	}
	defer flush()
	// An input iterator (Imap) may block after a batch was sent: a timer
	// wakes the workers within pullFlushDelay.
	var guard *flushTimer
	if _, pull := src.(*pullSource[In]); pull {
		guard = newFlushTimer(pullFlushDelay, p.flush)
		defer guard.stop()
	}
	in, out := codec.For[In](cc), codec.For[Out](cc)
	bat := newBatcher(p, total, min(fitCount(in), fitCount(out)))
	progress := p.o.reporter()
	sent, done, inflight, exhausted := 0, 0, 0, false
	// known is the total as far as it is known: Imap's once its input
	// has ended.
	known := func() int {
		if total < 0 && exhausted {
			return sent
		}
		return total
	}
	defer func() {
		if progress != nil { // not finished: cancelled, failed, or ended by emit
			progress(done, known(), stopped)
		}
	}()
	count := func(i int, y Out, err error) bool {
		done++
		return emit(i, y, err)
	}
	var answers []answer
	for {
		for !exhausted && inflight < bat.window() {
			k := bat.size(total - sent)
			if held != nil && inflight > 0 && held()+(sent-done)+k > maxHeld {
				break // read no further ahead of what has been yielded
			}
			if guard != nil && unflushed {
				guard.arm()
			}
			xs := src.take(k)
			if len(xs) < k {
				exhausted = true
			}
			if len(xs) == 0 {
				break
			}
			n, ok, err := send(c.ctx, p, c, in, bat, sent, xs, count)
			if err != nil {
				select {
				case <-c.failed: // the pool broke or was terminated
					return c.failErr
				default:
				}
				if ctx.Err() != nil {
					p.cancelCall(c)
					return ctx.Err()
				}
				return err
			}
			if !ok {
				p.cancelCall(c)
				return nil
			}
			sent += len(xs)
			inflight += n
			unflushed = unflushed || n > 0
		}
		if inflight == 0 {
			if progress != nil {
				progress(done, sent, finished)
				progress = nil
			}
			return nil
		}
		flush() // the batches just sent, before waiting for answers
		select {
		case <-c.arrived:
		case <-ctx.Done():
			p.cancelCall(c)
			return ctx.Err()
		case <-c.failed:
			return c.failErr
		}
		answers = c.takeAnswers(answers)
		for _, a := range answers {
			if a.done {
				inflight--
			}
			bat.observe(&a.r)
			if !deliver(p, c, out, a, count) {
				p.cancelCall(c)
				return nil
			}
		}
		if progress != nil {
			progress(done, known(), running)
		}
	}
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
