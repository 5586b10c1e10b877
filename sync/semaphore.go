package sync

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/race"
)

// MaxSemaphore is the largest value a Semaphore can hold.
const MaxSemaphore = math.MaxInt32

// Semaphore is a counting semaphore shared between processes: Python's
// multiprocessing.Semaphore, or BoundedSemaphore when initialised with
// bounded set. Its zero value is an unbounded semaphore with value 0; Init
// gives it another value. It is 16 bytes with no pointers.
//
// # Owner death
//
// Units have no owner: any process may release what another acquired, as
// in Python, so a unit taken by a process that dies is not given back.
// Where a unit must return when its holder dies, guard the resource with a
// Mutex instead. The death of a waiter never affects other waiters. Use
// AcquireContext where the releaser might die.
type Semaphore struct {
	count   atomic.Uint32 // available units; the futex word
	waiters atomic.Uint32 // callers in the sleeping path, any process
	limit   atomic.Uint32 // the most count may reach if bounded
	flags   atomic.Uint32 // semBounded
}

const semBounded = 1

// Init sets the value, 0 to MaxSemaphore, and makes the semaphore bounded
// (releases above value fail) if bounded is true. A value out of range is
// refused with ErrInvalid, changing nothing.
//
// Call it before the semaphore is shared: a process that maps s before
// Init sees a semaphore of value 0. For a Semaphore in a struct that
// other processes open by name, call it in the function given to
// value.CreateFunc, which runs before the name exists; CreateSemaphore
// does the same for a Semaphore of its own.
func (s *Semaphore) Init(value int, bounded bool) error {
	if err := checkSemaphore("Semaphore.Init", value); err != nil {
		return err
	}
	s.count.Store(uint32(value))
	s.limit.Store(uint32(value))
	if bounded {
		s.flags.Store(semBounded)
	} else {
		s.flags.Store(0)
	}
	return nil
}

func checkSemaphore(call string, value int) error {
	if value < 0 || value > MaxSemaphore {
		return invalidArg(call, "value", value, fmt.Sprintf("0 to %d", MaxSemaphore))
	}
	return nil
}

// TryAcquire takes a unit if one is available and reports whether it did.
func (s *Semaphore) TryAcquire() bool {
	for {
		v := s.count.Load()
		if v == 0 {
			return false
		}
		if s.count.CompareAndSwap(v, v-1) {
			if race.Enabled {
				race.Acquire(s)
			}
			return true
		}
	}
}

// Acquire takes a unit, waiting as long as it takes. It panics if s's
// segment is closed while it waits.
func (s *Semaphore) Acquire() {
	if err := s.AcquireContext(context.Background()); err != nil {
		panic("xsync: Semaphore.Acquire: " + err.Error())
	}
}

// AcquireContext takes a unit, giving up when ctx is done (returning
// ctx.Err()). If a unit is available it is taken even if ctx is done, so
// an expired context makes a non-blocking attempt.
func (s *Semaphore) AcquireContext(ctx context.Context) error {
	if s.TryAcquire() {
		return nil
	}
	w, err := startWait(ctx, s)
	if err != nil {
		return err
	}
	defer w.done()
	if spinUntil(s.TryAcquire) {
		return nil
	}
	// Count ourselves before the last check, so that a Release that
	// follows it sees a waiter and wakes.
	s.waiters.Add(1)
	defer s.waiters.Add(^uint32(0))
	for !s.TryAcquire() {
		if err := w.sleep(&s.count, 0); err != nil {
			// A unit may have arrived with the cancellation; keep the
			// rule that an available unit is taken.
			if s.TryAcquire() {
				return nil
			}
			// We may have been woken for a unit we now leave behind:
			// pass the wake-up on to another sleeper.
			if s.count.Load() != 0 && s.waiters.Load() > 1 {
				futex.Wake(&s.count, 1)
			}
			return err
		}
	}
	return nil
}

// Release returns one unit. See ReleaseN.
func (s *Semaphore) Release() error { return s.ReleaseN(1) }

// ReleaseN returns n units and wakes up to n waiters. On a bounded
// semaphore, a release that would raise the value above its initial value
// fails with ErrOverRelease and changes nothing; the check and the update
// are one atomic step, so concurrent releases cannot both slip past it.
func (s *Semaphore) ReleaseN(n int) error {
	if n <= 0 {
		if n == 0 {
			return nil
		}
		return invalidArg("Semaphore.ReleaseN", "n", n, "0 or more")
	}
	if race.Enabled {
		race.Release(s)
	}
	limit := uint64(MaxSemaphore)
	if s.flags.Load()&semBounded != 0 {
		limit = uint64(s.limit.Load())
	}
	for {
		v := s.count.Load()
		if uint64(v)+uint64(n) > limit {
			return fmt.Errorf("xsync: Semaphore.ReleaseN(%d) at value %d, limit %d: %w", n, v, limit, ErrOverRelease)
		}
		if s.count.CompareAndSwap(v, v+uint32(n)) {
			break
		}
	}
	if s.waiters.Load() != 0 {
		futex.Wake(&s.count, n)
	}
	return nil
}

// Value returns the number of available units at this instant.
func (s *Semaphore) Value() int { return int(s.count.Load()) }

// Bounded reports whether releases beyond the initial value are refused.
func (s *Semaphore) Bounded() bool { return s.flags.Load()&semBounded != 0 }
