package sync

import (
	"context"
	"errors"
	"fmt"
	"math"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/race"
	"github.com/xproc-go/xproc/internal/region"
)

// Cond is a condition variable shared between processes: Python's
// multiprocessing.Condition. It is used with a Mutex, passed to each Wait
// (shared memory cannot hold a pointer to it). Its zero value is ready;
// it is 144 bytes with no pointers.
//
// Wait atomically unlocks the mutex and suspends the caller; Signal,
// Notify and Broadcast wake waiters, which re-lock the mutex before Wait
// returns. As in Python, notifications are counted, not saved: Notify(n)
// releases at most n of the callers waiting at that moment, and a
// notification with nobody waiting is lost. Call them with the mutex held
// (Python requires it); without it a caller that starts waiting at the
// same moment may take the wake-up meant for an earlier one.
//
// # Waiter slots
//
// Waiters are counted per process, in one of CondSlots slots: the count
// of a process's callers waiting, and the notifications handed to them
// and not yet taken (tokens). Notify turns waiting counts into tokens,
// slot by slot; a waiter returns by taking a token of its own process
// once a notification has been made since it began to wait. Which of a
// process's waiters takes its process's token is not ordered: one that
// began to wait after the token was handed out may take it once a later
// notification (to any process) has been made, and an earlier one then
// waits for the next (as with Python's multiprocessing.Condition, whose
// waiters take a shared semaphore). Processes beyond CondSlots waiting at
// once share one anonymous count (see Caveats).
//
// # Owner death
//
// If the holder of the mutex dies, Wait's re-lock returns ErrOwnerDead as
// Mutex.LockContext does. A notifier killed half-way through a Notify
// delays the waiters it released until the next Notify.
//
// A waiter killed while waiting (or whose process exec'd or closed the
// segment) stays counted in its process's slot until a waiter of another
// process notices, which sleeping waiters check every 100ms: the slot is
// then cleared, and a notification it held, which the dead waiter cannot
// take, is handed on to the waiters still there. That is the only
// spurious wake-up a death can cause: a notification is never taken by a
// live waiter in the name of a dead one, so the dead are not counted
// twice. Until its death is noticed, a notification handed to it waits
// with it: Notify may delay a live waiter by up to about 200ms, never
// longer.
type Cond struct {
	gen      atomic.Uint32 // bumped by each notify that releases someone; the futex word
	sleepers atomic.Uint32 // callers in the sleeping path, any process
	// pool counts the waiters of processes that found no free slot:
	// waiting in its low 32 bits, tokens in its high 32 bits, shared by
	// all of them.
	pool  atomic.Uint64
	slots [CondSlots]condSlot
}

// CondSlots is the number of processes that can wait on one Cond at the
// same time with their own waiter slot.
const CondSlots = 8

// condSlot holds the waiters of one process. id is the process's
// identity, with condReaping set while a waiter of another process clears
// the slot of a process that died, or 0 when free; it is claimed and
// freed by its process only, under condMu, and cleared by a reaper.
// counts holds waiting (registered, not yet notified) in its low 32 bits
// and tokens (notified, not yet returned) in its high 32 bits. A waiter
// registered at generation g may take a token once gen != g, so a
// notification never releases a caller that began waiting after it.
type condSlot struct {
	id     atomic.Uint64
	counts atomic.Uint64
}

// condReaping marks a slot being cleared by the process whose identity
// the rest of the word holds (owner IDs never use bit 31).
const condReaping = 1 << 31

