package sync_test

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
)

// Every lock is a sync.Locker, as Go code expects of a lock.
var (
	_ sync.Locker = (*xsync.Mutex)(nil)
	_ sync.Locker = (*xsync.ReentrantMutex)(nil)
	_ sync.Locker = (*xsync.NamedMutex)(nil)
	_ sync.Locker = (*xsync.NamedReentrantMutex)(nil)
	_ sync.Locker = (*xsync.NamedCond)(nil)
)

// TestReentrantMutexAsLocker uses a ReentrantMutex where the standard
// library takes a sync.Locker: under a sync.Cond, whose Wait unlocks it
// and locks it again in the waiting goroutine.
func TestReentrantMutexAsLocker(t *testing.T) {
	var r xsync.ReentrantMutex
	var l sync.Locker = &r
	c := sync.NewCond(l)
	ready := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Lock()
		for !ready {
			c.Wait()
		}
		assert.True(t, r.Held(), "Wait re-locked for this goroutine")
		l.Unlock()
	}()
	l.Lock()
	ready = true
	c.Broadcast()
	l.Unlock()
	<-done
	assert.False(t, r.Locked())

	// Misuse is still reported: a goroutine that does not hold the lock
	// panics in Unlock, with ErrNotOwner, and changes nothing.
	r.Lock()
	refused := make(chan error)
	go func() { refused <- unlockErr(&r) }()
	assert.ErrorIs(t, <-refused, xsync.ErrNotOwner)
	assert.True(t, r.Held())
	assert.Equal(t, 1, r.Depth())
	r.Unlock()
}

// TestArgumentRule: every argument out of range is an error, never a
// panic; it wraps ErrInvalid, names the call, the argument and the value
// given, says what is allowed, and changes nothing.
func TestArgumentRule(t *testing.T) {
	var sem xsync.Semaphore
	require.NoError(t, sem.Init(3, true))
	var bar xsync.Barrier
	require.NoError(t, bar.Init(2, time.Second))

	for _, c := range []struct {
		call, arg string
		value     any
		do        func() error
	}{
		{"Semaphore.Init", "value", -1, func() error { return sem.Init(-1, false) }},
		{"Semaphore.Init", "value", xsync.MaxSemaphore + 1, func() error { return sem.Init(xsync.MaxSemaphore+1, false) }},
		{"Semaphore.ReleaseN", "n", -2, func() error { return sem.ReleaseN(-2) }},
		{"Barrier.Init", "parties", 0, func() error { return bar.Init(0, 0) }},
		{"Barrier.Init", "parties", xsync.MaxParties + 1, func() error { return bar.Init(xsync.MaxParties+1, 0) }},
		{"Barrier.Init", "timeout", -time.Second, func() error { return bar.Init(2, -time.Second) }},
		{"CreateSemaphore", "value", -1, func() error {
			_, err := xsync.CreateSemaphore(testproc.Name(t), -1, false)
			return err
		}},
		{"CreateSemaphore", "value", 1 << 31, func() error {
			_, err := xsync.CreateSemaphore(testproc.Name(t), 1<<31, true)
			return err
		}},
		{"Cond.Wait", "m", "nil", func() error { var c xsync.Cond; return c.WaitContext(context.Background(), nil) }},
		{"Cond.WaitFor", "pred", "nil", func() error {
			var c xsync.Cond
			var m xsync.Mutex
			m.Lock()
			defer m.Unlock()
			_, err := c.WaitFor(context.Background(), &m, nil)
			return err
		}},
		{"CreateBarrier", "parties", -3, func() error {
			_, err := xsync.CreateBarrier(testproc.Name(t), -3, 0)
			return err
		}},
		{"CreateBarrier", "timeout", -time.Millisecond, func() error {
			_, err := xsync.CreateBarrier(testproc.Name(t), 2, -time.Millisecond)
			return err
		}},
	} {
		t.Run(c.call+"/"+fmt.Sprint(c.value), func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = c.do() })
			require.ErrorIs(t, err, xsync.ErrInvalid)
			msg := err.Error()
			assert.Contains(t, msg, c.call+": "+c.arg+" "+fmt.Sprint(c.value)+" (want ")
			assert.Equal(t, 1, strings.Count(msg, "xsync: "), "one prefix: %s", msg)
		})
	}
	// Other errors of the package carry its prefix once too.
	var m xsync.Mutex
	var c xsync.Cond
	for _, err := range []error{c.WaitContext(context.Background(), &m), sem.ReleaseN(1), (&xsync.Semaphore{}).ReleaseN(xsync.MaxSemaphore + 1)} {
		require.Error(t, err)
		assert.Equal(t, 1, strings.Count(err.Error(), "xsync: "), "one prefix: %s", err)
	}
	assert.ErrorIs(t, (&xsync.Semaphore{}).ReleaseN(xsync.MaxSemaphore+1), xsync.ErrOverRelease, "above MaxSemaphore, bounded or not")
	// Nothing changed, and nothing was created.
	assert.Equal(t, 3, sem.Value())
	assert.True(t, sem.Bounded())
	assert.Equal(t, 2, bar.Parties())
	infos, err := shm.List()
	require.NoError(t, err)
	for _, in := range infos {
		assert.NotContains(t, in.Name, "TestArgumentRule", "created despite the error")
	}

	// The limits themselves are accepted.
	require.NoError(t, sem.Init(xsync.MaxSemaphore, false))
	assert.Equal(t, xsync.MaxSemaphore, sem.Value())
	require.NoError(t, sem.Init(0, false))
	require.NoError(t, bar.Init(xsync.MaxParties, 0))
	require.NoError(t, bar.Init(1, 0))
	s, err := xsync.CreateSemaphore(testproc.Name(t), xsync.MaxSemaphore, true)
	require.NoError(t, err)
	assert.Equal(t, xsync.MaxSemaphore, s.Value())
	require.NoError(t, s.Close())
}

// TestNamedTypeNames: named primitives record the type names their users
// write, which xproc ls and messages show.
func TestNamedTypeNames(t *testing.T) {
	m, err := xsync.CreateMutex(testproc.Name(t))
	require.NoError(t, err)
	defer m.Close()
	assert.Equal(t, "xsync.Mutex", m.Segment().Type().Name)
	c, err := xsync.CreateCond(testproc.Name(t))
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "xsync.Mutex+xsync.Cond", c.Segment().Type().Name)
	_, err = xsync.OpenMutex(c.Name())
	assert.ErrorContains(t, err, "holds a condition variable, want a mutex")
}

// TestNamedFSErrors: a named primitive's errors match io/fs's, as a
// file's do.
func TestNamedFSErrors(t *testing.T) {
	name := testproc.Name(t)
	_, err := xsync.OpenEvent(name)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorIs(t, err, shm.ErrNotExist)
	e, err := xsync.CreateEvent(name)
	require.NoError(t, err)
	defer e.Close()
	_, err = xsync.CreateEvent(name)
	assert.ErrorIs(t, err, fs.ErrExist)
	assert.ErrorIs(t, err, shm.ErrExist)
}
