package sync

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/race"
	"github.com/xproc-go/xproc/internal/region"
)

// Cond is a condition variable shared between processes: Python's
// multiprocessing.Condition. It is used with a Mutex, passed to each Wait
// (shared memory cannot hold a pointer to it). Its zero value is ready;
// it is 16 bytes with no pointers.
//
// Wait atomically unlocks the mutex and suspends the caller; Signal,
// Notify and Broadcast wake waiters, which re-lock the mutex before Wait
// returns. As in Python, notifications are counted, not saved: Notify(n)
// releases at most n of the callers waiting at that moment, and a
// notification with nobody waiting is lost. Call them with the mutex held
// (Python requires it); without it a caller that starts waiting at the
// same moment may take the wake-up meant for an earlier one.
//
// # Owner death
//
// If the holder of the mutex dies, Wait's re-lock returns ErrOwnerDead as
// Mutex.LockContext does. A notifier killed half-way through a Notify
// delays the waiters it released until the next Notify. A waiter killed
// while waiting stays counted (Waiting includes it), but it never takes
// a wake-up from a live waiter: a notification is a token that any
// waiter registered before it may take, not one reserved for a
// particular waiter. The token counted for a dead waiter may later let
// one more waiter return than a Notify asked for, which callers that
// re-check their condition (as they must) do not notice.
type Cond struct {
	gen      atomic.Uint32 // bumped by each notify that releases someone; the futex word
	sleepers atomic.Uint32 // callers in the sleeping path, any process
	// counts holds waiting (registered, not yet notified) in its low 32
	// bits and tokens (notified, not yet returned) in its high 32 bits.
	// A waiter registered at generation g may take a token once gen != g,
	// so a notification never releases a caller that began waiting after
	// it.
	counts atomic.Uint64
}

// Wait unlocks m, waits for a notification and locks m again. The caller
// must hold m. See WaitContext.
func (c *Cond) Wait(m *Mutex) error {
	return c.WaitContext(context.Background(), m)
}

// WaitContext unlocks m, waits until notified or until ctx is done, and
// locks m again before returning (the re-lock itself does not give up),
// in every case but two: if c's segment is closed under the waiter, it
// returns ErrClosed, holding m again only if m's segment is not closing
// too; if m's segment alone closes during the re-lock, it returns
// ErrClosed without m. It returns nil when notified, ctx.Err() when ctx ended first,
// ErrOwnerDead if the re-lock took m from a dead holder, and ErrNotOwner,
// without waiting, if m is not held by this process. A waiter that fails
// with ErrClosed hands a notification it was given on to another waiter.
//
// Like any condition variable it may return without the condition the
// caller waits for being true; callers check it in a loop (or use
// WaitFor).
func (c *Cond) WaitContext(ctx context.Context, m *Mutex) error {
	if m.holder() != owner.Self() {
		return fmt.Errorf("xsync: Cond.Wait: %w", ErrNotOwner)
	}
	// Keep the segment mapped for the whole wait, re-lock included.
	w, err := startWait(ctx, c)
	if err != nil {
		return err
	}
	defer w.done()
	// Read the generation before registering: a notify that lands in
	// between then counts this waiter or an earlier one, and either way
	// some waiter can take its token.
	g := c.gen.Load()
	c.counts.Add(1)
	m.Unlock()
	notified, werr := c.sleep(w, g)
	if werr == ErrClosed {
		// Our segment is closing (it stays mapped until w.done). Withdraw
		// from the count, which other processes still see, handing on a
		// notification we were counted for, and re-lock m unless
		// it is in this same segment: then it is going away too, and the
		// caller does not hold it.
		if c.cancel(g) {
			c.Notify(1)
		}
		if region.Lookup(m) != w.reg {
			if err := m.LockContext(context.Background()); err == ErrClosed {
				return fmt.Errorf("xsync: Cond.Wait: %w (the mutex's segment too: not re-locked)", ErrClosed)
			}
		}
		return werr
	}
	lerr := m.LockContext(context.Background())
	if !notified {
		// Leave under the lock. A notification may have counted us in
		// the meantime; then we were notified after all.
		notified = c.cancel(g)
	}
	if race.Enabled {
		race.Acquire(c)
	}
	switch {
	case lerr == ErrClosed:
		// m's segment closed under us: the caller does not hold m, so
		// it will not act on a notification; hand it on.
		if notified {
			c.Notify(1)
		}
		return lerr
	case lerr != nil:
		return lerr // ErrOwnerDead: m is held, and notified or not, the caller looks
	case notified:
		return nil
	}
	return werr
}

