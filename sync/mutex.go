package sync

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/race"
)

// Mutex is a mutual exclusion lock shared between processes: Python's
// multiprocessing.Lock. Its zero value is unlocked, and it is 8 bytes
// with no pointers, so it can be a field of a struct in shared memory
// (see package value) or stand alone in a segment (CreateMutex).
//
// The lock belongs to a process, not a goroutine: like sync.Mutex, it may
// be unlocked by another goroutine of the process that locked it, or by
// another process.
//
// # Owner death
//
// The lock word holds the holder's identity (pid, PID namespace and start
// time). If the holder dies (killed, crashed, exited), execs another
// program or closes the segment without unlocking, it can never unlock,
// and a waiter takes the lock over: LockContext then returns ErrOwnerDead
// with the lock held, like EOWNERDEAD from a robust pthread mutex: the
// data it guards may be half-updated. Lock, which cannot return an error,
// takes the lock over silently. TryLock never takes a lock from a dead
// holder.
//
// Whether the holder still maps the segment is asked of the kernel (see
// internal/owner: every process holds a lock on a byte of the segment file
// while it maps it), so a live holder is never mistaken for a dead one,
// even in another PID namespace (containers sharing /dev/shm). A waiter
// learns of the holder's exit through a pidfd in Go's network poller and
// takes the lock over within about a millisecond; a holder no pidfd can
// show the end of (one that execs, one of another PID namespace) is asked
// about every 2ms, by one goroutine of the process for all its waiters,
// whether it still maps the segment (region.DetachPoll): a takeover in
// about 3ms. The periodic check, every 100ms, remains behind both.
//
// A Mutex must not be copied after first use.
type Mutex struct {
	// state is 0 when unlocked. Otherwise its bits 0..29 and 32..63 hold
	// the owner's identity, and bit 31 (mutexWaiters) is set when a waiter
	// may be asleep, so that Unlock knows to wake one. The low 32 bits
	// are the futex word.
	state atomic.Uint64
}

const (
	mutexWaiters = 1 << 31
	mutexOwner   = ^uint64(mutexWaiters)
)

// Lock locks m, waiting as long as it takes. If the holder died, Lock
// takes the lock over (use LockContext to be told). It panics if m's
// segment is closed while it waits.
func (m *Mutex) Lock() {
	// Fast path: unlocked → owned by us, with no waiters.
	if m.state.CompareAndSwap(0, uint64(owner.Self())) {
		race.Acquire(m)
		return
	}
	m.lockBlocking()
}

// lockBlocking is Lock's slow path, kept apart so that Lock inlines.
func (m *Mutex) lockBlocking() {
	if err := m.lockSlow(context.Background()); err != nil && !errors.Is(err, ErrOwnerDead) {
		panic("xsync: Lock: " + err.Error())
	}
}

// TryLock locks m if it is unlocked and reports whether it did.
func (m *Mutex) TryLock() bool {
	if m.state.CompareAndSwap(0, uint64(owner.Self())) {
		race.Acquire(m)
		return true
	}
	return false
}

// TryLockRobust locks m without waiting if it is unlocked, or if its
// holder has died: POSIX's pthread_mutex_trylock on a robust mutex. It
// reports whether it locked m, with ErrOwnerDead (an *OwnerDeadError)
// when it took the lock over from a dead holder, as LockContext does;
// false, nil while a live process holds it; false and ErrClosed if m's
// segment is closed. Where m is held it checks the holder's liveness (a
// system call), so it is for callers that poll now and then, not for a
// spinning loop, where TryLock is.
func (m *Mutex) TryLockRobust() (bool, error) {
	if m.TryLock() {
		return true, nil
	}
	w, err := startWait(context.Background(), m)
	if err != nil {
		return false, err
	}
	defer w.done()
	v := m.state.Load()
	holder := owner.ID(v & mutexOwner)
	if holder == 0 || w.reg.Alive(holder) {
		return m.TryLock(), nil
	}
	if !m.state.CompareAndSwap(v, uint64(owner.Self())|v&mutexWaiters) {
		return false, nil // changed meanwhile: somebody else took it over or it was freed
	}
	race.Acquire(m)
	return true, &OwnerDeadError{PID: holder.Pid()}
}

