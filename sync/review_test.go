package sync_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/layout"
	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
)

// Tests for failure paths: panics in actions, segments closed under
// waiters, notifiers and holders killed half-way.

func init() {
	testproc.Register("event-wait-report", func(args []string) error {
		e, err := xsync.OpenEvent(args[0])
		if err != nil {
			return err
		}
		ctx, cancel := timeoutCtx(testproc.Bound)
		defer cancel()
		if err := e.WaitContext(ctx); err != nil {
			return err
		}
		testproc.Say("returned")
		return nil
	})
	testproc.Register("barrier-attach-exit", func(args []string) error {
		// Opens the barrier's segment and exits without closing it.
		_, err := openShared[barShared](args[0])
		return err
	})
	testproc.Register("barrier-late", func(args []string) error {
		sh, err := openShared[barShared](args[0])
		if err != nil {
			return err
		}
		if err := testproc.Await("go"); err != nil {
			return err
		}
		_, err = sh.B.Wait()
		return err
	})
}

func TestBarrierActionPanicBreaks(t *testing.T) {
	var b xsync.Barrier
	require.NoError(t, b.Init(2, 0))
	other := make(chan error, 1)
	go func() { _, err := b.Wait(); other <- err }()
	eventually(t, "one party waiting", func() bool { return b.Waiting() == 1 })
	assert.PanicsWithValue(t, "boom", func() {
		b.WaitFunc(context.Background(), func() error { panic("boom") })
	})
	assert.ErrorIs(t, <-other, xsync.ErrBroken, "a panicking action breaks the barrier")
	assert.True(t, b.Broken())
	_, err := b.Wait()
	assert.ErrorIs(t, err, xsync.ErrBroken, "later waits fail instead of hanging")
}

func TestBarrierCloseUnderPartyBreaks(t *testing.T) {
	name := testproc.Name(t)
	a, err := xsync.CreateBarrier(name, 2, 0)
	require.NoError(t, err)
	other, err := xsync.OpenBarrier(name)
	require.NoError(t, err)
	defer other.Close()
	got := make(chan error, 1)
	go func() { _, err := a.Wait(); got <- err }()
	eventually(t, "party asleep", func() bool { return xsync.Asleep(other) })
	require.NoError(t, a.Close())
	assert.ErrorIs(t, <-got, xsync.ErrClosed)
	// The party that left must not count as arrived.
	_, err = other.Wait()
	assert.ErrorIs(t, err, xsync.ErrBroken)
}

func TestBarrierIgnoresProcessesGoneBeforehand(t *testing.T) {
	// A process that opened the segment and exited (without Close) before
	// the round began is not a party that died while others waited.
	name, sh := newBarrier(t, 2, 0)
	testproc.Start(t, "barrier-attach-exit", name).Wait()
	late := testproc.Start(t, "barrier-late", name)
	got := make(chan error, 1)
	go func() { _, err := sh.B.Wait(); got <- err }()
	eventually(t, "party asleep", func() bool { return xsync.Asleep(&sh.B) })
	// Give the sleeper time for at least two liveness checks (100ms
	// apart) before the other party arrives. Shorter would only make the
	// test weaker, never flaky.
	time.Sleep(250 * time.Millisecond)
	late.Send("go")
	late.Wait()
	require.NoError(t, <-got)
}

// twoCondHandles creates a named Cond and opens it a second time; the
// test closes the first, the second is closed when the test ends.
func twoCondHandles(t *testing.T) (c, other *xsync.NamedCond) {
	name := testproc.Name(t)
	c, err := xsync.CreateCond(name)
	require.NoError(t, err)
	other, err = xsync.OpenCond(name)
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	return c, other
}

func TestCondCloseUnderWaiter(t *testing.T) {
	c, other := twoCondHandles(t)

	// The mutex is in Go memory: the waiter holds it again on ErrClosed.
	var mu xsync.Mutex
	got := make(chan error, 1)
	mu.Lock()
	go func() { got <- xsync.CondOf(c).WaitContext(context.Background(), &mu) }()
	eventually(t, "waiter asleep", func() bool { return xsync.Asleep(xsync.CondOf(other)) })
	require.NoError(t, c.Close())
	assert.ErrorIs(t, <-got, xsync.ErrClosed)
	assert.True(t, mu.Locked(), "the mutex is held again")
	mu.Unlock()
	assert.Equal(t, 0, xsync.CondOf(other).Waiting(), "the closed waiter withdrew")
}

