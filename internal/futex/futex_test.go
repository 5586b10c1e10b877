//go:build linux

package futex

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parkUntilChanged parks on w until it no longer holds val, as the
// primitives do, and returns the error that ended it, if any.
func parkUntilChanged(ctx, stop context.Context, w *atomic.Uint32, val uint32) error {
	for w.Load() == val {
		if err := Park(ctx, stop, w, val); err != nil {
			return err
		}
	}
	return nil
}

func TestParkReturnsAtOnceIfChanged(t *testing.T) {
	var w atomic.Uint32
	w.Store(1)
	require.NoError(t, Park(context.Background(), nil, &w, 0))
}

func TestParkWokenByWake(t *testing.T) {
	var w atomic.Uint32
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- parkUntilChanged(context.Background(), nil, &w, 0)
		}()
	}
	w.Store(1)
	Wake(&w, All)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestParkCancelAndStop(t *testing.T) {
	var w atomic.Uint32
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- parkUntilChanged(ctx, nil, &w, 0) }()
	cancel()
	assert.ErrorIs(t, <-got, context.Canceled)

	stop, halt := context.WithCancel(context.Background())
	go func() { got <- parkUntilChanged(context.Background(), stop, &w, 0) }()
	halt()
	// Stop is noticed at the next wake of this process's sleepers: by
	// WakeRange when a segment closes, at worst by the next tick.
	WakeRange(0, ^uintptr(0))
	assert.ErrorIs(t, <-got, ErrStopped)
}

// Gates outlive their last sleeper by at most a tick, and the ticker
// stops when no gate is left.
func TestGatesArePruned(t *testing.T) {
	var w atomic.Uint32
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- parkUntilChanged(ctx, nil, &w, 0) }()
	cancel()
	require.ErrorIs(t, <-got, context.Canceled)
	require.Eventually(t, func() bool {
		gates.Lock()
		defer gates.Unlock()
		return len(gates.m) == 0 && gates.quit == nil
	}, 10*Tick, Tick/10)
}

// withoutTicks makes the ticker, the safety net that wakes this process's
// sleepers every Tick, too slow to matter for the rest of the test, so
// that a lost wake-up hangs instead of costing a tick.
func withoutTicks(t *testing.T) {
	t.Helper()
	setTicks := func(d time.Duration) {
		gates.Lock()
		defer gates.Unlock()
		if gates.quit != nil {
			close(gates.quit)
			gates.quit = nil
		}
		gates.every = d
	}
	setTicks(time.Hour)
	t.Cleanup(func() { setTicks(Tick) })
}

// parked waits until n goroutines park on w: one holds the right to sleep
// in the kernel and n-1 are queued behind it.
func parked(t *testing.T, w *atomic.Uint32, n int) *gate {
	t.Helper()
	var g *gate
	require.Eventually(t, func() bool {
		gates.Lock()
		defer gates.Unlock()
		g = gates.m[w]
		return g != nil && g.sleeping.Load() == 1 && int(g.queued.Load()) == n-1
	}, 10*time.Second, time.Millisecond)
	return g
}

// result waits, boundedly, for the error a parked goroutine ended with.
func result(t *testing.T, errs <-chan error) error {
	t.Helper()
	select {
	case err := <-errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("a parked goroutine was not woken")
		return nil
	}
}

// A change and a wake-up of the kernel sleeper reach every goroutine
// queued behind it, without help from the ticker.
func TestParkQueuedGetWakeAll(t *testing.T) {
	withoutTicks(t)
	var w atomic.Uint32
	const n = 64
	errs := make(chan error, n)
	for range n {
		go func() { errs <- parkUntilChanged(context.Background(), nil, &w, 0) }()
	}
	parked(t, &w, n)
	w.Store(1)
	Wake(&w, All)
	for range n {
		require.NoError(t, result(t, errs))
	}
}

// Queued goroutines that give up (cancelled) do not keep the right to
// sleep from the others, even if it was handed to one of them.
func TestParkQueuedCancel(t *testing.T) {
	withoutTicks(t)
	var w atomic.Uint32
	holder := make(chan error, 1)
	go func() { holder <- parkUntilChanged(context.Background(), nil, &w, 0) }()
	parked(t, &w, 1)

	const n = 8
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, n)
	for range n {
		go func() { errs <- parkUntilChanged(ctx, nil, &w, 0) }()
	}
	parked(t, &w, 1+n)
	// Wake the holder without changing the word: it gives the right to
	// one of the queued goroutines and parks again, while they give up.
	wakeOwn(&w)
	cancel()
	for range n {
		require.ErrorIs(t, result(t, errs), context.Canceled)
	}
	// The holder holds the right again, and a newcomer queues behind it.
	parked(t, &w, 1)
	late := make(chan error, 1)
	go func() { late <- parkUntilChanged(context.Background(), nil, &w, 0) }()
	parked(t, &w, 2)
	w.Store(1)
	Wake(&w, All)
	require.NoError(t, result(t, holder))
	require.NoError(t, result(t, late))
}

// The right to sleep left in handoff by a queued goroutine that gave up
// is taken by the next goroutine that parks.
func TestParkTakesLeftRight(t *testing.T) {
	withoutTicks(t)
	var w atomic.Uint32
	g := acquireGate(&w)
	g.sleeping.Store(1)
	g.handoff <- struct{}{}
	releaseGate(g)

	errs := make(chan error, 1)
	go func() { errs <- parkUntilChanged(context.Background(), nil, &w, 0) }()
	// The right is already taken (by the token); the newcomer holds it
	// once the token is gone and it is not queued.
	require.Eventually(t, func() bool {
		return len(g.handoff) == 0 && g.queued.Load() == 0
	}, 10*time.Second, time.Millisecond, "the newcomer took the right")
	w.Store(1)
	Wake(&w, All)
	require.NoError(t, result(t, errs))
}
