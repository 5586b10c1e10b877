package sync

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/race"
	"github.com/xproc-go/xproc/internal/region"
)

// MaxParties is the largest number of parties a Barrier can have.
const MaxParties = 1<<16 - 1

// Barrier makes a fixed number of parties wait for each other, round after
// round: Python's multiprocessing.Barrier. Init sets the number of parties
// and an optional default timeout; it is 32 bytes with no pointers.
//
// Each Wait returns an arrival index, distinct within a round: 0 for the
// first to arrive, Parties()-1 for the last. An optional action runs in the
// last party to arrive, once per round, before anyone leaves. Callers
// beyond the number of parties form later rounds; a round is released only
// once every party of the previous one has left its Wait, so each learns
// its own round's outcome (Python calls this draining).
//
// The barrier breaks, and every waiting and later Wait returns ErrBroken
// until Reset, when: Abort is called; a Wait times out or its context
// ends (Python's rule: one party giving up must not leave the others
// stranded); the action fails or panics; a waiting party's segment is
// closed under it; or a known party dies while others wait.
//
// # Owner death
//
// A process becomes a known party of the barriers in a segment when it
// opens a barrier by name (OpenBarrier, CreateBarrier), calls Join, or
// first waits on one; the segment's attach table records it. A waiting
// party checks every 100ms whether a known party has died (killed,
// crashed, or exited without closing the segment) and if so breaks the
// barrier: survivors get ErrBroken instead of waiting for a party that
// will never come. Reset forgets the dead, so that replacements can take
// their place. Processes beyond the attach table's 448 entries are not
// tracked. A Barrier in ordinary Go memory (not in a segment) has no such
// check. Do not Close a barrier's handle from inside its action: Close
// waits for the action's Wait.
type Barrier struct {
	// state: low 32 bits, the generation (the futex word), bumped when a
	// round is released, reset or broken. High 32 bits: arrivals in this
	// round (bits 0..15), the low 15 bits of the generation that the last
	// release started (bits 16..30; a waiter of generation g learns that
	// its round passed, rather than broke, from finding g+1 there), and the
	// broken flag (bit 31).
	state    atomic.Uint64
	parties  atomic.Uint32
	sleepers atomic.Uint32
	timeout  atomic.Int64 // default timeout in nanoseconds; 0: none
	// drain counts the parties of a released round that have not yet
	// left Wait: bits 16..31 hold the low 16 bits of the generation whose
	// release must wait for them, bits 0..15 the count. The last party to
	// arrive in a round waits until the previous round's parties have all
	// left before it releases, so that the released field cannot move on
	// before each of them has read its own round's outcome. Without that,
	// with more callers than parties, a party slow to wake would read a
	// later round's release and report its own round broken. (Python's
	// Barrier "drains" for the same reason.) A futex word.
	drain atomic.Uint32
	_     uint32
}

const (
	barCountMask = 1<<16 - 1
	barRelShift  = 16
	barRelMask   = 1<<15 - 1
	barBroken    = 1 << 31
)

type barState uint64

func (s barState) gen() uint32      { return uint32(s) }
func (s barState) count() uint32    { return uint32(s>>32) & barCountMask }
func (s barState) released() uint32 { return uint32(s>>32) >> barRelShift & barRelMask }

// passed reports whether round g ended by release.
func (s barState) passed(g uint32) bool { return s.released() == (g+1)&barRelMask }
func (s barState) broken() bool         { return uint32(s>>32)&barBroken != 0 }

func makeBarState(gen, count, released uint32, broken bool) uint64 {
	hi := count&barCountMask | (released&barRelMask)<<barRelShift
	if broken {
		hi |= barBroken
	}
	return uint64(hi)<<32 | uint64(gen)
}

// drainFor returns the drain word for the release of generation gen with
// left parties of the round before it still to leave.
func drainFor(gen, left uint32) uint32 { return gen<<16 | left&barCountMask }

// drained reports whether the drain word d holds up no release of
// generation gen.
func drained(d, gen uint32) bool { return d>>16 != gen&barCountMask || d&barCountMask == 0 }

// Init prepares b for parties parties (1 to MaxParties) with a default
// timeout for Wait (0 for none). Arguments out of range are refused with
// ErrInvalid, changing nothing.
//
// Call it before b is shared: Wait on a Barrier that was never
// initialised fails with ErrInvalid. For a Barrier in a struct that other
// processes open by name, call it in the function given to
// value.CreateFunc, which runs before the name exists; CreateBarrier does
// the same for a Barrier of its own.
func (b *Barrier) Init(parties int, timeout time.Duration) error {
	if err := checkBarrier("Barrier.Init", parties, timeout); err != nil {
		return err
	}
	b.parties.Store(uint32(parties))
	b.timeout.Store(int64(timeout))
	b.state.Store(0)
	b.drain.Store(0)
	return nil
}

