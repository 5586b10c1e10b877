package sync

import (
	"context"
	"sync/atomic"

	"github.com/xproc-go/xproc/internal/region"
	"github.com/xproc-go/xproc/internal/wait"
)

// The blocking path itself lives in internal/wait, shared with the rings
// of packages queue and pipe; this file adapts it to this package's names
// and errors.

// spinLimit bounds the spinning before a waiter sleeps in the kernel (see
// wait.DefaultSpin). A variable so that tests and benchmarks can measure
// sleeping alone.
var spinLimit = wait.DefaultSpin()

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
	if err := (wait.Waiter{Ctx: w.ctx, Reg: w.reg}).Sleep(word, val); err != nil {
		if err == wait.ErrClosed {
			return ErrClosed
		}
		return err
	}
	return nil
}

// spinUntil polls cond for at most spinLimit and reports whether it
// became true.
func spinUntil(cond func() bool) bool { return wait.SpinUntil(spinLimit, cond) }