// LockContext locks m, giving up when ctx is done. It returns nil, or
// ErrOwnerDead with the lock held, or ctx.Err() (or ErrClosed) without it.
// If m is free the lock is taken even if ctx is already done.
func (m *Mutex) LockContext(ctx context.Context) error {
	if m.state.CompareAndSwap(0, uint64(owner.Self())) {
		if race.Enabled {
			race.Acquire(m)
		}
		return nil
	}
	return m.lockSlow(ctx)
}

func (m *Mutex) lockSlow(ctx context.Context) error {
	self := uint64(owner.Self())
	w, err := startWait(ctx, m)
	if err != nil {
		return err
	}
	defer w.done()
	// The holder is usually running on another core: spin briefly.
	if spinUntil(func() bool { return m.state.Load() == 0 && m.state.CompareAndSwap(0, self) }) {
		race.Acquire(m)
		return nil
	}
	word := futex.Low32(&m.state)
	var seen uint64     // the lock word we have been waiting on...
	var since time.Time // ...since this time
	var exit exitWatch  // the holder's exit, which ends sleeps at once
	defer exit.done()
	for {
		v := m.state.Load()
		if v == 0 {
			// Take it with the waiters bit set: others may still sleep,
			// and our Unlock must wake one of them.
			if m.state.CompareAndSwap(0, self|mutexWaiters) {
				race.Acquire(m)
				return nil
			}
			continue
		}
		if v&mutexWaiters == 0 {
			// Announce a sleeper before sleeping; Unlock swaps the word
			// to 0 and wakes one if it saw the bit.
			if !m.state.CompareAndSwap(v, v|mutexWaiters) {
				continue
			}
			v |= mutexWaiters
		}
		holder := owner.ID(v & mutexOwner)
		if v != seen {
			seen, since = v, time.Now()
		}
		ctx := exit.watch(w.ctx, w.reg, holder)
		if err := w.sleepCtx(ctx, word, uint32(v)); err != nil {
			switch {
			case err == ErrClosed:
			case w.ctx.Err() != nil:
				err = w.ctx.Err() // not the merged context's Canceled
			case exit.fired():
				err = nil // the holder exited: look at once
			}
			if err != nil {
				m.passWake(word)
				return err
			}
		}
		if m.state.Load() != v {
			continue
		}
		if exit.fired() || time.Since(since) >= checkInterval {
			since = time.Now()
			if !w.reg.Alive(holder) {
				if m.state.CompareAndSwap(v, self|mutexWaiters) {
					// The holder is gone: the word could no longer
					// change except by another waiter taking it over
					// first.
					race.Acquire(m)
					return &OwnerDeadError{PID: holder.Pid()}
				}
			} else if exit.fired() {
				exit.disarm(w.ctx) // a reused pid's exit: poll from now on
			}
		}
	}
}

// passWake is called by a waiter that gives up after sleeping: it may
// have been woken by an Unlock meant for another sleeper. Wake one if the
// lock is free; otherwise make sure its holder will wake one.
func (m *Mutex) passWake(word *atomic.Uint32) {
	for {
		v := m.state.Load()
		if v == 0 {
			futex.Wake(word, 1)
			return
		}
		if v&mutexWaiters != 0 || m.state.CompareAndSwap(v, v|mutexWaiters) {
			return
		}
	}
}

// Unlock unlocks m. It panics if m is not locked, like sync.Mutex.
func (m *Mutex) Unlock() {
	if race.Enabled {
		race.Release(m)
	}
	// old-1 has the waiters bit iff old had it or old was 0 (the pid
	// part of a held lock is never 0, so subtracting cannot borrow).
	if old := m.state.Swap(0); (old-1)&mutexWaiters != 0 {
		m.unlockSlow(old)
	}
}

//go:noinline
func (m *Mutex) unlockSlow(old uint64) {
	if old == 0 {
		panic("xsync: unlock of unlocked mutex")
	}
	futex.Wake(futex.Low32(&m.state), 1)
}

// Locked reports whether m is locked at this instant, by anyone.
func (m *Mutex) Locked() bool { return m.state.Load() != 0 }

// HeldBySelf reports whether the calling process holds m at this instant
// (a Mutex is held by a process, not by a goroutine), for assertions and
// diagnostics: Cond.Wait refuses a mutex the process does not hold.
func (m *Mutex) HeldBySelf() bool { return m.holder() == owner.Self() }

// holder returns the identity of the locking process, or 0.
func (m *Mutex) holder() owner.ID { return owner.ID(m.state.Load() & mutexOwner) }
