package elems

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

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
	Mu   *xsync.Mutex
	pkg  string // "value" or "array", for messages
	name string // the segment's name, for messages
	// owner is the goroutine holding Mu through Lock, or 0. It is set
	// after Mu is taken and cleared before Mu is released, so a goroutine
	// that reads its own id here holds Mu.
	owner atomic.Uint64
	depth int // Lock calls not yet undone; only the owner touches it
	// warned is set once the handle has warned of a wait that looks like
	// a call from inside Update's function (see waitHeld).
	warned atomic.Bool
}

// NewLock returns the lock of a handle of package pkg, on the segment
// named name, whose mutex is mu.
func NewLock(pkg, name string, mu *xsync.Mutex) *Lock { return &Lock{Mu: mu, pkg: pkg, name: name} }

// selfWaitWarning is how long a locked method waits for a lock that its
// own process holds, not through Lock, before it warns that it may be
// waiting on itself.
var selfWaitWarning = time.Second

// Warnings is where that warning goes.
var Warnings io.Writer = os.Stderr

// waitHeld locks Mu, which this process holds but not through Lock: by a
// locked method or an Update of this handle (or of another handle of the
// segment in this process). A Load, Store or Get lets go at once; an
// Update's function may take a while; but a call made from inside that
// function, on the same value, waits for ever, since Update holds the
// lock for its function and not for its goroutine. Telling the two apart
// would cost every Update the goroutine's id, so waitHeld waits a while
// first and then says, once per handle, what may be happening, with the
// stack of the waiting goroutine, and waits on: a slow function of
// another goroutine still gets its lock.
func (l *Lock) waitHeld(ctx context.Context, op string) error {
	wctx, cancel := context.WithTimeout(ctx, selfWaitWarning)
	err := l.Mu.LockContext(wctx)
	cancel()
	if err == nil || errors.Is(err, xsync.ErrOwnerDead) || errors.Is(err, xsync.ErrClosed) || ctx.Err() != nil {
		return err // ErrClosed: the memory is gone, Mu with it
	}
	if !l.warned.Swap(true) {
		fmt.Fprintf(Warnings, "%s %q: %s has waited %v for the lock, which this process holds, not through this handle's Lock: "+
			"if it is called from inside the function given to Update, on the same %s, it waits for ever "+
			"(that function must work through its pointer, or the caller must hold the lock with Lock). "+
			"The waiting goroutine:\n%s\n", l.pkg, l.name, op, selfWaitWarning, l.pkg, debug.Stack())
	}
	return l.Mu.LockContext(ctx)
}

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
	var err error
	if l.owner.Load() == 0 && l.Mu.HeldBySelf() {
		err = l.waitHeld(ctx, "Lock")
	} else {
		err = l.Mu.LockContext(ctx)
	}
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
func (l *Lock) Enter(op string) bool {
	return l.Mu.TryLock() || l.enterSlow(op)
}

func (l *Lock) enterSlow(op string) bool {
	o := l.owner.Load()
	if o != 0 && o == goid.Get() {
		return false
	}
	if o == 0 && l.Mu.HeldBySelf() {
		// ErrOwnerDead: taken over, as Lock does; closed: Mu.Lock's panic.
		if err := l.waitHeld(context.Background(), op); err != nil && !errors.Is(err, xsync.ErrOwnerDead) {
			panic("xsync: Lock: " + err.Error())
		}
		return true
	}
	l.Mu.Lock()
	return true
}
