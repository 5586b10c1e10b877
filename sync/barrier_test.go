package sync_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
)

const (
	barParties   = 5
	barMaxRounds = 1000
)

type barShared struct {
	B        xsync.Barrier
	Actions  atomic.Int64
	Indexes  [barMaxRounds]atomic.Uint32 // bit i set when index i was returned
	Zeros    [barMaxRounds]atomic.Int32
	Mu       xsync.Mutex
	LogLen   int64 // guarded by Mu
	Log      [barParties * barMaxRounds]int32
	Broken   atomic.Int32
	Released xsync.Event
}

// barrierRounds is a party's loop: wait rounds times, checking each time
// that the action ran exactly once before anyone left, and logging the
// round to the shared log.
func barrierRounds(sh *barShared, rounds int) error {
	for r := range rounds {
		idx, err := sh.B.WaitFunc(context.Background(), func() error {
			sh.Actions.Add(1)
			return nil
		})
		if err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		if got := sh.Actions.Load(); got != int64(r+1) {
			return fmt.Errorf("round %d: action ran %d times before release", r, got)
		}
		sh.Indexes[r].Or(1 << idx)
		if idx == 0 {
			sh.Zeros[r].Add(1)
		}
		sh.Mu.Lock()
		sh.Log[sh.LogLen] = int32(r)
		sh.LogLen++
		sh.Mu.Unlock()
	}
	return nil
}

func init() {
	testproc.Register("barrier-rounds", func(args []string) error {
		sh, err := openShared[barShared](args[0])
		if err != nil {
			return err
		}
		return barrierRounds(sh, testproc.Atoi(args[1]))
	})
	// barrier-expect-broken waits once and requires ErrBroken; with
	// "then-pass" it then waits again for a good round.
	testproc.Register("barrier-expect-broken", func(args []string) error {
		sh, err := openShared[barShared](args[0])
		if err != nil {
			return err
		}
		if _, err := sh.B.Wait(); !errors.Is(err, xsync.ErrBroken) {
			return fmt.Errorf("first wait: %v, want ErrBroken", err)
		}
		sh.Broken.Add(1)
		if len(args) > 1 && args[1] == "then-pass" {
			if err := testproc.Await("again"); err != nil {
				return err
			}
			if _, err := sh.B.Wait(); err != nil {
				return fmt.Errorf("wait after reset: %w", err)
			}
		}
		return nil
	})
	testproc.Register("barrier-oversubscribed", func(args []string) error {
		ty, err := shm.TypeOf[barShared]()
		if err != nil {
			return err
		}
		// Closed before exit: a party that exits without closing counts
		// as dead, and the others would (rightly) break the barrier.
		seg, err := shm.Open(args[0], shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 1})
		if err != nil {
			return err
		}
		defer seg.Close()
		sh, err := shm.View[barShared](seg, 0)
		if err != nil {
			return err
		}
		target, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return err
		}
		// Actions counts passes; Broken says the count is complete.
		return oversubscribed(&sh.B, &sh.Actions, &sh.Broken, target)
	})
	testproc.Register("barrier-wait-die", func(args []string) error {
		sh, err := openShared[barShared](args[0])
		if err != nil {
			return err
		}
		sh.B.Join() // a party, busy before its first Wait
		testproc.Say("attached")
		return testproc.Await("never")
	})
}

func newBarrier(t *testing.T, parties int, timeout time.Duration) (string, *barShared) {
	name, sh := createShared[barShared](t)
	require.NoError(t, sh.B.Init(parties, timeout))
	return name, sh
}