func checkBarrier(call string, parties int, timeout time.Duration) error {
	if parties < 1 || parties > MaxParties {
		return invalidArg(call, "parties", parties, fmt.Sprintf("1 to %d", MaxParties))
	}
	if timeout < 0 {
		return invalidArg(call, "timeout", timeout, "0 for none, or more")
	}
	return nil
}

// Parties returns the number of parties.
func (b *Barrier) Parties() int { return int(b.parties.Load()) }

// Waiting returns the number of parties waiting in the current round.
func (b *Barrier) Waiting() int {
	s := barState(b.state.Load())
	if s.broken() {
		return 0
	}
	return int(min(s.count(), b.parties.Load()))
}

// Broken reports whether the barrier is broken.
func (b *Barrier) Broken() bool { return barState(b.state.Load()).broken() }

// Wait waits for all parties, using the default timeout if there is one.
// See WaitFunc.
func (b *Barrier) Wait() (int, error) {
	return b.WaitFunc(context.Background(), nil)
}

// WaitContext waits for all parties or until ctx is done. See WaitFunc.
func (b *Barrier) WaitContext(ctx context.Context) (int, error) {
	return b.WaitFunc(ctx, nil)
}

// WaitFunc waits until all parties have arrived and returns this party's
// arrival index. If this party arrives last and action is not nil, action
// runs before any party is released; if it fails (or panics), the barrier
// breaks and every party gets ErrBroken (the last one together with the
// action's error).
//
// If ctx ends or the default timeout passes first, the barrier breaks:
// the error wraps ErrBroken and ctx.Err() (or ErrTimeout). A caller that
// had not yet arrived (the round was full, its last party releasing it)
// leaves without breaking anything and gets ctx.Err() (or ErrTimeout).
// If the barrier's segment is closed under a waiting party, the round
// breaks for the others and the party gets ErrClosed.
func (b *Barrier) WaitFunc(ctx context.Context, action func() error) (int, error) {
	parties := b.parties.Load()
	if parties == 0 || parties > MaxParties {
		return -1, fmt.Errorf("xsync: %w: Barrier.Wait: barrier not initialised (call Init first)", ErrInvalid)
	}
	if d := time.Duration(b.timeout.Load()); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, ErrTimeout)
		defer cancel()
	}
	w, err := startWait(ctx, b)
	if err != nil {
		return -1, err
	}
	defer w.done()
	w.reg.MarkParty()
	for {
		s := barState(b.state.Load())
		switch {
		case s.broken():
			return -1, brokenErr(nil)
		case s.count() >= parties:
			// The last party of this round is releasing it; this caller
			// belongs to the next round.
			if err := b.waitGen(w, s.gen(), false); err != nil {
				return -1, err
			}
			continue
		}
		idx := s.count()
		if race.Enabled {
			race.Release(b)
		}
		if !b.state.CompareAndSwap(uint64(s), makeBarState(s.gen(), idx+1, s.released(), false)) {
			continue
		}
		if idx+1 == parties {
			err = b.release(w, s.gen(), parties, action)
		} else {
			err = b.waitGen(w, s.gen(), true)
			b.leave(s.gen())
		}
		if race.Enabled {
			race.Acquire(b)
		}
		return int(idx), err
	}
}

// release ends round g: once the parties of round g-1 have left, it runs
// the action, then starts round g+1.
func (b *Barrier) release(w waiter, g, parties uint32, action func() error) error {
	if err := b.waitLeft(w, g); err != nil {
		return err
	}
	if action != nil {
		if err := b.runAction(g, action); err != nil {
			return brokenErr(fmt.Errorf("action failed: %w", err))
		}
	}
	var d uint32
	if parties > 1 {
		d = drainFor(g+1, parties-1)
		if err := b.setDrain(g, d); err != nil {
			return err
		}
	}
	for {
		s := barState(b.state.Load())
		if s.gen() != g {
			// Broken while the action ran: nobody will leave a
			// released round g, so take the drain back, waking a last
			// party that may have begun to wait for it.
			if b.drain.CompareAndSwap(d, 0) {
				b.wake()
			}
			return brokenErr(nil)
		}
		if b.state.CompareAndSwap(uint64(s), makeBarState(g+1, 0, g+1, false)) {
			break
		}
	}
	b.wake()
	return nil
}

