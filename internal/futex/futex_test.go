//go:build linux

package futex

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

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
		return len(gates.m) == 0 && !gates.ticking
	}, 10*Tick, Tick/10)
}
