package sync_test

import (
	"context"
	"errors"
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
		if err := r.Unlock(); !errors.Is(err, xsync.ErrNotOwner) {
			return childErr("release by another process: %v, want ErrNotOwner", err)
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
	require.NoError(t, r.Unlock())
	assert.True(t, r.Locked(), "still locked after one of three releases")
	assert.True(t, r.Held())

	// Another goroutine is another owner: it can neither take nor release.
	done := make(chan struct{})
	go func() {
		defer close(done)
		assert.False(t, r.TryLock())
		assert.ErrorIs(t, r.Unlock(), xsync.ErrNotOwner)
		assert.False(t, r.Held())
	}()
	<-done

	// Nor can another process.
	testproc.Start(t, "rmutex-try", name).Wait()

	require.NoError(t, r.Unlock())
	require.NoError(t, r.Unlock())
	assert.False(t, r.Locked(), "unlocked after three releases")
	assert.ErrorIs(t, r.Unlock(), xsync.ErrNotOwner, "a fourth release is refused")
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
	require.NoError(t, r.Unlock())
	assert.False(t, r.Locked())
}