func TestBarrierRounds(t *testing.T) {
	for _, rounds := range []int{1, 10, barMaxRounds} {
		t.Run(strconv.Itoa(rounds), func(t *testing.T) {
			name, sh := newBarrier(t, barParties, 0)
			var kids []*testproc.Child
			for range barParties - 1 {
				kids = append(kids, testproc.Start(t, "barrier-rounds", name, strconv.Itoa(rounds)))
			}
			require.NoError(t, barrierRounds(sh, rounds))
			for _, k := range kids {
				k.Wait()
			}
			assert.Equal(t, int64(rounds), sh.Actions.Load(), "one action per round")
			for r := range rounds {
				require.Equal(t, uint32(1<<barParties-1), sh.Indexes[r].Load(), "round %d: indexes 0..N-1, each once", r)
				require.Equal(t, int32(1), sh.Zeros[r].Load(), "round %d: exactly one index 0", r)
			}
			// Every round's messages arrive before any of the next round's.
			require.Equal(t, int64(barParties*rounds), sh.LogLen)
			for i := 1; i < int(sh.LogLen); i++ {
				require.LessOrEqual(t, sh.Log[i-1], sh.Log[i], "log entry %d", i)
			}
			assert.False(t, sh.B.Broken())
		})
	}
}

func TestBarrierOneParty(t *testing.T) {
	var b xsync.Barrier
	require.NoError(t, b.Init(1, 0))
	for range 3 {
		idx, err := b.Wait()
		require.NoError(t, err)
		assert.Equal(t, 0, idx)
	}
}

func TestBarrierInvalid(t *testing.T) {
	var b xsync.Barrier
	_, err := b.Wait()
	assert.ErrorIs(t, err, xsync.ErrInvalid, "wait before Init")
	assert.ErrorIs(t, b.Init(0, 0), xsync.ErrInvalid)
	assert.ErrorIs(t, b.Init(xsync.MaxParties+1, 0), xsync.ErrInvalid)
	assert.ErrorIs(t, b.Init(2, -time.Second), xsync.ErrInvalid)
}

func startBroken(t *testing.T, name string, n int, then string) []*testproc.Child {
	var kids []*testproc.Child
	for range n {
		kids = append(kids, testproc.Start(t, "barrier-expect-broken", name, then))
	}
	return kids
}

func TestBarrierAbort(t *testing.T) {
	name, sh := newBarrier(t, barParties, 0)
	kids := startBroken(t, name, barParties-1, "")
	eventually(t, "all parties waiting", func() bool { return sh.B.Waiting() == barParties-1 })
	sh.B.Abort()
	for _, k := range kids {
		k.Wait()
	}
	assert.Equal(t, int32(barParties-1), sh.Broken.Load())
	assert.True(t, sh.B.Broken())
	_, err := sh.B.Wait()
	assert.ErrorIs(t, err, xsync.ErrBroken, "waits on a broken barrier fail at once")
}

func TestBarrierReset(t *testing.T) {
	name, sh := newBarrier(t, barParties, 0)
	kids := startBroken(t, name, barParties-1, "then-pass")
	eventually(t, "all parties waiting", func() bool { return sh.B.Waiting() == barParties-1 })
	sh.B.Reset()
	eventually(t, "all parties broken", func() bool { return sh.Broken.Load() == barParties-1 })
	assert.False(t, sh.B.Broken(), "reset leaves the barrier usable")
	for _, k := range kids {
		k.Send("again")
	}
	_, err := sh.B.Wait()
	require.NoError(t, err, "all pass again after reset")
	for _, k := range kids {
		k.Wait()
	}
}

func TestBarrierTimeout(t *testing.T) {
	// The others wait with a default timeout; the late party arrives after
	// they gave up: all N get ErrBroken.
	name, sh := newBarrier(t, barParties, 100*time.Millisecond)
	kids := startBroken(t, name, barParties-1, "")
	for _, k := range kids {
		k.Wait()
	}
	_, err := sh.B.Wait()
	assert.ErrorIs(t, err, xsync.ErrBroken)
	assert.Equal(t, int32(barParties-1), sh.Broken.Load())
}

