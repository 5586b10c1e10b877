package sync

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/region"
	"github.com/xproc-go/xproc/internal/spin"
)

// checkInterval is how often a sleeper checks the liveness of the
// processes it waits for (a lock's holder, a barrier's parties). Sleepers
// are woken at least this often (futex.Tick) to re-check their condition,
// so a waker killed between changing a word and waking nobody delays
// others by at most this much too.
const checkInterval = 100 * time.Millisecond

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
	reg := region.Lookup(p)
	if !reg.Enter() {
		return waiter{}, ErrClosed
	}
	return waiter{ctx: ctx, reg: reg}, nil
}

func (w waiter) done() { w.reg.Leave() }

// sleep blocks while word holds val, until a wake-up, for at most about
// futex.Tick. It fails with ctx.Err() or ErrClosed. It may return early for
// no reason, so callers loop.
func (w waiter) sleep(word *atomic.Uint32, val uint32) error {
	switch err := futex.Park(w.ctx, w.reg.Stop(), word, val); err {
	case nil:
		return nil
	case futex.ErrStopped:
		return ErrClosed
	default:
		return err
	}
}

// spinUntil polls cond for at most spin.Limit and reports whether it
// became true.
func spinUntil(cond func() bool) bool {
	for s := spin.Start(spin.Limit); s.Next(); {
		if cond() {
			return true
		}
	}
	return false
}