// stillOpen returns ErrBroken if round g has ended (broken, aborted or
// reset) while its last party was on its way to release it.
func (b *Barrier) stillOpen(g uint32) error {
	if barState(b.state.Load()).gen() != g {
		return brokenErr(nil)
	}
	return nil
}

// setDrain installs the drain word d for the release of round g, unless
// round g has ended meanwhile: then a later round may have installed its
// own, which must not be overwritten.
func (b *Barrier) setDrain(g, d uint32) error {
	for {
		cur := b.drain.Load()
		if err := b.stillOpen(g); err != nil {
			return err
		}
		// A drain installed after this check belongs to a later round,
		// which needs g to have ended first: the CAS then fails and the
		// check above catches it.
		if b.drain.CompareAndSwap(cur, d) {
			return nil
		}
	}
}

// dropDrain clears a drain that holds up the release of generation gen,
// which has just ended: nothing waits for it any more, and changing the
// word lets a last party asleep on it notice the end (see wake).
func (b *Barrier) dropDrain(gen uint32) {
	if d := b.drain.Load(); !drained(d, gen) {
		b.drain.CompareAndSwap(d, 0)
	}
}

// leave is called once by each party of round g but its last, whatever
// waitGen returned: if round g was released, it counts this party out,
// and the last one out lets round g+1 be released.
func (b *Barrier) leave(g uint32) {
	if !barState(b.state.Load()).passed(g) {
		return // broken or reset: nothing waits for us
	}
	for {
		d := b.drain.Load()
		if drained(d, g+1) {
			return
		}
		if b.drain.CompareAndSwap(d, d-1) {
			if d&barCountMask == 1 && b.sleepers.Load() != 0 {
				futex.Wake(&b.drain, futex.All)
			}
			return
		}
	}
}

// waitLeft waits, as the last party to arrive in round g, until every
// party of round g-1 has left. Only with more callers than parties may
// one still be on its way out. Like waitGen it breaks round g if ctx ends
// or a party has died (it may be one that never left).
func (b *Barrier) waitLeft(w waiter, g uint32) error {
	left := func() bool { return drained(b.drain.Load(), g) }
	if left() || spinUntil(left) {
		return b.stillOpen(g)
	}
	b.sleepers.Add(1)
	defer b.sleepers.Add(^uint32(0))
	lastCheck := time.Now()
	for {
		d := b.drain.Load()
		if drained(d, g) {
			return b.stillOpen(g)
		}
		if err := b.stillOpen(g); err != nil {
			return err
		}
		err := w.sleep(&b.drain, d)
		if err == nil {
			err = b.deadParty(w, &lastCheck)
		}
		if err != nil {
			return b.abandon(w, g, err)
		}
	}
}

// deadParty checks, at most every checkInterval (lastCheck holds the time
// of the last check), whether a known party of b has died, and returns an
// error naming it if so.
func (b *Barrier) deadParty(w waiter, lastCheck *time.Time) error {
	if time.Since(*lastCheck) < checkInterval {
		return nil
	}
	*lastCheck = time.Now()
	if pid, dead := w.reg.DeadParty(); dead {
		return fmt.Errorf("process %d died", pid.Pid())
	}
	return nil
}

// abandon is how a party of round g stops waiting because of cause (its
// context ended, its segment is closing, a party died): it breaks the
// round, so that the others are not left waiting for it, and returns the
// error for its caller, or nil if the round was released before it could
// break it.
func (b *Barrier) abandon(w waiter, g uint32, cause error) error {
	b.breakGen(g)
	switch {
	case cause == ErrClosed:
		return cause // the mapping is still ours until the caller's done
	case barState(b.state.Load()).passed(g):
		return nil
	case cause == w.ctx.Err() && context.Cause(w.ctx) == ErrTimeout:
		return brokenErr(ErrTimeout)
	}
	return brokenErr(cause)
}

// runAction runs the last party's action for round g. If it fails or
// panics the round breaks, so the other parties are not left waiting; a
// panic then carries on up the caller's stack.
func (b *Barrier) runAction(g uint32, action func() error) error {
	defer func() {
		if r := recover(); r != nil {
			b.breakGen(g)
			panic(r)
		}
	}()
	err := action()
	if err != nil {
		b.breakGen(g)
	}
	return err
}