// condMu serialises this process's claiming, use and freeing of its
// slots: a slot is freed only when its counts are zero with this lock
// held, so no goroutine of this process can be registering in it then.
var condMu gosync.Mutex

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
// ErrOwnerDead if the re-lock took m from a dead holder, and ErrNotOwner
// (ErrInvalid if m is nil), without waiting, if m is not held by this
// process. A waiter that fails
// with ErrClosed hands a notification it was given on to another waiter.
//
// Like any condition variable it may return without the condition the
// caller waits for being true; callers check it in a loop (or use
// WaitFor).
func (c *Cond) WaitContext(ctx context.Context, m *Mutex) error {
	if m == nil {
		return invalidArg("Cond.Wait", "m", "nil", "the Mutex the caller holds")
	}
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
	// a waiter of the same slot can take its token.
	g := c.gen.Load()
	counts := c.register()
	defer c.unregister(counts)
	m.Unlock()
	notified, werr := c.sleep(w, g, counts)
	if werr == ErrClosed {
		// Our segment is closing (it stays mapped until w.done). Withdraw
		// from the count, which other processes still see, handing on a
		// notification we were counted for, and re-lock m unless
		// it is in this same segment: then it is going away too, and the
		// caller does not hold it.
		if cancelWait(counts, &c.gen, g) {
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
		notified = cancelWait(counts, &c.gen, g)
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

// register counts a waiter of this process in its slot, claiming a free
// one if it has none, or in the pool if none is free, and returns the
// counts word it used.
func (c *Cond) register() *atomic.Uint64 {
	self := uint64(owner.Self())
	condMu.Lock()
	defer condMu.Unlock()
	for i := range c.slots {
		if c.slots[i].id.Load() == self {
			c.slots[i].counts.Add(1)
			return &c.slots[i].counts
		}
	}
	for i := range c.slots {
		if c.slots[i].id.Load() == 0 && c.slots[i].id.CompareAndSwap(0, self) {
			c.slots[i].counts.Add(1)
			return &c.slots[i].counts
		}
	}
	c.pool.Add(1)
	return &c.pool
}

// unregister frees this process's slot once its last waiter has left.
func (c *Cond) unregister(counts *atomic.Uint64) {
	if counts == &c.pool {
		return
	}
	condMu.Lock()
	defer condMu.Unlock()
	for i := range c.slots {
		if &c.slots[i].counts == counts && counts.Load() == 0 {
			c.slots[i].id.CompareAndSwap(uint64(owner.Self()), 0)
		}
	}
}

// reap clears the slots of processes that no longer map the segment:
// their waiting counts are dropped, and the notifications they held are
// handed on.
//
// A reaper may die too. It marks the slot with its own identity before it
// touches the counts, hands the tokens on before it clears them, and
// frees the slot with a compare-and-swap of its mark; a later reaper takes
// over a mark whose reaper is gone and does the rest again. A reaper
// killed between handing on and clearing makes the next hand the same
// tokens on again: one spurious wake-up per dead reaper, never a lost one.
func (c *Cond) reap(reg *region.Region) {
	self := uint64(owner.Self())
	for i := range c.slots {
		s := &c.slots[i]
		id := s.id.Load()
		switch {
		case id == 0, id == self, id == self|condReaping:
			continue
		case id&condReaping != 0:
			// Being reaped: go on only if the reaper is gone.
			if reg.Alive(owner.ID(id &^ condReaping)) {
				continue
			}
		case reg.Alive(owner.ID(id)):
			continue
		}
		mark := self | condReaping
		if !s.id.CompareAndSwap(id, mark) {
			continue
		}
		// Notifiers may still turn waiting counts into tokens here until
		// the counts are cleared: hand on every token seen, once.
		handed := uint64(0)
		for {
			v := s.counts.Load()
			if tokens := v >> 32; tokens > handed {
				c.Notify(int(tokens - handed))
				handed = tokens
			}
			if s.counts.CompareAndSwap(v, 0) {
				break
			}
		}
		s.id.CompareAndSwap(mark, 0)
	}
}

// sleep waits for a token in counts and reports whether it took one. It
// reaps the slots of dead processes every checkInterval while it sleeps.
func (c *Cond) sleep(w waiter, g uint32, counts *atomic.Uint64) (bool, error) {
	if spinUntil(func() bool { return c.gen.Load() != g && takeToken(counts) }) {
		return true, nil
	}
	c.sleepers.Add(1)
	defer c.sleepers.Add(^uint32(0))
	lastReap := time.Now()
	for {
		cur := c.gen.Load()
		if cur != g && takeToken(counts) {
			return true, nil
		}
		if err := w.sleep(&c.gen, cur); err != nil {
			return false, err
		}
		if time.Since(lastReap) >= checkInterval {
			lastReap = time.Now()
			c.reap(w.reg)
		}
	}
}

func takeToken(counts *atomic.Uint64) bool {
	for {
		v := counts.Load()
		if v>>32 == 0 {
			return false
		}
		if counts.CompareAndSwap(v, v-1<<32) {
			return true
		}
	}
}

// cancelWait withdraws a waiter registered in counts at generation g
// that gave up. It takes a token instead, and reports true, if one may be
// its own.
func cancelWait(counts *atomic.Uint64, gen *atomic.Uint32, g uint32) bool {
	for {
		v := counts.Load()
		waiting, tokens := uint32(v), uint32(v>>32)
		var next uint64
		var took bool
		switch {
		case tokens > 0 && (gen.Load() != g || waiting == 0):
			next, took = v-1<<32, true
		case waiting > 0:
			next = v - 1
		default:
			return false // counts were cleared by a reaper, or damaged
		}
		if counts.CompareAndSwap(v, next) {
			return took
		}
	}
}

// Signal wakes one waiter, if any. See Notify.
func (c *Cond) Signal() { c.Notify(1) }

// Broadcast wakes every waiter.
func (c *Cond) Broadcast() { c.Notify(math.MaxInt32) }

// Notify wakes up to n of the callers waiting now; with nobody waiting,
// or n ≤ 0, it does nothing (as Python's notify(n)).
func (c *Cond) Notify(n int) {
	if n <= 0 {
		return
	}
	if race.Enabled {
		race.Release(c)
	}
	if c.handOut(uint32(min(n, math.MaxInt32))) {
		c.gen.Add(1)
		if c.sleepers.Load() != 0 {
			// Every sleeper must look: only those registered before
			// this generation may take the tokens, and the kernel cannot
			// tell which they are.
			futex.Wake(&c.gen, futex.All)
		}
	}
}

// handOut turns up to n waiting counts into tokens, slot by slot from one
// that moves with the generation (so that no process is always served
// first), then the pool's. It reports whether the generation must move
// on: it handed out tokens, or it found tokens waiting for a move that a
// notifier killed half-way through a Notify never made.
func (c *Cond) handOut(n uint32) bool {
	bump := false
	start := int(c.gen.Load() % CondSlots)
	for i := 0; i <= CondSlots && n > 0; i++ {
		counts := &c.pool
		if i < CondSlots {
			slot := &c.slots[(start+i)%CondSlots]
			if slot.id.Load()&condReaping != 0 {
				continue // its waiters are gone; the reaper hands its tokens on
			}
			counts = &slot.counts
		}
		for {
			v := counts.Load()
			waiting, tokens := uint32(v), uint32(v>>32)
			if waiting == 0 {
				bump = bump || tokens != 0
				break
			}
			k := min(n, waiting)
			if counts.CompareAndSwap(v, uint64(tokens+k)<<32|uint64(waiting-k)) {
				n -= k
				bump = true
				break
			}
		}
	}
	return bump
}

// Waiting returns the number of callers waiting and not yet notified, in
// every process (including dead ones not yet noticed; see Owner death).
func (c *Cond) Waiting() int {
	n := int(uint32(c.pool.Load()))
	for i := range c.slots {
		n += int(uint32(c.slots[i].counts.Load()))
	}
	return n
}

// WaitFor waits until pred returns true, as Python's wait_for: it checks
// pred under m, waits, and checks again after each wake-up, until pred
// holds or ctx is done. It returns pred's last result, with the error
// that ended the wait if pred is still false (ctx.Err(), ...). A re-lock
// that took m from a dead holder is always reported, as ErrOwnerDead.
// The caller must hold m, and holds it again on return.
func (c *Cond) WaitFor(ctx context.Context, m *Mutex, pred func() bool) (bool, error) {
	if pred == nil {
		return false, invalidArg("Cond.WaitFor", "pred", "nil", "a condition to wait for")
	}
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