// sleep waits for a token and reports whether it took one.
func (c *Cond) sleep(w waiter, g uint32) (bool, error) {
	if spinUntil(func() bool { return c.gen.Load() != g && c.takeToken() }) {
		return true, nil
	}
	c.sleepers.Add(1)
	defer c.sleepers.Add(^uint32(0))
	for {
		cur := c.gen.Load()
		if cur != g && c.takeToken() {
			return true, nil
		}
		if err := w.sleep(&c.gen, cur); err != nil {
			return false, err
		}
	}
}

func (c *Cond) takeToken() bool {
	for {
		v := c.counts.Load()
		if v>>32 == 0 {
			return false
		}
		if c.counts.CompareAndSwap(v, v-1<<32) {
			return true
		}
	}
}

// cancel withdraws a waiter registered at generation g that gave up. It
// takes a token instead, and reports true, if one may be its own.
func (c *Cond) cancel(g uint32) bool {
	for {
		v := c.counts.Load()
		waiting, tokens := uint32(v), uint32(v>>32)
		var next uint64
		var took bool
		switch {
		case tokens > 0 && (c.gen.Load() != g || waiting == 0):
			next, took = v-1<<32, true
		case waiting > 0:
			next = v - 1
		default:
			return false // counts were damaged; nothing to withdraw
		}
		if c.counts.CompareAndSwap(v, next) {
			return took
		}
	}
}

// Signal wakes one waiter, if any. See Notify.
func (c *Cond) Signal() { c.Notify(1) }

// Broadcast wakes every waiter.
func (c *Cond) Broadcast() { c.Notify(math.MaxInt32) }

// Notify wakes up to n of the callers waiting now; with nobody waiting it
// does nothing.
func (c *Cond) Notify(n int) {
	if n <= 0 {
		return
	}
	if race.Enabled {
		race.Release(c)
	}
	for {
		v := c.counts.Load()
		waiting, tokens := uint32(v), uint32(v>>32)
		if waiting == 0 {
			if tokens != 0 {
				// Everyone registered holds a token already, but a
				// notifier may have died between handing out tokens and
				// bumping gen: bump it so that they can take them.
				break
			}
			return
		}
		k := uint32(min(n, int(waiting)))
		if c.counts.CompareAndSwap(v, uint64(tokens+k)<<32|uint64(waiting-k)) {
			break
		}
	}
	c.gen.Add(1)
	if c.sleepers.Load() != 0 {
		// Every sleeper must look: only those registered before this
		// generation may take the tokens, and the kernel cannot tell
		// which they are.
		futex.Wake(&c.gen, futex.All)
	}
}

// Waiting returns the number of callers waiting and not yet notified.
func (c *Cond) Waiting() int { return int(uint32(c.counts.Load())) }

// WaitFor waits until pred returns true, as Python's wait_for: it checks
// pred under m, waits, and checks again after each wake-up, until pred
// holds or ctx is done. It returns pred's last result, with the error
// that ended the wait if pred is still false (ctx.Err(), ...). A re-lock
// that took m from a dead holder is always reported, as ErrOwnerDead.
// The caller must hold m, and holds it again on return.
func (c *Cond) WaitFor(ctx context.Context, m *Mutex, pred func() bool) (bool, error) {
	for !pred() {
		if err := c.WaitContext(ctx, m); err != nil {
			if errors.Is(err, ErrClosed) {
				return false, err
			}
			ok := pred()
			if ok && !errors.Is(err, ErrOwnerDead) {
				return true, nil
			}
			return ok, err
		}
	}
	return true, nil
}
