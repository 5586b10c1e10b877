package sync

import "time"

// Hooks for tests and benchmarks in package sync_test.

// Asleep reports whether some caller is in the sleeping path of p (past
// its spinning), for tests that must act only once a call has blocked.
func Asleep(p any) bool {
	switch p := p.(type) {
	case *Mutex:
		return p.state.Load()&mutexWaiters != 0
	case *ReentrantMutex:
		return p.mu.state.Load()&mutexWaiters != 0
	case *Semaphore:
		return p.waiters.Load() != 0
	case *Event:
		return p.waiters.Load() != 0
	case *Cond:
		return p.sleepers.Load() != 0
	case *Barrier:
		return p.sleepers.Load() != 0
	}
	panic("Asleep: unknown primitive")
}

// SetSpin sets the spin limit and returns a function restoring it.
func SetSpin(d time.Duration) (restore func()) {
	old := spinLimit
	spinLimit = d
	return func() { spinLimit = old }
}

// SpinLimit returns the current spin limit.
func SpinLimit() time.Duration { return spinLimit }
