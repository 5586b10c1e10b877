package sync_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	xsync "github.com/xproc-go/xproc/sync"
)

func init() {
	testproc.Register("sem-acquire", func(args []string) error {
		s, err := xsync.OpenSemaphore(args[0])
		if err != nil {
			return err
		}
		testproc.Say("waiting")
		ctx, cancel := timeoutCtx(testproc.Bound)
		defer cancel()
		if err := s.AcquireContext(ctx); err != nil {
			return err
		}
		testproc.Say("acquired")
		return nil
	})
	testproc.Register("sem-over-release", func(args []string) error {
		sh, err := openShared[semShared](args[0])
		if err != nil {
			return err
		}
		sh.Start.Wait()
		for range testproc.Atoi(args[1]) {
			switch err := sh.Sem.Release(); {
			case err == nil:
				sh.OK.Add(1)
			case errors.Is(err, xsync.ErrOverRelease):
				sh.Refused.Add(1)
			default:
				return err
			}
		}
		return nil
	})
}

type semShared struct {
	Sem     xsync.Semaphore
	Start   xsync.Event
	OK      atomic.Int64
	Refused atomic.Int64
}

func TestSemaphore(t *testing.T) {
	var s xsync.Semaphore
	require.NoError(t, s.Init(2, false))
	assert.Equal(t, 2, s.Value())
	require.True(t, s.TryAcquire())
	assert.Equal(t, 1, s.Value())
	require.True(t, s.TryAcquire())
	assert.Equal(t, 0, s.Value())
	assert.False(t, s.TryAcquire())
	for range 4 {
		require.NoError(t, s.Release())
	}
	assert.Equal(t, 4, s.Value(), "an unbounded semaphore goes above its initial value")
	require.NoError(t, s.ReleaseN(3))
	assert.Equal(t, 7, s.Value())
	assert.ErrorIs(t, s.ReleaseN(-1), xsync.ErrInvalid)
}

func TestBoundedSemaphore(t *testing.T) {
	var s xsync.Semaphore
	require.NoError(t, s.Init(2, true))
	assert.True(t, s.Bounded())
	require.True(t, s.TryAcquire())
	require.NoError(t, s.Release())
	assert.ErrorIs(t, s.Release(), xsync.ErrOverRelease, "release beyond the initial value")
	assert.Equal(t, 2, s.Value(), "a refused release changes nothing")
	require.True(t, s.TryAcquire())
	assert.ErrorIs(t, s.ReleaseN(2), xsync.ErrOverRelease)
	assert.Equal(t, 1, s.Value())
}

func TestSemaphoreTimeout(t *testing.T) {
	var s xsync.Semaphore // value 0
	const d = 100 * time.Millisecond
	start := time.Now()
	ctx, cancel := timeoutCtx(d)
	defer cancel()
	assert.ErrorIs(t, s.AcquireContext(ctx), context.DeadlineExceeded)
	assert.GreaterOrEqual(t, time.Since(start), d, "timed acquire returns after about the timeout")

	// A negative timeout counts as zero: an immediate failure.
	ctx, cancel = timeoutCtx(-time.Second)
	defer cancel()
	testproc.Within(t, time.Second, "acquire with a negative timeout", func() {
		assert.ErrorIs(t, s.AcquireContext(ctx), context.DeadlineExceeded)
	})
	// ... but an available unit is still taken.
	require.NoError(t, s.Release())
	assert.NoError(t, s.AcquireContext(ctx))
}

func TestSemaphoreAcrossProcesses(t *testing.T) {
	name := testproc.Name(t)
	s, err := xsync.CreateSemaphore(name, 0, false)
	require.NoError(t, err)
	defer s.Close()
	kids := []*testproc.Child{testproc.Start(t, "sem-acquire", name), testproc.Start(t, "sem-acquire", name)}
	for _, k := range kids {
		k.Expect("waiting")
	}
	require.NoError(t, s.ReleaseN(2))
	for _, k := range kids {
		k.Expect("acquired")
		k.Wait()
	}
	assert.Equal(t, 0, s.Value())
}

func TestBoundedSemaphoreExactAcrossProcesses(t *testing.T) {
	// Two processes race to release a bounded semaphore that is 100 below
	// its bound: exactly 100 releases may succeed.
	name, sh := createShared[semShared](t)
	require.NoError(t, sh.Sem.Init(100, true))
	for range 100 {
		require.True(t, sh.Sem.TryAcquire())
	}
	kids := []*testproc.Child{
		testproc.Start(t, "sem-over-release", name, "1000"),
		testproc.Start(t, "sem-over-release", name, "1000"),
	}
	sh.Start.Set()
	for _, k := range kids {
		k.Wait()
	}
	assert.Equal(t, int64(100), sh.OK.Load())
	assert.Equal(t, int64(1900), sh.Refused.Load())
	assert.Equal(t, 100, sh.Sem.Value())
}