// waitGen waits until the generation moves on from g. If arrived, the
// caller is a party of round g: it returns nil if the round was released
// and ErrBroken if it was broken or reset. It breaks the round itself
// when ctx ends or a process attached to the segment has died.
//
// The released field keeps 15 bits of the generation. Round g+1 is
// released only once every party of a released round g has left, so a
// later release cannot overwrite it first, with one exception: a Reset
// forgets the parties still on their way out (it counts as breaking
// their round), and if later rounds are then released before such a
// party wakes, it reports ErrBroken. A party of a broken round would
// mistake it for a released one only if exactly a multiple of 32768
// rounds were released while it slept.
func (b *Barrier) waitGen(w waiter, g uint32, arrived bool) error {
	outcome := func(s barState) error {
		if !arrived || s.passed(g) {
			return nil
		}
		return brokenErr(nil)
	}
	if spinUntil(func() bool { return barState(b.state.Load()).gen() != g }) {
		return outcome(barState(b.state.Load()))
	}
	b.sleepers.Add(1)
	defer b.sleepers.Add(^uint32(0))
	word := futex.Low32(&b.state)
	lastCheck := time.Now()
	for {
		if s := barState(b.state.Load()); s.gen() != g {
			return outcome(s)
		}
		err := w.sleep(word, g)
		switch {
		case err != nil && !arrived:
			// Not yet a party of round g: leave without breaking it.
			if err != ErrClosed && context.Cause(w.ctx) == ErrTimeout {
				return fmt.Errorf("xsync: Barrier.Wait: %w", ErrTimeout)
			}
			return err
		case err != nil:
			return b.abandon(w, g, err)
		}
		if err := b.deadParty(w, &lastCheck); err != nil {
			// A dead party breaks the round even for a caller not yet
			// in it: that caller would wait for the party too.
			if err := b.abandon(w, g, err); err != nil || arrived {
				return err
			}
		}
	}
}

// breakGen breaks round g, unless it has already ended.
func (b *Barrier) breakGen(g uint32) {
	for {
		s := barState(b.state.Load())
		if s.gen() != g {
			return
		}
		if b.state.CompareAndSwap(uint64(s), makeBarState(g+1, 0, s.released(), true)) {
			b.dropDrain(g)
			b.wake()
			return
		}
	}
}

// Join declares the calling process a party of b before its first Wait,
// so that its death before then breaks waiting rounds too. Waiting and
// opening a barrier by name do it implicitly.
func (b *Barrier) Join() {
	if reg := region.Lookup(b); reg.Enter() {
		reg.MarkParty()
		reg.Leave()
	}
}

// Abort breaks the barrier: waiting and future Waits fail with ErrBroken
// until Reset.
func (b *Barrier) Abort() {
	for {
		s := barState(b.state.Load())
		if b.state.CompareAndSwap(uint64(s), makeBarState(s.gen()+1, 0, s.released(), true)) {
			b.dropDrain(s.gen())
			b.wake()
			return
		}
	}
}

// Reset returns the barrier to its initial, unbroken state. Parties
// waiting get ErrBroken. So may parties of a round released just before
// that have not yet returned from Wait, if later rounds are released
// before they do: Reset does not wait for them (unlike a release).
// Processes that died while attached to the barrier's segment are
// forgotten, so that replacements can take their place.
func (b *Barrier) Reset() {
	var gen uint32
	for {
		s := barState(b.state.Load())
		gen = s.gen() + 1
		if b.state.CompareAndSwap(uint64(s), makeBarState(gen, 0, s.released(), false)) {
			break
		}
	}
	// Forget a drain left by parties that died before leaving, unless a
	// release since the reset has set a new one.
	if d := b.drain.Load(); drained(d, gen+1) {
		b.drain.CompareAndSwap(d, 0)
	}
	b.wake()
	if reg := region.Lookup(b); reg.Enter() {
		reg.Reap()
		reg.Leave()
	}
}

// wake wakes the sleepers on the generation, and a last party waiting for
// the previous round to drain: a new generation concerns both.
func (b *Barrier) wake() {
	if b.sleepers.Load() != 0 {
		futex.Wake(futex.Low32(&b.state), futex.All)
		futex.Wake(&b.drain, futex.All)
	}
}

func brokenErr(cause error) error {
	if cause == nil {
		return fmt.Errorf("xsync: Barrier.Wait: %w", ErrBroken)
	}
	return fmt.Errorf("xsync: Barrier.Wait: %w: %w", ErrBroken, cause)
}
