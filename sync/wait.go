package sync

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/region"
	"github.com/xproc-go/xproc/internal/spin"
)

// Tuning shared by all primitives. Variables so that tests and benchmarks
// can measure the sleeping path on its own.
var (
	// spinLimit bounds the spinning before a waiter sleeps in the kernel.
	// It covers a peer that is running on another core and about to
	// release: far cheaper than a sleep and a wake-up (several µs each).
	spinLimit = 20 * time.Microsecond
	// checkInterval bounds each kernel sleep. A sleeper then re-checks
	// its condition and the liveness of the processes it waits for, so a
	// waker killed between changing a word and waking nobody, or an owner
	// killed holding a lock, delays others by at most this much.
	checkInterval = 100 * time.Millisecond
)

// waiter carries what a blocking call needs across its sleeps.
type waiter struct {
	ctx context.Context
	reg *region.Region
}

// startWait prepares to sleep on a word of the primitive at p. If p lives
// in a segment, the segment is kept mapped until done is called, and a
// Close of the segment wakes the sleeper with ErrClosed.
func startWait[T any](ctx context.Context, p *T) (waiter, error) {
	reg := region.Lookup(p)
	if !reg.Enter() {
		return waiter{}, ErrClosed
	}
	return waiter{ctx: ctx, reg: reg}, nil
}

func (w waiter) done() { w.reg.Leave() }

// sleep blocks while word holds val, for at most d. It reports whether d
// passed; it fails with ctx.Err() or ErrClosed. It may return early for
// no reason, so callers loop.
func (w waiter) sleep(word *atomic.Uint32, val uint32, d time.Duration) (expired bool, err error) {
	switch err := futex.Park(w.ctx, w.reg.Stop(), word, val, d); err {
	case nil:
		return false, nil
	case futex.ErrTimeout:
		return true, nil
	case futex.ErrStopped:
		return false, ErrClosed
	default:
		return false, err
	}
}

// spinUntil polls cond for at most spinLimit and reports whether it
// became true.
func spinUntil(cond func() bool) bool {
	for s := spin.Start(spinLimit); s.Next(); {
		if cond() {
			return true
		}
	}
	return false
}
