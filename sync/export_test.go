package sync

import (
	"time"

	"github.com/xproc-go/xproc/internal/goid"
	"github.com/xproc-go/xproc/internal/spin"
)

// Hooks for tests and benchmarks in package sync_test.

// Asleep reports whether some caller is in the sleeping path of p (past
// its spinning), for tests that must act only once a call has blocked.
func Asleep(p any) bool { return Sleepers(p) != 0 }

// Sleepers returns how many callers are in the sleeping path of p; for a
// mutex, 1 if any is.
func Sleepers(p any) int {
	switch p := p.(type) {
	case *NamedMutex:
		return Sleepers(p.mu)
	case *NamedReentrantMutex:
		return Sleepers(p.rm)
	case *NamedEvent:
		return Sleepers(p.ev)
	case *NamedBarrier:
		return Sleepers(p.b)
	case *Mutex:
		return int(p.state.Load() >> 31 & 1)
	case *ReentrantMutex:
		return Sleepers(&p.mu)
	case *Semaphore:
		return int(p.waiters.Load())
	case *Event:
		return int(p.waiters.Load())
	case *Cond:
		return int(p.sleepers.Load())
	case *Barrier:
		return int(p.sleepers.Load())
	}
	panic("Sleepers: unknown primitive")
}

// SetSpin sets the spin limit and returns a function restoring it.
func SetSpin(d time.Duration) (restore func()) {
	old := spin.Limit
	spin.Limit = d
	return func() { spin.Limit = old }
}

// SpinLimit returns the current spin limit.
func SpinLimit() time.Duration { return spin.Limit }

// Goid returns the calling goroutine's id.
func Goid() uint64 { return goid.Get() }

// ForgeHolder makes r look held by process id, goroutine gid, depth 1,
// as a lock whose holder died is left.
func ForgeHolder(r *ReentrantMutex, id uint64, gid uint64) {
	r.mu.state.Store(id)
	r.proc.Store(id)
	r.gid.Store(gid)
	r.depth.Store(1)
}

// HalfNotify does the first half of Notify(n), handing out tokens without
// bumping the generation: what a notifier killed between the two leaves.
func HalfNotify(c *Cond, n uint32) { c.handOut(n) }

// ForgeDrain makes the release of generation gen wait for left parties of
// the round before it, as if they had not yet returned from Wait.
func ForgeDrain(b *Barrier, gen, left uint32) { b.drain.Store(drainFor(gen, left)) }

// SetWatchExits turns the waiters' exit watches on or off and returns a
// function restoring the setting.
func SetWatchExits(on bool) (restore func()) {
	old := watchExits
	watchExits = on
	return func() { watchExits = old }
}

// ForgeCondSlot sets waiter slot i of c, as a process that died (or a
// reaper killed half-way) leaves it.
func ForgeCondSlot(c *Cond, i int, id, counts uint64) {
	c.slots[i].id.Store(id)
	c.slots[i].counts.Store(counts)
}

// CondSlotID returns the identity word of waiter slot i of c.
func CondSlotID(c *Cond, i int) uint64 { return c.slots[i].id.Load() }

// CondGen returns c's generation.
func CondGen(c *Cond) uint32 { return c.gen.Load() }

// ForgeMutex stores word in m's lock word, as a holder would.
func ForgeMutex(m *NamedMutex, word uint64) { m.mu.state.Store(word) }

// CondOf returns the Cond inside a named condition (valid until Close).
func CondOf(c *NamedCond) *Cond { return &c.p.Cond }