func TestBarrierTimeoutError(t *testing.T) {
	var b xsync.Barrier
	require.NoError(t, b.Init(2, 50*time.Millisecond))
	_, err := b.Wait()
	assert.ErrorIs(t, err, xsync.ErrBroken)
	assert.ErrorIs(t, err, xsync.ErrTimeout)
	assert.True(t, b.Broken())

	require.NoError(t, b.Init(2, 0))
	ctx, cancel := timeoutCtx(50 * time.Millisecond)
	defer cancel()
	_, err = b.WaitContext(ctx)
	assert.ErrorIs(t, err, xsync.ErrBroken)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestBarrierActionFails(t *testing.T) {
	var b xsync.Barrier
	require.NoError(t, b.Init(2, 0))
	other := make(chan error, 1)
	go func() { _, err := b.Wait(); other <- err }()
	eventually(t, "one party waiting", func() bool { return b.Waiting() == 1 })
	boom := errors.New("boom")
	_, err := b.WaitFunc(context.Background(), func() error { return boom })
	assert.ErrorIs(t, err, boom)
	assert.ErrorIs(t, err, xsync.ErrBroken)
	assert.ErrorIs(t, <-other, xsync.ErrBroken)
}

func TestBarrierPartyDeath(t *testing.T) {
	// A process attached to the barrier's segment dies while the others
	// wait for it: they get ErrBroken instead of waiting forever.
	name, sh := newBarrier(t, 3, 0)
	dying := testproc.Start(t, "barrier-wait-die", name)
	dying.Expect("attached")
	waiter := testproc.Start(t, "barrier-expect-broken", name)
	eventually(t, "one party waiting", func() bool { return sh.B.Waiting() == 1 })
	dying.Kill()
	_, err := sh.B.Wait()
	assert.ErrorIs(t, err, xsync.ErrBroken)
	waiter.Wait()

	// Reset forgets the dead process; the survivors can go on.
	sh.B.Reset()
	require.NoError(t, sh.B.Init(2, 0))
	other := testproc.Start(t, "barrier-rounds", name, "3")
	for range 3 {
		_, err := sh.B.WaitFunc(context.Background(), func() error { sh.Actions.Add(1); return nil })
		require.NoError(t, err)
	}
	other.Wait()
}

// oversubscribed has the caller wait on b, which has fewer parties than
// there are callers, until the callers together have passed it target
// times; the one that completes the count aborts b to release the others.
// Any error before that, or an index out of range, fails.
func oversubscribed(b *xsync.Barrier, passed *atomic.Int64, done *atomic.Int32, target int64) error {
	for done.Load() == 0 {
		idx, err := b.Wait()
		if err != nil {
			if done.Load() != 0 && errors.Is(err, xsync.ErrBroken) {
				return nil // aborted at the end
			}
			return fmt.Errorf("after %d passes in all: %w (barrier broken: %v)", passed.Load(), err, b.Broken())
		}
		if idx < 0 || idx >= b.Parties() {
			return fmt.Errorf("index %d of %d parties", idx, b.Parties())
		}
		if passed.Add(1) == target {
			done.Store(1)
			b.Abort()
		}
	}
	return nil
}

// With more callers than parties, the extra ones form the next rounds; no
// caller may see a round that passed as broken, however late it wakes.
func TestBarrierOversubscribed(t *testing.T) {
	t.Run("goroutines", func(t *testing.T) {
		var b xsync.Barrier
		require.NoError(t, b.Init(2, 0))
		var passed atomic.Int64
		var done atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- oversubscribed(&b, &passed, &done, 20000)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	})
	t.Run("processes", func(t *testing.T) {
		name, sh := newBarrier(t, 2, 0)
		var kids []*testproc.Child
		for range 4 {
			kids = append(kids, testproc.Start(t, "barrier-oversubscribed", name, "8000"))
		}
		for _, k := range kids {
			k.Wait()
		}
		assert.GreaterOrEqual(t, sh.Actions.Load(), int64(8000))
	})
}
