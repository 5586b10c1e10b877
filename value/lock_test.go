package value_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	"github.com/xproc-go/xproc/value"
)

// A Value's lock is a sync.Locker, through the Value.
var _ sync.Locker = (*value.Value[int64])(nil)

func init() {
	// Python's
	//	for _ in range(n):
	//	    with v.get_lock():
	//	        v.value += 1
	// translated as the package documentation says, n times.
	testproc.Register("value-python-increments", func(args []string) error {
		v, err := value.Open[int64](args[0])
		if err != nil {
			return err
		}
		defer v.Close()
		n, _ := strconv.Atoi(args[1])
		if err := testproc.Ready(); err != nil {
			return err
		}
		for range n {
			v.Lock()
			v.Store(v.Load() + 1)
			v.Unlock()
		}
		return nil
	})
	// Locks v through Lock, twice, and waits to be killed.
	testproc.Register("value-lock-die", func(args []string) error {
		v, err := value.Open[int64](args[0])
		if err != nil {
			return err
		}
		v.Lock()
		v.Lock()
		v.Store(-1) // half an update: the next holder must be told
		testproc.Say("locked")
		return testproc.Await("never")
	})
}

// bounded runs f and fails the test if it has not returned within
// testproc.Bound: a hang becomes a failure, not a stuck test run.
func bounded(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(testproc.Bound):
		t.Fatalf("%s: still running after %v: it hangs", what, testproc.Bound)
	}
}

// TestPythonGetLock: the direct translation of "with v.get_lock():
// v.value += 1" works, with the locked methods inside it, nested locks
// included.
func TestPythonGetLock(t *testing.T) {
	v, err := value.Create(testproc.Name(t), int64(1))
	require.NoError(t, err)
	defer v.Close()
	defer v.Unlink()

	bounded(t, "Load and Store under Lock", func() {
		v.Lock()
		v.Store(v.Load() + 1)
		v.Update(func(p *int64) { *p *= 10 })
		v.Lock() // nests, as an RLock
		assert.True(t, v.TryLock(), "TryLock nests too")
		v.Store(v.Load() + 1)
		v.Unlock()
		v.Unlock()
		assert.False(t, lockFree(v), "still held after two of three Unlocks")
		v.Unlock()
	})
	assert.Equal(t, int64(21), v.Load())
	assert.True(t, lockFree(v), "released by the last Unlock")

	ctx, cancel := context.WithTimeout(context.Background(), testproc.Bound)
	defer cancel()
	bounded(t, "LockContext", func() {
		require.NoError(t, v.LockContext(ctx))
		v.Store(v.Load() + 1)
		v.Unlock()
	})
	assert.Equal(t, int64(22), v.Load())
}

// lockFree reports whether nobody holds v's lock, from another goroutine.
func lockFree(v *value.Value[int64]) bool {
	free := make(chan bool)
	go func() {
		ok := v.TryLock()
		if ok {
			v.Unlock()
		}
		free <- ok
	}()
	return <-free
}

// TestLockExcludesOtherGoroutines: the holder's Load and Store do not
// take the lock, but every other goroutine's do, and wait for it.
func TestLockExcludesOtherGoroutines(t *testing.T) {
	v, err := value.Create(testproc.Name(t), int64(0))
	require.NoError(t, err)
	defer v.Close()
	defer v.Unlink()
	word, err := shm.View[atomic.Uint64](v.Segment(), v.Segment().Params()[0])
	require.NoError(t, err)

	v.Lock()
	v.Store(1)
	loaded := make(chan int64)
	go func() { loaded <- v.Load() }()
	// The other goroutine sleeps on the lock: the waiters bit (LAYOUT.md,
	// Mutex) says so.
	deadline := time.Now().Add(testproc.Bound)
	for word.Load()&(1<<31) == 0 {
		require.True(t, time.Now().Before(deadline), "the other goroutine's Load never waited")
		time.Sleep(time.Millisecond)
	}
	v.Store(2)
	v.Unlock()
	assert.Equal(t, int64(2), <-loaded, "Load waited for the holder's Unlock")

	// Another handle of the same segment is another holder, in this
	// process too.
	w, err := value.Open[int64](v.Name())
	require.NoError(t, err)
	defer w.Close()
	v.Lock()
	assert.False(t, w.TryLock())
	v.Unlock()
	assert.True(t, w.TryLock())
	w.Unlock()
}

// TestLockAcrossProcesses: processes that each increment with the
// Python idiom, and this one with Update, lose no increment.
func TestLockAcrossProcesses(t *testing.T) {
	const n = 3000
	name := testproc.Name(t)
	v, err := value.Create(name, int64(0))
	require.NoError(t, err)
	defer v.Close()
	children := testproc.StartTogether(t, 2, "value-python-increments", name, strconv.Itoa(n))
	for range n {
		v.Update(func(p *int64) { *p++ })
	}
	for _, c := range children {
		c.Wait()
	}
	assert.Equal(t, int64(3*n), v.Load())
}

