//go:build !linux

package futex

import (
	"sync/atomic"
	"time"
)

// Supported reports whether Wait sleeps in the kernel rather than polling.
const Supported = false

// pollInterval bounds how stale a polling Wait can be.
const pollInterval = 200 * time.Microsecond

// Wait sleeps for a short poll interval (or until the timeout, if sooner;
// negative: no limit) unless *addr already differs from val. Callers loop,
// so a change is seen within one interval; Wake cannot shorten it.
func Wait(addr *atomic.Uint32, val uint32, timeout time.Duration) error {
	if addr.Load() != val {
		return nil
	}
	d := pollInterval
	if timeout >= 0 && timeout < d {
		time.Sleep(timeout)
		return ErrTimeout
	}
	time.Sleep(d)
	return nil
}

// Wake is a no-op: polling waiters see the change on their own.
func Wake(addr *atomic.Uint32, n int) int { return 0 }

func waitOwn(addr *atomic.Uint32, val uint32) { Wait(addr, val, -1) }

func wakeOwn(addr *atomic.Uint32) {}
