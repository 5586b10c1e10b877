package sync

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/xproc-go/xproc/internal/goid"
	"github.com/xproc-go/xproc/internal/owner"
)

// ReentrantMutex is a lock that its holder may lock again: Python's
// multiprocessing.RLock. It is released after as many Unlocks as Locks.
// Its zero value is unlocked; it is 32 bytes with no pointers.
//
// # Owner
//
// The holder is one goroutine of one process, as the holder of a Python
// RLock is one thread of one process: other goroutines of the same process
// block like other processes do, and only the holding goroutine may
// unlock. Goroutine identity costs about a microsecond per call (Go does
// not expose it cheaply), so prefer Mutex where re-entry is not needed.
//
// # Owner death
//
// As for Mutex: if the holding process dies, the next LockContext takes
// the lock over with ErrOwnerDead and a depth of one.
type ReentrantMutex struct {
	mu Mutex
	// proc and gid name the holding process and goroutine. Both are set
	// after mu is taken and cleared before it is released, so a goroutine
	// that finds its own process and id here while mu is held by its
	// process is the holder. proc matters when mu was taken over from a
	// dead process: until the new holder writes its own, the words still
	// name the dead one, whose identity no live goroutine can match.
	proc  atomic.Uint64
	gid   atomic.Uint64
	depth atomic.Uint32
	_     uint32
}

// Lock locks r, or re-locks it if the calling goroutine holds it. It
// panics if r's segment is closed while it waits.
func (r *ReentrantMutex) Lock() {
	if err := r.LockContext(context.Background()); err != nil && !errors.Is(err, ErrOwnerDead) {
		panic("xsync: ReentrantMutex.Lock: " + err.Error())
	}
}

// TryLock locks or re-locks r if it can do so at once.
func (r *ReentrantMutex) TryLock() bool {
	g := goid.Get()
	if r.heldBy(g) {
		r.depth.Add(1)
		return true
	}
	if !r.mu.TryLock() {
		return false
	}
	r.own(g)
	return true
}

// LockContext locks or re-locks r, giving up when ctx is done. Like
// Mutex.LockContext it may return ErrOwnerDead with the lock held.
func (r *ReentrantMutex) LockContext(ctx context.Context) error {
	g := goid.Get()
	if r.heldBy(g) {
		r.depth.Add(1)
		return nil
	}
	err := r.mu.LockContext(ctx)
	if err != nil && !errors.Is(err, ErrOwnerDead) {
		return err
	}
	r.own(g)
	return err
}

// Unlock undoes one Lock. The last Unlock releases r. Like sync.Mutex's
// Unlock it returns nothing, so that *ReentrantMutex is a sync.Locker.
//
// Unlocking a lock the calling goroutine does not hold (held by another
// goroutine or process, or not at all) is a bug in the caller, as
// unlocking an unlocked sync.Mutex is: Unlock then changes nothing and
// panics with an error wrapping ErrNotOwner, which recover returns for
// errors.Is. Held says beforehand whether the caller holds r.
func (r *ReentrantMutex) Unlock() {
	if !r.heldBy(goid.Get()) {
		panic(fmt.Errorf("xsync: ReentrantMutex.Unlock: %w", ErrNotOwner))
	}
	if r.depth.Add(^uint32(0)) > 0 {
		return
	}
	r.gid.Store(0)
	r.proc.Store(0)
	r.mu.Unlock()
}

// Locked reports whether r is held at this instant, by anyone.
func (r *ReentrantMutex) Locked() bool { return r.mu.Locked() }

// Held reports whether the calling goroutine holds r.
func (r *ReentrantMutex) Held() bool { return r.heldBy(goid.Get()) }

// Depth returns how many times the calling goroutine holds r (0 if it
// does not).
func (r *ReentrantMutex) Depth() int {
	if !r.heldBy(goid.Get()) {
		return 0
	}
	return int(r.depth.Load())
}

// own records goroutine g of this process, which has just taken mu, as
// the holder.
func (r *ReentrantMutex) own(g uint64) {
	r.depth.Store(1)
	r.gid.Store(g)
	r.proc.Store(uint64(owner.Self()))
}

func (r *ReentrantMutex) heldBy(g uint64) bool {
	self := owner.Self()
	return r.mu.holder() == self && r.proc.Load() == uint64(self) && r.gid.Load() == g
}