// TestLockOwnerDead: a process killed while holding the lock through
// Lock leaves it to the next LockContext, with ErrOwnerDead, at depth 1.
func TestLockOwnerDead(t *testing.T) {
	name := testproc.Name(t)
	v, err := value.Create(name, int64(0))
	require.NoError(t, err)
	defer v.Close()
	c := testproc.Start(t, "value-lock-die", name)
	c.Expect("locked")
	assert.False(t, v.TryLock())
	c.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), testproc.Bound)
	defer cancel()
	err = v.LockContext(ctx)
	require.ErrorIs(t, err, xsync.ErrOwnerDead)
	var od *xsync.OwnerDeadError
	require.ErrorAs(t, err, &od)
	assert.Equal(t, c.Pid(), od.PID)
	assert.Equal(t, int64(-1), v.Load(), "the holder may Load the half-written value")
	v.Store(0)
	v.Unlock()
	assert.True(t, lockFree(v), "one Unlock releases a lock taken over")
	c.WaitKilled()
}

// TestCreateFunc: the value is initialised in place before its name
// exists; an error from init creates nothing.
func TestCreateFunc(t *testing.T) {
	type pool struct {
		Slots xsync.Semaphore
		Start xsync.Barrier
		Mu    xsync.Mutex
		N     int64
	}
	name := testproc.Name(t)
	p, err := value.CreateFunc(name, func(p *pool) error {
		_, err := shm.Stat(name)
		assert.ErrorIs(t, err, shm.ErrNotExist, "the name does not exist while init runs")
		p.N = 7
		if err := p.Slots.Init(3, true); err != nil {
			return err
		}
		return p.Start.Init(2, 0)
	})
	require.NoError(t, err)
	defer p.Close()
	assert.Equal(t, 3, p.Ptr().Slots.Value())
	assert.True(t, p.Ptr().Slots.Bounded())
	assert.Equal(t, 2, p.Ptr().Start.Parties())
	assert.Equal(t, int64(7), p.Ptr().N)

	boom := errors.New("boom")
	name2 := testproc.Name(t)
	_, err = value.CreateFunc(name2, func(p *pool) error { return boom })
	require.ErrorIs(t, err, boom)
	var se *shm.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "create", se.Op)
	_, err = shm.Stat(name2)
	assert.ErrorIs(t, err, shm.ErrNotExist, "a failed init leaves nothing")

	// An argument error inside init is reported as it is.
	_, err = value.CreateFunc(name2, func(p *pool) error { return p.Slots.Init(-1, false) })
	require.ErrorIs(t, err, xsync.ErrInvalid)
	assert.Contains(t, err.Error(), "Semaphore.Init: value -1")

	// A name taken, or missing, is as for a file.
	_, err = value.CreateFunc[pool](name, nil)
	assert.ErrorIs(t, err, fs.ErrExist)
	_, err = value.Open[pool](name2)
	assert.ErrorIs(t, err, fs.ErrNotExist)

	// nil init: the zero value.
	z, err := value.CreateFunc[pool](name2, nil)
	require.NoError(t, err)
	defer z.Close()
	assert.Equal(t, int64(0), z.Ptr().N)
	assert.Equal(t, 0, z.Ptr().Slots.Value())
	require.NoError(t, z.Unlink())
}

// slotted is a struct whose Semaphore and Barrier need Init.
type slotted struct {
	Slots xsync.Semaphore
	Start xsync.Barrier
}

func init() {
	// Opens args[0] each time the parent says "try", and says what it
	// found: "absent", or the semaphore's value and the barrier's
	// parties.
	testproc.Register("value-open-slotted", func(args []string) error {
		for {
			if err := testproc.Await("try"); err != nil {
				return nil // the parent is done
			}
			v, err := value.Open[slotted](args[0])
			switch {
			case errors.Is(err, shm.ErrNotExist):
				testproc.Say("absent")
				continue
			case err != nil:
				return err
			}
			testproc.Say(fmt.Sprintf("slots %d, parties %d", v.Ptr().Slots.Value(), v.Ptr().Start.Parties()))
			v.Close()
		}
	})
}

// TestCreateFuncNoWindow: while CreateFunc's init runs, another process
// cannot open the value at all; once it can, the Semaphore and the
// Barrier are initialised.
func TestCreateFuncNoWindow(t *testing.T) {
	name := testproc.Name(t)
	c := testproc.Start(t, "value-open-slotted", name)
	v, err := value.CreateFunc(name, func(p *slotted) error {
		// Halfway through: the zero Semaphore and Barrier are in the
		// segment, and the other process tries to open it.
		c.Send("try")
		c.Expect("absent")
		if err := p.Slots.Init(5, false); err != nil {
			return err
		}
		c.Send("try")
		c.Expect("absent")
		return p.Start.Init(3, 0)
	})
	require.NoError(t, err)
	defer v.Close()
	c.Send("try")
	c.Expect("slots 5, parties 3")
}
