package sync_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/testproc"
	xsync "github.com/xproc-go/xproc/sync"
)

// condShared follows CPython's test_notify: waiters release Sleeping,
// holding the lock, just before waiting, and Woken once woken.
type condShared struct {
	Mu       xsync.Mutex
	C        xsync.Cond
	Sleeping xsync.Semaphore
	Woken    xsync.Semaphore
	State    int64 // guarded by Mu
	Returned atomic.Int64
}

func init() {
	testproc.Register("cond-wait", func(args []string) error {
		sh, err := openShared[condShared](args[0])
		if err != nil {
			return err
		}
		ctx, cancel := timeoutCtx(testproc.Bound)
		defer cancel()
		sh.Mu.Lock()
		if err := sh.Sleeping.Release(); err != nil {
			return err
		}
		err = sh.C.WaitContext(ctx, &sh.Mu)
		sh.Returned.Add(1)
		sh.Mu.Unlock()
		if err != nil {
			return err
		}
		return sh.Woken.Release()
	})
	testproc.Register("cond-set-state", func(args []string) error {
		sh, err := openShared[condShared](args[0])
		if err != nil {
			return err
		}
		for i := range 5 {
			if err := testproc.Await("step"); err != nil {
				return err
			}
			sh.Mu.Lock()
			sh.State = int64(i + 1)
			sh.C.Signal()
			sh.Mu.Unlock()
		}
		return nil
	})
}

// startWaiters starts n waiter processes and returns once all of them are
// registered with the condition: each released Sleeping while holding Mu,
// so once the parent has n units and the lock, all n are inside Wait.
func startWaiters(t *testing.T, name string, sh *condShared, n int) []*testproc.Child {
	var kids []*testproc.Child
	for range n {
		kids = append(kids, testproc.Start(t, "cond-wait", name))
	}
	ctx, cancel := timeoutCtx(testproc.Bound)
	defer cancel()
	for range n {
		require.NoError(t, sh.Sleeping.AcquireContext(ctx))
	}
	sh.Mu.Lock()
	//lint:ignore SA2001 taking the lock proves the waiters are inside Wait
	sh.Mu.Unlock()
	return kids
}

func acquireN(t *testing.T, s *xsync.Semaphore, n int) {
	t.Helper()
	ctx, cancel := timeoutCtx(testproc.Bound)
	defer cancel()
	for range n {
		require.NoError(t, s.AcquireContext(ctx))
	}
}

func TestCondNotify(t *testing.T) {
	name, sh := createShared[condShared](t)
	kids := startWaiters(t, name, sh, 3)
	assert.Equal(t, 3, sh.C.Waiting())

	// notify wakes exactly one waiter: one token is issued, so at most one
	// Wait can return; wait for it to report.
	sh.Mu.Lock()
	sh.C.Signal()
	sh.Mu.Unlock()
	assert.Equal(t, 2, sh.C.Waiting())
	acquireN(t, &sh.Woken, 1)
	assert.Equal(t, int64(1), sh.Returned.Load())
	assert.Equal(t, 2, sh.C.Waiting())

	// notify(n) wakes n.
	more := startWaiters(t, name, sh, 2) // 4 waiting
	assert.Equal(t, 4, sh.C.Waiting())
	sh.Mu.Lock()
	sh.C.Notify(3)
	sh.Mu.Unlock()
	assert.Equal(t, 1, sh.C.Waiting())
	acquireN(t, &sh.Woken, 3)
	assert.Equal(t, int64(4), sh.Returned.Load())

	// notify_all wakes the rest.
	sh.Mu.Lock()
	sh.C.Broadcast()
	sh.Mu.Unlock()
	acquireN(t, &sh.Woken, 1)
	for _, k := range append(kids, more...) {
		k.Wait()
	}
	assert.Equal(t, int64(5), sh.Returned.Load())
	assert.Equal(t, 0, sh.C.Waiting())
}

// A waiter killed while waiting stays counted, but notifications still
// reach the live waiters: a token is never reserved for one waiter.
func TestCondWaiterDeath(t *testing.T) {
	name, sh := createShared[condShared](t)
	dead := startWaiters(t, name, sh, 1)[0]
	dead.Kill()
	dead.WaitKilled()
	assert.Equal(t, 1, sh.C.Waiting(), "the dead waiter is still counted")

	live := startWaiters(t, name, sh, 2)
	assert.Equal(t, 3, sh.C.Waiting())
	sh.Mu.Lock()
	sh.C.Signal()
	sh.Mu.Unlock()
	acquireN(t, &sh.Woken, 1) // a live waiter took the wake-up

	sh.Mu.Lock()
	sh.C.Broadcast()
	sh.Mu.Unlock()
	acquireN(t, &sh.Woken, 1)
	for _, k := range live {
		k.Wait()
	}
	assert.Equal(t, int64(2), sh.Returned.Load())
}

