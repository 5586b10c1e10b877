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
	// state: bit 0 is the flag; bits 1..31 count Sets (wrapping), so
	// that a waiter sees a Set even if a Clear follows it at once. The
	// futex word.
	state   atomic.Uint32
	waiters atomic.Uint32 // callers in the sleeping path, any process
}

const eventSet = 1

// Set sets the flag and wakes every waiter: every caller waiting when Set
// is called returns, even if Clear follows at once.
func (e *Event) Set() {
	if race.Enabled {
		race.Release(e)
	}
	for {
		old := e.state.Load()
		if e.state.CompareAndSwap(old, (old+2)|eventSet) {
			break
		}
	}
	if e.waiters.Load() != 0 {
		futex.Wake(&e.state, futex.All)
	}
}

// Clear clears the flag. Waits started afterwards block until the next Set.
func (e *Event) Clear() { e.state.And(^uint32(eventSet)) }

// IsSet reports whether the flag is set at this instant.
func (e *Event) IsSet() bool { return e.state.Load()&eventSet != 0 }

// Wait blocks until the flag is set. It panics if e's segment is closed
// while it waits.
func (e *Event) Wait() {
	if err := e.WaitContext(context.Background()); err != nil {
		panic("xsync: Event.Wait: " + err.Error())
	}
}

// WaitContext blocks until the flag is set, or a Set happens, (returning
// nil) or ctx is done (returning ctx.Err()). If the flag is set it returns
// nil even if ctx is done.
func (e *Event) WaitContext(ctx context.Context) error {
	v := e.state.Load()
	if v&eventSet != 0 {
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
	// With the flag clear, only a Set changes the word.
	changed := func() bool { return e.state.Load() != v }
	if !spinUntil(changed) {
		e.waiters.Add(1)
		defer e.waiters.Add(^uint32(0))
		for !changed() {
			if err := w.sleep(&e.state, v); err != nil && !changed() {
				return err
			}
		}
	}
	if race.Enabled {
		race.Acquire(e)
	}
	return nil
}
