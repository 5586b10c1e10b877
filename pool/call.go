package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/xproc-go/xproc/internal/codec"
	"github.com/xproc-go/xproc/process"
)

// call is one Map, Imap, ImapUnordered or Apply under way.
type call struct {
	p       *Pool
	id      uint64
	fn      string
	buf     []byte        // the last task message, reused
	answers chan answer   // from the router; room for every batch in flight
	failed  chan struct{} // closed by fail
	failErr error
	once    sync.Once
}

type answer struct {
	b *batch
	r result
}

// maxWindow bounds the batches of one call in flight, and so the room
// its answers need.
const maxWindow = 256

// newCall registers a call of fn, unless the pool is closing or broken.
func (p *Pool) newCall(fn string) (*call, error) {
	c := &call{p: p, id: p.nextID.Add(1), fn: fn, answers: make(chan answer, maxWindow), failed: make(chan struct{})}
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
// blocks, as answers has room for every batch in flight.
func (c *call) answer(b *batch, r result) { c.answers <- answer{b, r} }

// fail ends c with err: the pool was terminated under it.
func (c *call) fail(err error) {
	c.once.Do(func() {
		c.failErr = err
		close(c.failed)
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

// run drives one call of f: it takes inputs from src (total of them, or
// -1 if unknown), sends them to the workers in batches, keeps a bounded
// window of batches in flight, and hands each result to emit as answers
// arrive. emit returning false stops the call (the caller has stopped
// reading). run returns ctx.Err() if ctx ends first (the call's batches
// are cancelled and the workers running them stopped), ErrClosed if the
// pool is terminated under it.
func run[In, Out any](ctx context.Context, p *Pool, f process.Func[In, Out], total int, src source[In],
	emit func(i int, y Out, err error) bool) error {
	c, err := p.newCall(f.Name())
	if err != nil {
		return err
	}
	defer p.endCall(c)
	in, out := codec.For[In](nil), codec.For[Out](nil)
	bat := newBatcher(p, total, min(fitCount(in), fitCount(out)))
	progress := p.o.reporter()
	sent, done, inflight, exhausted := 0, 0, 0, false
	for {
		for !exhausted && inflight < bat.window() {
			k := bat.size(total - sent)
			xs := src.take(k)
			if len(xs) < k {
				exhausted = true
			}
			if len(xs) == 0 {
				break
			}
			if err := p.submit(ctx, c, sent, len(xs), func(dst []byte) ([]byte, error) { return in.AppendSlice(dst, xs) }); err != nil {
				if errors.Is(err, process.ErrCodec) {
					// This batch's inputs cannot be encoded: they fail;
					// the others go on.
					for i := range xs {
						if !emit(sent+i, *new(Out), &TaskError{Index: sent + i, Func: c.fn, Message: err.Error(), Err: err}) {
							return nil
						}
					}
					sent += len(xs)
					continue
				}
				if ctx.Err() != nil {
					p.cancelCall(c)
					return ctx.Err()
				}
				return err
			}
			sent += len(xs)
			inflight++
		}
		if inflight == 0 {
			if progress != nil {
				progress(done, sent, true)
			}
			return nil
		}
		select {
		case a := <-c.answers:
			inflight--
			bat.observe(&a.r)
			if !deliver(p, c, out, a, emit) {
				p.cancelCall(c)
				return nil
			}
			done += a.b.count
			if progress != nil {
				progress(done, max(total, sent), false)
			}
		case <-ctx.Done():
			p.cancelCall(c)
			return ctx.Err()
		case <-c.failed:
			return c.failErr
		}
	}
}

// deliver decodes answer a and hands each of its calls' results to emit;
// it returns false if emit did.
func deliver[Out any](p *Pool, c *call, out codec.Of[Out], a answer, emit func(int, Out, error) bool) bool {
	b, r := a.b, a.r
	failAll := func(err error, pid int, msg string) bool {
		for i := range b.count {
			if !emit(b.first+i, *new(Out), &TaskError{Index: b.first + i, Func: c.fn, Pid: pid, Message: msg, Err: err}) {
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
	case statusUnknown:
		return failAll(process.ErrUnknownFunc, r.pid, r.message)
	case statusCancelled:
		return failAll(context.Canceled, r.pid, "cancelled")
	}
	ys, err := out.DecodeSlice(r.payload, b.count)
	if err != nil {
		return failAll(fmt.Errorf("%w: results: %w", process.ErrCodec, err), r.pid, err.Error())
	}
	fi := 0
	for i := range b.count {
		var terr error
		if fi < len(r.fails) && r.fails[fi].Index == i {
			f := r.fails[fi]
			fi++
			terr = &TaskError{Index: b.first + i, Func: c.fn, Pid: r.pid, Message: f.Message, Panic: f.Panic, Stack: f.Stack}
		}
		if !emit(b.first+i, ys[i], terr) {
			return false
		}
	}
	return true
}
