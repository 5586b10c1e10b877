package sync

import (
	"context"
	"sync/atomic"

	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/region"
	"github.com/xproc-go/xproc/internal/spin"
	"github.com/xproc-go/xproc/internal/wait"
)

// The blocking path itself lives in internal/wait, shared with the rings
// of packages queue and pipe; this file adapts it to this package's names
// and errors, and adds the exit watch of lock holders.

// checkInterval is how often a sleeper checks the liveness of the
// processes it waits for (see wait.CheckInterval).
const checkInterval = wait.CheckInterval

// waiter carries what a blocking call needs across its sleeps.
type waiter struct {
	ctx context.Context
	reg *region.Region
}

// startWait begins the slow path of a blocking call on the primitive at p,
// before any spinning. If p lives in a segment, the segment stays mapped
// until done is called, and a Close of the segment wakes the caller with
// ErrClosed. Calls that do not wait (fast paths, Unlock, Release, Set,
// Notify, ...) are not guarded: like any use of a closed handle, racing
// them with Close is a bug that may fault.
func startWait[T any](ctx context.Context, p *T) (waiter, error) {
	w, err := wait.Start(ctx, p)
	if err != nil {
		return waiter{}, ErrClosed
	}
	return waiter{ctx: ctx, reg: w.Reg}, nil
}

func (w waiter) done() { w.reg.Leave() }

// sleep blocks while word holds val, until a wake-up, for at most about
// futex.Tick. It fails with ctx.Err() or ErrClosed. It may return early for
// no reason, so callers loop.
func (w waiter) sleep(word *atomic.Uint32, val uint32) error {
	return w.sleepCtx(w.ctx, word, val)
}

// sleepCtx is sleep with another context: w.ctx with more reasons to end
// (see exitWatch).
func (w waiter) sleepCtx(ctx context.Context, word *atomic.Uint32, val uint32) error {
	if err := (wait.Waiter{Ctx: ctx, Reg: w.reg}).Sleep(word, val); err != nil {
		if err == wait.ErrClosed {
			return ErrClosed
		}
		return err
	}
	return nil
}

// spinUntil polls cond for at most spin.Limit and reports whether it
// became true.
func spinUntil(cond func() bool) bool { return wait.SpinUntil(spin.Limit, cond) }

// watchExits is false only in benchmarks that measure takeover by the
// periodic check alone.
var watchExits = true

// exitWatch ends a waiter's sleeps when the process it waits for exits,
// so that a lock held by a process that was killed is taken over within
// about a millisecond rather than at the next liveness check. It watches
// one process at a time, through owner.ExitContext (a pidfd in Go's
// network poller: no thread per waiter), and through the segment's
// Region.DetachContext, which asks every few milliseconds (one goroutine
// for the process) whether the process still maps the segment: that
// catches what no pidfd shows, a holder that exec'd another program or
// one of another PID namespace. Where neither can watch (memory that is
// not a segment, with no pidfd either), sleeps end only as before, and
// liveness is checked every checkInterval.
type exitWatch struct {
	id       owner.ID
	ctx      context.Context // the waiter's context, ended also by the exit
	exited   context.Context // done when id exits; nil if not watched
	detached context.Context // done when id no longer maps the segment; nil if not watched
	stop     func()
}

// watch makes ctx (the waiter's context) end also when process id exits
// or no longer maps reg's segment, replacing the watch of any other
// process. It returns the context to sleep with.
func (x *exitWatch) watch(ctx context.Context, reg *region.Region, id owner.ID) context.Context {
	if !watchExits {
		return ctx
	}
	if x.ctx != nil && x.id == id {
		return x.ctx
	}
	x.done()
	x.id, x.ctx = id, ctx
	exited, release, ok := owner.ExitContext(id)
	detached, undetach := reg.DetachContext(id)
	if !ok && detached == nil {
		return ctx
	}
	merged, cancel := context.WithCancel(ctx)
	stopExit, stopDetach := func() bool { return false }, func() bool { return false }
	if ok {
		stopExit = context.AfterFunc(exited, cancel)
		x.exited = exited
	} else {
		release = func() {}
	}
	if detached != nil {
		stopDetach = context.AfterFunc(detached, cancel)
		x.detached = detached
	}
	x.ctx = merged
	x.stop = func() { stopExit(); stopDetach(); cancel(); release(); undetach() }
	return merged
}

// fired reports whether the watched process has exited or no longer maps
// the segment.
func (x *exitWatch) fired() bool {
	return x.exited != nil && x.exited.Err() != nil || x.detached != nil && x.detached.Err() != nil
}

// disarm stops watching after a false alarm (the exit was seen, but the
// process still counts as attached: it was a reused pid's): sleeps end
// again only for the waiter's own reasons.
func (x *exitWatch) disarm(ctx context.Context) {
	id := x.id
	x.done()
	// Keep the id: watch must not arm the same (fired) watch again.
	x.id, x.ctx = id, ctx
}

// done releases the watch.
func (x *exitWatch) done() {
	if x.stop != nil {
		x.stop()
	}
	*x = exitWatch{}
}
