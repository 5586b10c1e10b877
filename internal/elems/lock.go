package elems

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/xproc-go/xproc/internal/goid"
	xsync "github.com/xproc-go/xproc/sync"
)

// Lock is the lock of one Value or Array handle: Mu, the xsync.Mutex in
// the segment, together with the goroutine of this process that holds Mu
// through Lock, if any.
//
// Python's Value and Array locks are RLocks, so that
//
//	with v.get_lock():
//	    v.value += 1
//
// works: v.value takes the lock its caller holds. Lock gives the same to
// Go: the locked methods of the handle (Value.Load, Array.Get, ...) take
// the lock with Enter, which lets the goroutine that holds it through
// Lock in without waiting, and makes everyone else wait as usual. Lock
// nests, as an RLock does.
//
// Only Lock and Unlock read the goroutine id, which costs about a
// microsecond; Enter reads it only when Mu is taken, and only if some
// goroutine holds it through Lock, so an uncontended locked method costs
// what locking Mu costs.
type Lock struct {
	Mu  *xsync.Mutex
	pkg string // "value" or "array", for messages
	// owner is the goroutine holding Mu through Lock, or 0. It is set
	// after Mu is taken and cleared before Mu is released, so a goroutine
	// that reads its own id here holds Mu.
	owner atomic.Uint64
	depth int // Lock calls not yet undone; only the owner touches it
}

// NewLock returns the lock of a handle of package pkg whose mutex is mu.
func NewLock(pkg string, mu *xsync.Mutex) *Lock { return &Lock{Mu: mu, pkg: pkg} }

// Lock locks l for the calling goroutine, or locks it once more if the
// goroutine holds it already. A lock whose holder died is taken over
// silently, as xsync.Mutex.Lock does.
func (l *Lock) Lock() {
	if err := l.LockContext(context.Background()); err != nil && !errors.Is(err, xsync.ErrOwnerDead) {
		panic(fmt.Sprintf("%s: Lock: %v", l.pkg, err))
	}
}

// LockContext is Lock, giving up when ctx is done. It returns nil, or
// xsync.ErrOwnerDead with the lock held, or ctx.Err() without it.
func (l *Lock) LockContext(ctx context.Context) error {
	g := goid.Get()
	if l.owner.Load() == g {
		l.depth++
		return nil
	}
	err := l.Mu.LockContext(ctx)
	if err != nil && !errors.Is(err, xsync.ErrOwnerDead) {
		return err
	}
	l.own(g)
	return err
}

// TryLock locks l for the calling goroutine, or once more if it holds it
// already, if it can do so at once; it reports whether it did.
func (l *Lock) TryLock() bool {
	g := goid.Get()
	if l.owner.Load() == g {
		l.depth++
		return true
	}
	if !l.Mu.TryLock() {
		return false
	}
	l.own(g)
	return true
}

func (l *Lock) own(g uint64) {
	l.depth = 1
	l.owner.Store(g)
}

// Unlock undoes one Lock; the last one releases Mu. It panics, changing
// nothing, with an error wrapping xsync.ErrNotOwner if the calling
// goroutine does not hold l through Lock.
func (l *Lock) Unlock() {
	if l.owner.Load() != goid.Get() {
		panic(fmt.Errorf("%s: Unlock of a lock the calling goroutine does not hold: %w", l.pkg, xsync.ErrNotOwner))
	}
	if l.depth--; l.depth > 0 {
		return
	}
	l.owner.Store(0)
	l.Mu.Unlock()
}

// Enter takes Mu for one locked method, unless the calling goroutine
// holds it through Lock. It reports whether it took it; the method then
// unlocks Mu when done.
func (l *Lock) Enter() bool {
	return l.Mu.TryLock() || l.enterSlow()
}

func (l *Lock) enterSlow() bool {
	if o := l.owner.Load(); o != 0 && o == goid.Get() {
		return false
	}
	l.Mu.Lock()
	return true
}