func TestCondNotifyWithoutWaiters(t *testing.T) {
	var mu xsync.Mutex
	var c xsync.Cond
	// Notifications with nobody waiting are not saved for later waiters.
	c.Signal()
	c.Notify(5)
	c.Broadcast()
	mu.Lock()
	const d = 100 * time.Millisecond
	start := time.Now()
	ctx, cancel := timeoutCtx(d)
	defer cancel()
	assert.ErrorIs(t, c.WaitContext(ctx, &mu), context.DeadlineExceeded, "wait with timeout returns false")
	assert.GreaterOrEqual(t, time.Since(start), d)
	assert.True(t, mu.Locked(), "the lock is held again after a timed-out wait")
	assert.Equal(t, 0, c.Waiting())
	mu.Unlock()
}

func TestCondWaitRequiresLock(t *testing.T) {
	var mu xsync.Mutex
	var c xsync.Cond
	assert.ErrorIs(t, c.Wait(&mu), xsync.ErrNotOwner)
}

func TestCondWaitFor(t *testing.T) {
	name, sh := createShared[condShared](t)
	c := testproc.Start(t, "cond-set-state", name)
	ctx, cancel := timeoutCtx(testproc.Bound)
	defer cancel()
	sh.Mu.Lock()
	// The predicate becomes true when another process updates the state
	// under notify.
	steps := 0
	ok, err := sh.C.WaitFor(ctx, &sh.Mu, func() bool {
		if sh.State == 5 {
			return true
		}
		if int(sh.State) == steps {
			steps++
			c.Send("step")
		}
		return false
	})
	require.NoError(t, err)
	assert.True(t, ok)
	sh.Mu.Unlock()
	c.Wait()

	// A predicate that never holds returns false after about the timeout.
	sh.Mu.Lock()
	const d = 100 * time.Millisecond
	start := time.Now()
	ctx, cancel = timeoutCtx(d)
	defer cancel()
	ok, err = sh.C.WaitFor(ctx, &sh.Mu, func() bool { return sh.State == 6 })
	assert.False(t, ok)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, time.Since(start), d)
	sh.Mu.Unlock()
}

func TestNamedCond(t *testing.T) {
	name := testproc.Name(t)
	c, err := xsync.CreateCond(name)
	require.NoError(t, err)
	defer c.Close()
	o, err := xsync.OpenCond(name)
	require.NoError(t, err)
	defer o.Close()
	done := make(chan error, 1)
	c.Lock()
	go func() {
		o.Lock()
		o.Signal()
		o.Unlock()
		done <- nil
	}()
	require.NoError(t, c.Wait())
	c.Unlock()
	<-done
}

// TestCondDeadWaiterOneSpuriousWakeUp: after a waiter process is killed
// inside Wait, notifications keep their count. The dead waiter's
// registration once caused every later Signal that found live waiters
// to release two of them; now its death costs at most one spurious
// wake-up in total, however many cycles follow.
//
// A return from Wait is spurious when no notification was issued for it:
// the test issues "permits" for the live waiters each notification can
// release (never for the dead one) and counts returns beyond them. Each
// cycle has three live waiters and wakes one (Signal), two (Notify(2))
// or all (Broadcast).
func TestCondDeadWaiterOneSpuriousWakeUp(t *testing.T) {
	for _, op := range []string{"Signal", "Notify", "Broadcast"} {
		t.Run(op, func(t *testing.T) {
			name, sh := createShared[condShared](t)
			dead := startWaiters(t, name, sh, 1)[0]
			dead.Kill()
			dead.WaitKilled()

			var permits, spurious, started, returned int // guarded by sh.Mu
			const waiters = 3
			done := make(chan error, waiters)
			wait := func() {
				sh.Mu.Lock()
				if err := sh.Sleeping.Release(); err != nil {
					done <- err
					return
				}
				ctx, cancel := timeoutCtx(testproc.Bound)
				defer cancel()
				err := sh.C.WaitContext(ctx, &sh.Mu)
				returned++
				if permits == 0 {
					spurious++
				} else {
					permits--
				}
				sh.Mu.Unlock()
				done <- err
			}
			const cycles = 20
			for range cycles {
				// A notification while no live process waits: by
				// Python's rule it is lost. The dead waiter cannot use
				// it, and no later waiter may.
				sh.Mu.Lock()
				sh.C.Signal()
				sh.Mu.Unlock()

				for range waiters {
					go wait()
				}
				acquireN(t, &sh.Sleeping, waiters)
				sh.Mu.Lock()
				started += waiters
				var woken int
				switch op {
				case "Signal":
					woken = 1
					sh.C.Signal()
				case "Notify":
					woken = 2
					sh.C.Notify(2)
				case "Broadcast":
					woken = started - returned
					sh.C.Broadcast()
				}
				permits += woken
				sh.Mu.Unlock()
				for range woken {
					require.NoError(t, <-done)
				}

				// Release whoever still waits.
				sh.Mu.Lock()
				permits += started - returned
				sh.C.Broadcast()
				sh.Mu.Unlock()
				for range waiters - woken {
					require.NoError(t, <-done)
				}
			}
			sh.Mu.Lock()
			defer sh.Mu.Unlock()
			assert.Equal(t, waiters*cycles, returned)
			assert.LessOrEqual(t, spurious, 1, "spurious wake-ups in %d cycles", cycles)
		})
	}
}

