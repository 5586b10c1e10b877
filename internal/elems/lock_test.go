package elems_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/elems"
	xsync "github.com/xproc-go/xproc/sync"
)

// inGoroutine runs f in a goroutine of its own and returns what it
// returned, or what it panicked with.
func inGoroutine(f func() error) error {
	errc := make(chan error)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				err, ok := r.(error)
				if !ok {
					err = fmt.Errorf("panic: %v", r)
				}
				errc <- err
			}
		}()
		errc <- f()
	}()
	return <-errc
}

// TestLockHolderIsTheGoroutine: Lock nests for its goroutine and lets it
// Enter without taking Mu; to any other goroutine it is a held lock.
func TestLockHolderIsTheGoroutine(t *testing.T) {
	var mu xsync.Mutex
	l := elems.NewLock("value", "test", &mu)

	require.True(t, l.Enter("test"), "a free lock is taken by Enter")
	assert.True(t, mu.Locked())
	mu.Unlock()

	l.Lock()
	assert.False(t, l.Enter("test"), "the holder enters without taking it again")
	l.Lock()
	assert.True(t, l.TryLock())
	l.Unlock()
	l.Unlock()
	assert.True(t, mu.Locked(), "one Lock not yet undone")

	err := inGoroutine(func() error {
		if l.TryLock() {
			return errors.New("TryLock took a lock another goroutine holds")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if err := l.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("LockContext of a lock another goroutine holds: %v", err)
		}
		l.Unlock() // must panic
		return errors.New("Unlock by another goroutine did not panic")
	})
	require.ErrorIs(t, err, xsync.ErrNotOwner)
	assert.Contains(t, err.Error(), "value: Unlock of a lock the calling goroutine does not hold")
	assert.True(t, mu.Locked(), "the refused Unlock changed nothing")

	l.Unlock()
	assert.False(t, mu.Locked(), "the last Unlock releases Mu")
	assert.ErrorIs(t, inGoroutine(func() error { l.Unlock(); return nil }), xsync.ErrNotOwner, "Unlock of a free lock")
	assert.PanicsWithError(t, "value: Unlock of a lock the calling goroutine does not hold: "+xsync.ErrNotOwner.Error(), l.Unlock)

	// A lock held on Mu directly (by a locked method, another process)
	// makes Lock wait like anyone else, and is not the caller's.
	mu.Lock()
	assert.False(t, l.TryLock())
	assert.ErrorIs(t, inGoroutine(func() error { l.Unlock(); return nil }), xsync.ErrNotOwner)
	mu.Unlock()
}

// lockedBuffer is a bytes.Buffer for one writer and one reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestWaitOnOwnUpdateWarns: a locked method called from inside Update's
// function, on the same value, waits for the lock Update holds for that
// function: for ever. It is not silent: after a while the handle says,
// once, what may be happening and where; and once the lock is free (here
// the test frees it) the call goes on.
func TestWaitOnOwnUpdateWarns(t *testing.T) {
	defer elems.SetSelfWaitWarning(20 * time.Millisecond)()
	var warnings lockedBuffer
	old := elems.Warnings
	elems.Warnings = &warnings
	defer func() { elems.Warnings = old }()

	var mu xsync.Mutex
	l := elems.NewLock("value", "counter", &mu)
	require.True(t, l.Enter("Update"), "Update takes the lock for its function")
	entered := make(chan bool)
	go func() { entered <- l.Enter("Load") }() // what the function would call
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(warnings.String(), "waits for ever") {
		require.True(t, time.Now().Before(deadline), "no warning")
		runtime.Gosched()
	}
	w := warnings.String()
	assert.Contains(t, w, `value "counter": Load has waited 20ms for the lock`)
	assert.Contains(t, w, "inside the function given to Update")
	assert.Contains(t, w, "TestWaitOnOwnUpdateWarns", "the waiting goroutine's stack")
	mu.Unlock() // what Update does when its function returns
	assert.True(t, <-entered, "the call gets the lock once it is free")
	mu.Unlock()

}
