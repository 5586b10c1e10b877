// Package wait is the one blocking path of xproc: every primitive of
// package sync and every ring of packages queue and pipe waits through it.
// A blocking call spins briefly (a peer running on another core usually
// answers within microseconds), then sleeps on a futex word through
// futex.Park, so that many goroutines blocked on one word cost one OS
// thread; it keeps the segment mapped while it sleeps and is woken when
// the segment is closed.
package wait

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/region"
	"github.com/xproc-go/xproc/internal/spin"
)

// ErrClosed is returned by Start and Sleep when the segment holding the
// word is being closed. Callers translate it into their package's error.
var ErrClosed = errors.New("wait: segment closed")

// CheckInterval is how often a sleeper checks the liveness of the
// processes it waits for (a lock's holder, a barrier's parties, a ring's
// writers and readers). Sleepers are woken at least this often
// (futex.Tick) to re-check their condition, so a waker killed between
// changing a word and waking nobody delays others by at most this much too.
const CheckInterval = 100 * time.Millisecond

// Waiter carries what a blocking call needs across its sleeps.
type Waiter struct {
	Ctx context.Context
	// Reg is the region of the segment holding the waited-for word, or
	// nil for a word in ordinary memory.
	Reg *region.Region
}

// Start begins the slow path of a blocking call on the word (or
// primitive) at p, before any spinning. If p lives in a segment, the
// segment stays mapped until Done is called, and a Close of the segment
// wakes the caller with ErrClosed. It fails with ErrClosed if the segment
// is already closing.
func Start[T any](ctx context.Context, p *T) (Waiter, error) {
	reg := region.Lookup(p)
	if !reg.Enter() {
		return Waiter{}, ErrClosed
	}
	return Waiter{Ctx: ctx, Reg: reg}, nil
}

// Done ends the blocking call begun by Start.
func (w Waiter) Done() { w.Reg.Leave() }

// Sleep blocks while word holds val, until a wake-up, for at most about
// futex.Tick. It fails with ctx.Err() or ErrClosed. It may return early
// for no reason, so callers loop.
func (w Waiter) Sleep(word *atomic.Uint32, val uint32) error {
	switch err := futex.Park(w.Ctx, w.Reg.Stop(), word, val); err {
	case nil:
		return nil
	case futex.ErrStopped:
		return ErrClosed
	default:
		return err
	}
}

// SpinUntil polls cond for at most limit and reports whether it became
// true.
func SpinUntil(limit time.Duration, cond func() bool) bool {
	for s := spin.Start(limit); s.Next(); {
		if cond() {
			return true
		}
	}
	return false
}
