//go:build linux

package pool_test

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/pool"
	"github.com/xproc-go/xproc/process"
)

// stallOne, given a name, stalls as stall does (records its pid in the
// named value, then waits for its context to end); given none, it
// returns x*x. One call of a Map that a test can find and kill.
var stallOne = pool.Register2("pool-test-stall-one", func(ctx context.Context, name string, x int) (int, error) {
	if name == "" {
		return x * x, nil
	}
	return stallIn(ctx, name)
})

// TestWorkerKilledInMap: SIGKILL of a worker in the middle of one call of
// a Map of 8 calls on 2 workers fails that call alone, with a *TaskError
// naming its index and the worker, matching ErrWorkerDied, within a
// generous 2s of the kill (the pool notices in milliseconds). Map returns
// that error with every other call's result; Imap yields every other
// result right, in order, and the failure in its place. The pool goes on.
func TestWorkerKilledInMap(t *testing.T) {
	const n, at = 8, 5
	const promptly = 2 * time.Second
	ctx := bound(t)
	p := newPool(t, pool.Workers(2), pool.ChunkSize(1))
	args := func(name string) []pool.Pair[string, int] {
		xs := make([]pool.Pair[string, int], n)
		for i := range xs {
			xs[i].B = i
		}
		xs[at].A = name
		return xs
	}
	died := func(t *testing.T, err error, pid int) {
		t.Helper()
		require.ErrorIs(t, err, pool.ErrWorkerDied)
		var te *pool.TaskError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, at, te.Index, "the index of the killed call")
		assert.Equal(t, pid, te.Pid, "the killed worker")
		var ee *process.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, syscall.SIGKILL, ee.Signal)
	}
	var killed []int

	t.Run("Map", func(t *testing.T) {
		name, v := counter(t)
		fut := pool.MapAsync(ctx, p, stallOne, args(name))
		pid := awaitPid(t, ctx, v)
		require.Contains(t, p.Pids(), pid)
		killed = append(killed, pid)
		start := time.Now()
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		got, err := fut.Wait(ctx)
		took := time.Since(start)
		died(t, err, pid)
		assert.Less(t, took, promptly, "Map returned %v after the kill", took)
		require.Len(t, got, n)
		for i, y := range got {
			if i == at {
				assert.Zero(t, y, "the killed call has no result")
			} else {
				assert.Equal(t, i*i, y, "call %d", i)
			}
		}
	})

	t.Run("Imap", func(t *testing.T) {
		name, v := counter(t)
		type item struct {
			y   int
			err error
			at  time.Time
		}
		items := make(chan item, n+1) // the results, and an error ending the range
		go func() {
			defer close(items)
			for y, err := range pool.Imap(ctx, p, stallOne, slices.Values(args(name))) {
				items <- item{y, err, time.Now()}
			}
		}()
		pid := awaitPid(t, ctx, v)
		require.Contains(t, p.Pids(), pid)
		killed = append(killed, pid)
		start := time.Now()
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		var got []item
		for it := range items { // ends by ctx at worst
			got = append(got, it)
		}
		require.Len(t, got, n)
		for i, it := range got {
			if i != at {
				require.NoError(t, it.err, "call %d", i)
				assert.Equal(t, i*i, it.y, "call %d", i)
				continue
			}
			died(t, it.err, pid)
			took := it.at.Sub(start)
			assert.Less(t, took, promptly, "Imap yielded the failure %v after the kill", took)
		}
	})

	got, err := pool.Map(ctx, p, square, ints(100))
	require.NoError(t, err, "the pool goes on")
	assert.Equal(t, squares(100), got)
	for _, pid := range killed {
		assert.NotContains(t, p.Pids(), pid, "replaced")
	}
}
