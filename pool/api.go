package pool

import (
	"context"
	"iter"

	"github.com/xproc-go/xproc/process"
)

// Map runs f on every input in the pool's workers and returns the
// results in input order: Python's pool.map(f, xs). Inputs go to the
// workers in batches (see ChunkSize). If calls fail, the results of the
// others are still there, and the error returned is the *TaskError of the
// first failed input; the pool stays usable. If ctx ends first, Map stops
// sending inputs, cancels the context of the functions running its calls
// (a worker still running one after the grace period is killed and
// replaced) and returns ctx.Err() at once.
func Map[In, Out any](ctx context.Context, p *Pool, f process.Func[In, Out], xs []In) ([]Out, error) {
	c, err := p.newCall(ctx, f.Name())
	if err != nil {
		return make([]Out, len(xs)), err
	}
	return mapCall(ctx, p, f, c, xs)
}

// mapCall is Map for call c, registered already; it ends c.
func mapCall[In, Out any](ctx context.Context, p *Pool, f process.Func[In, Out], c *call, xs []In) ([]Out, error) {
	out := make([]Out, len(xs))
	var first *TaskError
	err := drive(ctx, p, c, f.Codec(), len(xs), &sliceSource[In]{xs: xs}, func(i int, y Out, err error) bool {
		out[i] = y
		if te, ok := err.(*TaskError); ok && (first == nil || i < first.Index) {
			first = te
		}
		return true
	})
	if err != nil {
		return out, err
	}
	if first != nil {
		return out, first
	}
	return out, nil
}

// Imap runs f on the inputs of seq in the pool's workers and yields the
// results in input order, as they come: Python's pool.imap(f, xs).
//
// It is lazy: a goroutine of its own reads seq, and each batch goes to
// the workers with the inputs read so far (one at least), never waiting
// for more while those could run; and it reads seq at most 8192 inputs
// (or ChunkSize, if larger) ahead of the results it has yielded, so seq
// may be endless or slow. seq is called from that goroutine alone, never
// from two at once; but it runs while the loop body does, not in step
// with it as iter.Pull would: state the two share needs a lock.
//
// A call that fails yields its *TaskError, and the others go on; a
// yielded error that is not a *TaskError ends the sequence: ctx.Err()
// once ctx has ended (no result is yielded after that, even one that
// had arrived), ErrClosed if the pool is closed under it. Stopping the
// range early, an ended ctx, and a panic in seq or in the loop body all
// cancel the calls under way, as Map does when its ctx ends (a panic in
// seq is raised again in the goroutine ranging over Imap, with its
// value: the stack printed is that goroutine's, not seq's; a panic of
// the loop body goes on with its value, unless seq, told to stop,
// panics in its own clean-up, whose panic then replaces it, as with
// iter.Pull).
//
// When the range ends, the goroutine reading seq stops at seq's next
// yield, which then returns false; Imap waits for that only if seq is
// not running its own code at that moment. A seq that blocks for ever
// (a read of a channel nobody sends on) keeps that goroutine for ever,
// and only it: Imap returns, and the pool goes on. (A panic of seq
// after Imap has returned without waiting for it is that goroutine's,
// and ends the program.)
func Imap[In, Out any](ctx context.Context, p *Pool, f process.Func[In, Out], seq iter.Seq[In]) iter.Seq2[Out, error] {
	return imap(ctx, p, f, seq, true)
}

// ImapUnordered is Imap yielding each result as soon as it arrives,
// whatever its input's place: Python's pool.imap_unordered(f, xs).
func ImapUnordered[In, Out any](ctx context.Context, p *Pool, f process.Func[In, Out], seq iter.Seq[In]) iter.Seq2[Out, error] {
	return imap(ctx, p, f, seq, false)
}

