package sync_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	xsync "github.com/xproc-go/xproc/sync"
)

func init() {
	testproc.Register("rmutex-try", func(args []string) error {
		r, err := xsync.OpenReentrantMutex(args[0])
		if err != nil {
			return err
		}
		if r.TryLock() {
			return childErr("took a lock held by another process")
		}
		if !r.Locked() {
			return childErr("lock held by the parent is not seen as locked")
		}
		if err := unlockErr(r); !errors.Is(err, xsync.ErrNotOwner) {
			return childErr("release by another process: %v, want a panic with ErrNotOwner", err)
		}
		if !r.Locked() {
			return childErr("a refused release by another process unlocked the lock")
		}
		ctx, cancel := timeoutCtx(50 * time.Millisecond)
		defer cancel()
		if err := r.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
			return childErr("LockContext of a held lock: %v", err)
		}
		return nil
	})
	testproc.Register("rmutex-hold-die", func(args []string) error {
		r, err := xsync.OpenReentrantMutex(args[0])
		if err != nil {
			return err
		}
		r.Lock()
		r.Lock()
		testproc.Say("locked")
		return testproc.Await("never")
	})
}

func TestReentrantMutex(t *testing.T) {
	name := testproc.Name(t)
	r, err := xsync.CreateReentrantMutex(name)
	require.NoError(t, err)
	defer r.Close()

	for range 3 {
		require.True(t, r.TryLock())
	}
	assert.Equal(t, 3, r.Depth())
	r.Unlock()
	assert.True(t, r.Locked(), "still locked after one of three releases")
	assert.True(t, r.Held())

	// Another goroutine is another owner: it can neither take nor release.
	done := make(chan struct{})
	go func() {
		defer close(done)
		assert.False(t, r.TryLock())
		assert.ErrorIs(t, unlockErr(r), xsync.ErrNotOwner)
		assert.False(t, r.Held())
	}()
	<-done

	// Nor can another process.
	testproc.Start(t, "rmutex-try", name).Wait()

	assert.Equal(t, 2, r.Depth(), "the other goroutine's refused release changed nothing")
	r.Unlock()
	r.Unlock()
	assert.False(t, r.Locked(), "unlocked after three releases")
	assert.ErrorIs(t, unlockErr(r), xsync.ErrNotOwner, "a fourth release is refused")
	assert.False(t, r.Locked())
}

func TestReentrantMutexOwnerDeath(t *testing.T) {
	name := testproc.Name(t)
	r, err := xsync.CreateReentrantMutex(name)
	require.NoError(t, err)
	defer r.Close()
	c := testproc.Start(t, "rmutex-hold-die", name)
	c.Expect("locked")
	c.Kill()
	ctx, cancel := timeoutCtx(testproc.Bound)
	defer cancel()
	require.ErrorIs(t, r.LockContext(ctx), xsync.ErrOwnerDead)
	assert.Equal(t, 1, r.Depth(), "a taken-over lock starts at depth one")
	r.Unlock()
	assert.False(t, r.Locked())
}

// unlockErr unlocks r and returns what Unlock panicked with, or nil.
func unlockErr(r interface{ Unlock() }) (err error) {
	defer func() {
		if v := recover(); v != nil {
			var ok bool
			if err, ok = v.(error); !ok {
				err = fmt.Errorf("panic with a %T, not an error: %v", v, v)
			}
		}
	}()
	r.Unlock()
	return nil
}
