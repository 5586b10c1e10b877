package sync

import (
	"context"
	"sync/atomic"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/race"
)

// Event is a flag that processes can wait for: Python's
// multiprocessing.Event. Its zero value is clear. It is 8 bytes with no
// pointers.
//
// # Owner death
//
// An event has no owner. A process that dies before setting it simply
// never sets it, which waiters cannot tell from slowness: use WaitContext
// with a deadline where the setter might die. A setter killed between
// setting the flag and waking sleepers delays them by at most 100ms:
// sleepers re-check the flag at that interval.
type Event struct {
	state   atomic.Uint32 // 1 when set; the futex word
	waiters atomic.Uint32 // callers in the sleeping path, any process
}

// Set sets the flag and wakes every waiter.
func (e *Event) Set() {
	if race.Enabled {
		race.Release(e)
	}
	e.state.Store(1)
	if e.waiters.Load() != 0 {
		futex.Wake(&e.state, futex.All)
	}
}

// Clear clears the flag. Waits started afterwards block until the next Set.
func (e *Event) Clear() { e.state.Store(0) }

// IsSet reports whether the flag is set at this instant.
func (e *Event) IsSet() bool { return e.state.Load() != 0 }

// Wait blocks until the flag is set. It panics if e's segment is closed
// while it waits.
func (e *Event) Wait() {
	if err := e.WaitContext(context.Background()); err != nil {
		panic("xsync: Event.Wait: " + err.Error())
	}
}

// WaitContext blocks until the flag is set (returning nil) or ctx is done
// (returning ctx.Err()). If the flag is set it returns nil even if ctx is
// done.
func (e *Event) WaitContext(ctx context.Context) error {
	if e.state.Load() != 0 || spinUntil(e.IsSet) {
		if race.Enabled {
			race.Acquire(e)
		}
		return nil
	}
	w, err := startWait(ctx, e)
	if err != nil {
		return err
	}
	defer w.done()
	e.waiters.Add(1)
	defer e.waiters.Add(^uint32(0))
	for e.state.Load() == 0 {
		if err := w.sleep(&e.state, 0); err != nil && e.state.Load() == 0 {
			return err
		}
	}
	if race.Enabled {
		race.Acquire(e)
	}
	return nil
}