// A waiter whose segment is closed after it was notified hands the
// notification on: the other waiter is not left asleep.
func TestCondCloseHandsOnNotification(t *testing.T) {
	c, other := twoCondHandles(t)

	var mu xsync.Mutex // in Go memory, shared by both waiters
	wait := func(cond *xsync.Cond, got chan<- error) {
		mu.Lock()
		got <- cond.WaitContext(context.Background(), &mu)
		mu.Unlock()
	}
	gotA, gotB := make(chan error, 1), make(chan error, 1)
	go wait(xsync.CondOf(c), gotA)
	go wait(xsync.CondOf(other), gotB)
	eventually(t, "both waiters asleep", func() bool {
		return xsync.CondOf(other).Waiting() == 2 && xsync.Sleepers(xsync.CondOf(other)) == 2
	})
	mu.Lock()
	xsync.CondOf(other).Signal()
	mu.Unlock()
	require.NoError(t, c.Close())

	if errA := <-gotA; errA == nil {
		// A took the notification before its segment closed; B waits
		// on, as it should, until the next one.
		mu.Lock()
		xsync.CondOf(other).Broadcast()
		mu.Unlock()
	} else {
		require.ErrorIs(t, errA, xsync.ErrClosed)
	}
	select {
	case errB := <-gotB:
		require.NoError(t, errB)
	case <-time.After(testproc.Bound):
		t.Fatal("the notification was lost with the closed waiter")
	}
}

// A dead party's attach entry survives the reaping that a full attach
// table triggers when another mapping arrives: the party's death still
// breaks the barrier.
func TestBarrierDeadPartyNotReapedByAttach(t *testing.T) {
	name, sh := newBarrier(t, 2, 0)
	dying := testproc.Start(t, "barrier-wait-die", name)
	dying.Expect("attached")
	dying.Kill()
	dying.WaitKilled()

	// Fill the table with mappings of this process; one more mapping
	// then reaps, and must leave the dead party's entry alone.
	ty, err := shm.TypeOf[barShared]()
	require.NoError(t, err)
	for range layout.AttachSlots {
		seg, err := shm.Open(name, shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 1})
		require.NoError(t, err)
		defer seg.Close()
	}
	_, err = sh.B.Wait()
	assert.ErrorIs(t, err, xsync.ErrBroken, "the dead party broke the round")
}

// A Reset while the last party waits for the previous round to drain
// ends the round: its action does not run, and both parties get
// ErrBroken.
func TestBarrierResetWhileDraining(t *testing.T) {
	var b xsync.Barrier
	require.NoError(t, b.Init(2, 0))
	xsync.ForgeDrain(&b, 0, 1) // a party of round -1 still on its way out
	var ran atomic.Bool
	errs := make(chan error, 2)
	go func() { _, err := b.Wait(); errs <- err }()
	go func() {
		_, err := b.WaitFunc(context.Background(), func() error { ran.Store(true); return nil })
		errs <- err
	}()
	eventually(t, "both arrived, the last waiting for the drain", func() bool {
		return b.Waiting() == 2 && xsync.Sleepers(&b) == 2
	})
	b.Reset()
	for range 2 {
		assert.ErrorIs(t, <-errs, xsync.ErrBroken)
	}
	assert.False(t, ran.Load(), "the action of a reset round ran")
}

func TestCondNotifierDiedHalfway(t *testing.T) {
	var mu xsync.Mutex
	var c xsync.Cond
	got := make(chan error, 1)
	mu.Lock()
	go func() {
		mu.Lock()
		got <- c.Wait(&mu)
		mu.Unlock()
	}()
	mu.Unlock()
	eventually(t, "waiter registered", func() bool { return c.Waiting() == 1 })
	xsync.HalfNotify(&c, 1)
	// The next notification, even with nobody left waiting, releases it.
	mu.Lock()
	c.Broadcast()
	mu.Unlock()
	require.NoError(t, <-got)
}

func TestEventPulseReleasesWaiters(t *testing.T) {
	// Set then Clear at once: every process waiting at the Set returns.
	name := testproc.Name(t)
	e, err := xsync.CreateEvent(name)
	require.NoError(t, err)
	defer e.Close()
	var kids []*testproc.Child
	for range 2 {
		kids = append(kids, testproc.Start(t, "event-wait-report", name))
	}
	eventually(t, "both asleep", func() bool { return xsync.Sleepers(e) == 2 })
	e.Set()
	e.Clear()
	assert.False(t, e.IsSet())
	for _, k := range kids {
		k.Expect("returned")
		k.Wait()
	}
	ctx, cancel := timeoutCtx(20 * time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, e.WaitContext(ctx), context.DeadlineExceeded, "a wait after the pulse blocks")
}

func TestReentrantMutexTakeoverIsNotReentry(t *testing.T) {
	// A lock left by a dead process whose holding goroutine had our
	// goroutine's id: we do not hold it, and we cannot re-enter it.
	var r xsync.ReentrantMutex
	dead := uint64(owner.Make(0, 7)) // pid 0 names no process: dead
	xsync.ForgeHolder(&r, dead, xsync.Goid())
	assert.False(t, r.Held())
	assert.False(t, r.TryLock())
	ctx, cancel := timeoutCtx(testproc.Bound)
	defer cancel()
	require.ErrorIs(t, r.LockContext(ctx), xsync.ErrOwnerDead)
	assert.Equal(t, 1, r.Depth())
	r.Unlock()
	assert.False(t, r.Locked())
}
