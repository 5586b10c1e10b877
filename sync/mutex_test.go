package sync_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	xsync "github.com/xproc-go/xproc/sync"
)

func init() {
	testproc.Register("mutex-hold", func(args []string) error {
		m, err := xsync.OpenMutex(args[0])
		if err != nil {
			return err
		}
		m.Lock()
		testproc.Say("locked")
		if err := testproc.Await("unlock"); err != nil {
			return err
		}
		m.Unlock()
		return nil
	})
	testproc.Register("mutex-unlock-unlocked", func(args []string) error {
		var m xsync.Mutex
		m.Unlock()
		return nil
	})
	testproc.Register("mutex-count", func(args []string) error {
		c, err := openShared[counter](args[0])
		if err != nil {
			return err
		}
		for range testproc.Atoi(args[1]) {
			c.Mu.Lock()
			c.N++
			c.Mu.Unlock()
		}
		return nil
	})
}

type counter struct {
	Mu xsync.Mutex
	N  int64
}

func TestMutexBasics(t *testing.T) {
	var m xsync.Mutex
	assert.False(t, m.Locked())
	require.True(t, m.TryLock(), "acquire of a free lock")
	assert.True(t, m.Locked())
	assert.False(t, m.TryLock(), "non-blocking acquire of a held lock")
	ctx, cancel := timeoutCtx(20 * time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, m.LockContext(ctx), context.DeadlineExceeded)
	m.Unlock()
	assert.False(t, m.Locked())
	m.Lock()
	//lint:ignore SA2001 only the locking is tested here
	m.Unlock()
	// A free lock is taken even with a finished context.
	cancel()
	require.NoError(t, m.LockContext(ctx))
	m.Unlock()

	var _ sync.Locker = &m
}

func TestMutexUnlockOfUnlockedPanics(t *testing.T) {
	c := testproc.Start(t, "mutex-unlock-unlocked")
	err := c.Exit()
	require.Error(t, err, "release of an unlocked lock must be refused")
	assert.Contains(t, c.Output(), "xsync: unlock of unlocked mutex")
}

func TestMutexHeldByChild(t *testing.T) {
	name := testproc.Name(t)
	m, err := xsync.CreateMutex(name)
	require.NoError(t, err)
	defer m.Close()

	c := testproc.Start(t, "mutex-hold", name)
	c.Expect("locked")
	assert.True(t, m.Locked(), "a lock held by a child is locked in the parent")
	assert.False(t, m.TryLock())
	ctx, cancel := timeoutCtx(50 * time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, m.LockContext(ctx), context.DeadlineExceeded)

	// A waiter blocked across processes gets the lock when the child
	// unlocks.
	got := make(chan error, 1)
	go func() { got <- m.LockContext(context.Background()) }()
	c.Send("unlock")
	require.NoError(t, <-got)
	c.Wait()
	m.Unlock()
}

func TestMutexOwnerDeath(t *testing.T) {
	for _, tc := range []struct {
		name string
		reap bool
	}{{"zombie", false}, {"reaped", true}} {
		t.Run(tc.name, func(t *testing.T) {
			name := testproc.Name(t)
			m, err := xsync.CreateMutex(name)
			require.NoError(t, err)
			defer m.Close()

			c := testproc.Start(t, "mutex-hold", name)
			c.Expect("locked")
			// One waiter is already asleep when the holder dies; the
			// other arrives afterwards.
			early := make(chan error, 1)
			go func() { early <- m.LockContext(context.Background()) }()
			c.Kill()
			if tc.reap {
				c.WaitKilled()
			}
			var errs []error
			testproc.Within(t, 5*time.Second, "taking over from a dead owner", func() {
				late := make(chan error, 1)
				go func() { late <- m.LockContext(context.Background()) }()
				errs = append(errs, <-firstOf(early, late))
				m.Unlock()
				errs = append(errs, <-firstOf(early, late))
				m.Unlock()
			})
			// Exactly one of the two took the lock over.
			dead := 0
			for _, err := range errs {
				if errors.Is(err, xsync.ErrOwnerDead) {
					dead++
					var od *xsync.OwnerDeadError
					require.ErrorAs(t, err, &od)
					assert.Equal(t, c.Pid(), od.PID, "the error names the dead holder")
				} else {
					require.NoError(t, err)
				}
			}
			assert.Equal(t, 1, dead, "errors: %v", errs)
			assert.False(t, m.Locked())
		})
	}
}

// firstOf returns whichever channel delivers first, then the other.
func firstOf(a, b chan error) chan error {
	out := make(chan error, 1)
	go func() {
		select {
		case err := <-a:
			out <- err
		case err := <-b:
			out <- err
		}
	}()
	return out
}

func TestMutexCountsAcrossProcesses(t *testing.T) {
	name, c := createShared[counter](t)
	const n = 50000
	kids := []*testproc.Child{
		testproc.Start(t, "mutex-count", name, "50000"),
		testproc.Start(t, "mutex-count", name, "50000"),
	}
	for range n {
		c.Mu.Lock()
		c.N++
		c.Mu.Unlock()
	}
	for _, k := range kids {
		k.Wait()
	}
	assert.Equal(t, int64(3*n), c.N)
	assert.False(t, c.Mu.Locked())
}

func TestMutexGuardsGoMemory(t *testing.T) {
	// Goroutines sharing Go memory under a Mutex in a segment: the race
	// detector must see the lock's happens-before edges.
	_, c := createShared[counter](t)
	var plain int
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.Mu.Lock()
				plain++
				c.Mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 4000, plain)
}