func imap[In, Out any](ctx context.Context, p *Pool, f process.Func[In, Out], seq iter.Seq[In], ordered bool) iter.Seq2[Out, error] {
	return func(yield func(Out, error) bool) {
		var zero Out
		c, err := p.newCall(ctx, f.Name())
		if err != nil {
			yield(zero, err)
			return
		}
		src := newFeed(seq, max(maxHeld, p.o.chunk))
		defer src.stop()
		ctxDone := ctx.Done()
		quit := false // yield returned false: it must not be called again
		give := func(y Out, err error) bool {
			select {
			case <-ctxDone:
				return false // drive returns ctx.Err()
			default:
			}
			if !yield(y, err) {
				quit = true
				return false
			}
			src.yielded.Add(1)
			return true
		}
		// Ordered: results that arrived before an earlier one wait in win,
		// win[k] holding input want+k (a slice, not a map: no hashing on
		// the path of every result).
		type slot struct {
			y   Out
			err error
			set bool
		}
		var win []slot
		want := 0
		err = drive(ctx, p, c, f.Codec(), -1, src, func(i int, y Out, err error) bool {
			if !ordered {
				return give(y, err)
			}
			k := i - want
			for len(win) <= k {
				win = append(win, slot{})
			}
			win[k] = slot{y, err, true}
			for len(win) > 0 && win[0].set {
				s := win[0]
				win[0] = slot{} // hold no reference to a yielded result
				win = win[1:]
				want++
				if !give(s.y, s.err) {
					return false
				}
			}
			return true
		})
		if err != nil && !quit {
			yield(zero, err)
		}
	}
}

// Pair is the argument of a function of two arguments (Register2), for
// Starmap. Pairs of fixed-size, pointer-free types travel as raw bytes.
type Pair[A, B any] struct {
	A A
	B B
}

// Register2 registers a function of two arguments for Starmap (see
// process.Register: call it at package initialisation).
func Register2[A, B, Out any](name string, fn func(ctx context.Context, a A, b B) (Out, error), opts ...process.RegisterOption) process.Func[Pair[A, B], Out] {
	return process.Register(name, func(ctx context.Context, p Pair[A, B]) (Out, error) { return fn(ctx, p.A, p.B) }, opts...)
}

// Starmap runs f on every pair of arguments, as Python's
// pool.starmap(f, [(a, b), ...]); see Map.
func Starmap[A, B, Out any](ctx context.Context, p *Pool, f process.Func[Pair[A, B], Out], args []Pair[A, B]) ([]Out, error) {
	return Map(ctx, p, f, args)
}

// Apply runs f(x) in a worker and returns its result: Python's
// pool.apply(f, (x,)). A failed call returns its *TaskError.
func Apply[In, Out any](ctx context.Context, p *Pool, f process.Func[In, Out], x In) (Out, error) {
	out, err := Map(ctx, p, f, []In{x})
	return out[0], err
}

// Future is the result of ApplyAsync or MapAsync, to come: Python's
// AsyncResult.
type Future[Out any] struct {
	done chan struct{}
	out  Out
	err  error
}

// ApplyAsync starts f(x) in a worker and returns at once: Python's
// pool.apply_async(f, (x,)). ctx governs the call as for Apply. The call
// is under way when ApplyAsync returns: Close waits for it. If the pool
// is closed or broken, the Future is done at once with ErrClosed or the
// pool's ErrBroken error.
func ApplyAsync[In, Out any](ctx context.Context, p *Pool, f process.Func[In, Out], x In) *Future[Out] {
	return async(ctx, p, f.Name(), func(c *call) (Out, error) {
		ys, err := mapCall(ctx, p, f, c, []In{x})
		return ys[0], err
	})
}

// MapAsync starts Map(ctx, p, f, xs) and returns at once: Python's
// pool.map_async(f, xs) (and starmap_async, with a function of
// Register2). The Future's Wait returns what Map would; as for
// ApplyAsync, the call is under way when MapAsync returns.
func MapAsync[In, Out any](ctx context.Context, p *Pool, f process.Func[In, Out], xs []In) *Future[[]Out] {
	return async(ctx, p, f.Name(), func(c *call) ([]Out, error) { return mapCall(ctx, p, f, c, xs) })
}

// async registers a call of the function fn and runs it with do in a
// goroutine of its own, for the Future it returns.
func async[T any](ctx context.Context, p *Pool, fn string, do func(c *call) (T, error)) *Future[T] {
	fut := &Future[T]{done: make(chan struct{})}
	c, err := p.newCall(ctx, fn)
	if err != nil {
		fut.err = err
		close(fut.done)
		return fut
	}
	go func() {
		defer close(fut.done)
		fut.out, fut.err = do(c)
	}()
	return fut
}

// Wait waits for the result, or until ctx ends (returning ctx.Err(); the
// call goes on): Python's AsyncResult.get(timeout).
func (f *Future[Out]) Wait(ctx context.Context) (Out, error) {
	select {
	case <-f.done:
		return f.out, f.err
	case <-ctx.Done():
		var zero Out
		return zero, ctx.Err()
	}
}

// Done returns a channel closed once the result is there (ready()).
func (f *Future[Out]) Done() <-chan struct{} { return f.done }