// TestCondDeadWaiterNotificationHandedOn: a notification handed to a
// waiter that then died is passed on to a live waiter once a sleeping
// waiter notices the death, and the dead waiter stops being counted.
func TestCondDeadWaiterNotificationHandedOn(t *testing.T) {
	name, sh := createShared[condShared](t)
	dead := startWaiters(t, name, sh, 1)[0]
	// Hand the dead-to-be waiter a token it cannot take yet (the
	// generation has not moved), then kill it.
	xsync.HalfNotify(&sh.C, 1)
	dead.Kill()
	dead.WaitKilled()
	require.Equal(t, 0, sh.C.Waiting())

	live := startWaiters(t, name, sh, 1)[0]
	// Nobody notifies again: only the hand-on can release it.
	acquireN(t, &sh.Woken, 1)
	live.Wait()
	assert.Equal(t, int64(1), sh.Returned.Load())
	assert.Equal(t, 0, sh.C.Waiting())
}

// TestCondDeadWaiterReaped: a waiter that died is no longer counted once
// a live waiter has slept long enough to check.
func TestCondDeadWaiterReaped(t *testing.T) {
	name, sh := createShared[condShared](t)
	dead := startWaiters(t, name, sh, 1)[0]
	dead.Kill()
	dead.WaitKilled()
	require.Equal(t, 1, sh.C.Waiting())

	live := startWaiters(t, name, sh, 1)[0]
	require.Equal(t, 2, sh.C.Waiting())
	// Nobody notifies: the count can fall only by the dead one's.
	eventually(t, "the dead waiter's slot cleared", func() bool { return sh.C.Waiting() == 1 })
	sh.Mu.Lock()
	sh.C.Signal()
	sh.Mu.Unlock()
	acquireN(t, &sh.Woken, 1)
	live.Wait()
	assert.Equal(t, 0, sh.C.Waiting())
}

func init() {
	// cond-wait-named NAME MS: wait on the named cond for MS ms; say
	// "waiting" once registered, then "notified" or "timeout".
	testproc.Register("cond-wait-named", func(args []string) error {
		c, err := xsync.OpenCond(args[0])
		if err != nil {
			return err
		}
		ms, _ := strconv.Atoi(args[1])
		ctx, cancel := timeoutCtx(time.Duration(ms) * time.Millisecond)
		defer cancel()
		c.Lock()
		testproc.Say("waiting")
		err = c.WaitContext(ctx)
		c.Unlock()
		switch {
		case err == nil:
			testproc.Say("notified")
		case errors.Is(err, context.DeadlineExceeded):
			testproc.Say("timeout")
		default:
			return err
		}
		return testproc.Await("exit")
	})
}

// TestCondReaperKilled: the slot of a dead waiter D, left as it was or
// as a reaper killed half-way through clearing it leaves it. A live
// waiter L in another process is waiting when Signal is called, so it is
// released (handed the notification directly, or once D's slot is
// reaped), and D's slot is freed: a dead reaper's mark is taken over.
func TestCondReaperKilled(t *testing.T) {
	for _, reaperKilled := range []bool{false, true} {
		t.Run(fmt.Sprintf("reaperKilled=%v", reaperKilled), func(t *testing.T) {
			name := testproc.Name(t)
			nc, err := xsync.CreateCond(name)
			require.NoError(t, err)
			defer nc.Close()
			require.Zero(t, xsync.CondGen(xsync.CondOf(nc))%xsync.CondSlots, "Signal starts at slot 0")

			d := testproc.Start(t, "exec-idle")
			d.Expect("idle")
			start, err := owner.StartTime(d.Pid())
			require.NoError(t, err)
			dead := uint64(owner.Make(d.Pid(), start))
			d.Kill()
			d.WaitKilled()
			if reaperKilled {
				dead |= 1 << 31 // marked by a reaper that died: D itself
			}
			xsync.ForgeCondSlot(xsync.CondOf(nc), 0, dead, 1) // D waiting

			bound := strconv.Itoa(int(testproc.Bound / time.Millisecond))
			l := testproc.Start(t, "cond-wait-named", name, bound)
			l.Expect("waiting")
			eventually(t, "L registered", func() bool { return nc.Waiting() == 2 })
			nc.Lock()
			nc.Signal()
			nc.Unlock()
			l.Expect("notified")
			l.Send("exit")
			l.Wait()
			// A waiter that sleeps long enough reaps D's slot.
			l2 := testproc.Start(t, "cond-wait-named", name, bound)
			l2.Expect("waiting")
			eventually(t, "D's slot freed, L2 waiting", func() bool {
				id := xsync.CondSlotID(xsync.CondOf(nc), 0)
				return id != dead && id != dead|1<<31 && nc.Waiting() == 1
			})
			nc.Lock()
			nc.Signal()
			nc.Unlock()
			l2.Expect("notified")
			l2.Send("exit")
			l2.Wait()
		})
	}
}
