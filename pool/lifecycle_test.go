//go:build linux

package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/pool"
	"github.com/xproc-go/xproc/process"
	"github.com/xproc-go/xproc/queue"
	xsync "github.com/xproc-go/xproc/sync"
	"github.com/xproc-go/xproc/value"
)

var (
	// initUpTo counts, in the named value, the workers that start, and
	// fails from the (Max+1)th on: a replacement worker whose initializer
	// fails.
	initUpTo = pool.Register2("pool-test-init-up-to", func(ctx context.Context, name string, limit int) (struct{}, error) {
		v, err := value.Open[int64](name)
		if err != nil {
			return struct{}{}, err
		}
		defer v.Close()
		if v.Add(1) > int64(limit) {
			return struct{}{}, errors.New("no more workers")
		}
		return struct{}{}, nil
	})
	length = process.Register("pool-test-length", func(ctx context.Context, s string) (int, error) { return len(s), nil })
	pad    = process.Register("pool-test-pad", func(ctx context.Context, n int) (string, error) {
		return strings.Repeat("x", n), nil
	})
	// shout panics with a long message.
	shout = process.Register("pool-test-shout", func(ctx context.Context, n int) (int, error) {
		panic(strings.Repeat("a", n))
	})
	// gated waits, for input 0, until the event named by $POOL_TEST_GATE
	// is set.
	gated = process.Register("pool-test-gated", func(ctx context.Context, x int) (int, error) {
		if x != 0 {
			return x, nil
		}
		ev, err := xsync.OpenEvent(os.Getenv("POOL_TEST_GATE"))
		if err != nil {
			return 0, err
		}
		defer ev.Close()
		return 0, ev.WaitContext(ctx)
	})
)

// counter creates a shared int64 at a name of the test's, for the test.
func counter(t *testing.T) (string, *value.Value[int64]) {
	t.Helper()
	name := testproc.Name(t)
	v, err := value.Create[int64](name, 0)
	require.NoError(t, err)
	t.Cleanup(func() { v.Close() })
	return name, v
}

// megabytes returns n strings of 1 MiB.
func megabytes(n int) []string {
	xs := make([]string, n)
	for i := range xs {
		xs[i] = strings.Repeat("x", 1<<20)
	}
	return xs
}

// awaitPid waits until the stall call writes its worker's pid into v.
func awaitPid(t *testing.T, ctx context.Context, v *value.Value[int64]) int {
	t.Helper()
	for {
		if pid := int(v.Load()); pid != 0 {
			return pid
		}
		require.NoError(t, ctx.Err(), "the call never started")
		time.Sleep(time.Millisecond) // observing, not synchronising
	}
}

func assertGone(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		assert.True(t, os.IsNotExist(err), "worker %d is still there (a zombie?)", pid)
	}
}

// With a worker replaced after every call, many calls in a row and at
// once all succeed: each replacement's ready message and its first task
// cross without loss.
func TestMaxTasksPerChildManyCalls(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2), pool.MaxTasksPerChild(1))
	for i := range 20 {
		got, err := pool.Map(ctx, p, square, ints(5+i%3))
		require.NoError(t, err)
		require.Equal(t, squares(5+i%3), got)
	}
	var futs []*pool.Future[int]
	for i := range 40 {
		futs = append(futs, pool.ApplyAsync(ctx, p, square, i))
	}
	for i, f := range futs {
		y, err := f.Wait(ctx)
		require.NoError(t, err)
		require.Equal(t, i*i, y)
	}
	pids := p.Pids()
	require.NoError(t, p.Close(ctx))
	assertGone(t, pids)
	assert.Empty(t, p.Pids())
}

// Close waits for the calls started before it, even when their workers
// must be replaced to finish them (MaxTasksPerChild), and an ApplyAsync
// returned before Close counts as started.
func TestCloseFinishesCalls(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2), pool.MaxTasksPerChild(1))
	var futs []*pool.Future[int]
	for i := range 30 {
		futs = append(futs, pool.ApplyAsync(ctx, p, square, i))
	}
	require.NoError(t, p.Close(ctx))
	for i, f := range futs {
		y, err := f.Wait(ctx)
		require.NoError(t, err, "call %d", i)
		assert.Equal(t, i*i, y)
	}
	assert.Empty(t, p.Pids())
	_, err := pool.ApplyAsync(ctx, p, square, 1).Wait(ctx)
	assert.ErrorIs(t, err, pool.ErrClosed, "ApplyAsync after Close")
}

// A worker killed while the pool closes: its call fails with
// ErrWorkerDied, Close still returns, and no worker is left.
func TestCloseWithKilledWorker(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2))
	name, v := counter(t)
	stalled := pool.ApplyAsync(ctx, p, stall, name)
	quick := pool.ApplyAsync(ctx, p, square, 7)
	pid := awaitPid(t, ctx, v)
	pids := p.Pids()
	closed := make(chan error, 1)
	go func() { closed <- p.Close(ctx) }()
	for {
		if _, err := pool.ApplyAsync(ctx, p, square, 1).Wait(ctx); errors.Is(err, pool.ErrClosed) {
			break
		}
		require.NoError(t, ctx.Err(), "Close never began")
		time.Sleep(time.Millisecond) // observing, not synchronising
	}
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	_, err := stalled.Wait(ctx)
	assert.ErrorIs(t, err, pool.ErrWorkerDied)
	y, err := quick.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 49, y)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
	assertGone(t, append(pids, p.Pids()...))
}

// A replacement worker whose initializer fails breaks the pool: the call
// of the killed worker fails with ErrWorkerDied (the parent fails it
// itself: no worker is left to take its batch back), the call waiting
// for a worker fails with ErrBroken, saying why, and so do new calls;
// nothing hangs, and only one replacement is tried.
func TestBrokenOnReplacement(t *testing.T) {
	ctx := bound(t)
	count, c := counter(t)
	name, v := counter(t)
	p := newPool(t, pool.Workers(1), pool.Initializer(initUpTo, pool.Pair[string, int]{A: count, B: 1}))
	stalled := pool.ApplyAsync(ctx, p, stall, name)
	pid := awaitPid(t, ctx, v)
	waiting := pool.ApplyAsync(ctx, p, square, 3)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	_, err := stalled.Wait(ctx)
	assert.ErrorIs(t, err, pool.ErrWorkerDied)
	var ee *process.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, syscall.SIGKILL, ee.Signal)
	_, err = waiting.Wait(ctx)
	assert.ErrorIs(t, err, pool.ErrBroken)
	assert.ErrorContains(t, err, "no more workers")
	_, err = pool.Map(ctx, p, square, ints(3))
	assert.ErrorIs(t, err, pool.ErrBroken)
	assert.Equal(t, int64(2), c.Load(), "one replacement tried, not more")
	require.NoError(t, p.Close(ctx))
}

// Terminate while an Imap is under way ends it with ErrClosed, and
// leaves no worker (not even a zombie) and no segment.
func TestTerminateDuringImap(t *testing.T) {
	ctx := bound(t)
	name, v := counter(t)
	before := takeResidue(t)
	p := newPool(t, pool.Workers(2))
	endless := func(yield func(string) bool) {
		for yield(name) {
		}
	}
	go func() {
		for v.Load() == 0 && ctx.Err() == nil {
			time.Sleep(time.Millisecond) // observing, not synchronising
		}
		p.Terminate()
	}()
	var last error
	n := 0
	for _, err := range pool.Imap(ctx, p, stall, endless) {
		last = err
		n++
	}
	assert.ErrorIs(t, last, pool.ErrClosed)
	assert.Equal(t, 1, n, "one error, then the end")
	assert.Empty(t, p.Pids())
	require.NoError(t, p.Terminate(), "returns once the first Terminate has")
	assertNoResidue(t, before)
}

// Batches whose arguments or results exceed a message are cut into
// parts, and a single value that cannot fit fails its call alone with
// queue.ErrTooLarge.
func TestLargeValues(t *testing.T) {
	ctx := bound(t)
	for _, chunk := range []int{0, 600} {
		t.Run(fmt.Sprintf("chunk %d", chunk), func(t *testing.T) {
			p := newPool(t, pool.Workers(2), pool.ChunkSize(chunk))
			// 600 arguments of 10 KB: 6 MB, three times a message.
			args := make([]string, 600)
			want := make([]int, 600)
			for i := range args {
				args[i] = strings.Repeat(strconv.Itoa(i%10), 10000+i)
				want[i] = 10000 + i
			}
			got, err := pool.Map(ctx, p, length, args)
			require.NoError(t, err)
			assert.Equal(t, want, got)

			// 600 results of 10 KB.
			strs, err := pool.Map(ctx, p, pad, want)
			require.NoError(t, err)
			for i, s := range strs {
				require.Len(t, s, want[i])
			}

			// One argument, and one result, too large for any message.
			args[5] = strings.Repeat("y", 3<<20)
			got, err = pool.Map(ctx, p, length, args)
			var te *pool.TaskError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, 5, te.Index)
			assert.ErrorIs(t, err, queue.ErrTooLarge)
			assert.Equal(t, 0, got[5])
			assert.Equal(t, want[6:], got[6:], "the other calls ran")
			sizes := []int{10, 3 << 20, 20}
			strs, err = pool.Map(ctx, p, pad, sizes)
			require.ErrorAs(t, err, &te)
			assert.Equal(t, 1, te.Index)
			assert.ErrorIs(t, err, queue.ErrTooLarge)
			assert.Equal(t, []string{strings.Repeat("x", 10), "", strings.Repeat("x", 20)}, strs)
		})
	}
}

// A batch of calls that all panic with long messages: the failures
// exceed a message together, and every call still gets its TaskError,
// its message cut.
func TestManyLongFailures(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2), pool.ChunkSize(1000))
	n := 0
	for _, err := range pool.Imap(ctx, p, shout, func(yield func(int) bool) {
		for range 1000 {
			if !yield(100 << 10) {
				return
			}
		}
	}) {
		var te *pool.TaskError
		require.ErrorAs(t, err, &te)
		require.Equal(t, n, te.Index)
		require.True(t, te.Panic)
		require.True(t, strings.HasSuffix(te.Message, "... (cut)"), "message of %d bytes not cut", len(te.Message))
		require.Less(t, len(te.Message), 10<<10)
		n++
	}
	assert.Equal(t, 1000, n)
}

// An ordered Imap waiting for a slow call stops reading its input 8192
// inputs ahead of what it has yielded (as Imap's doc says), then goes on
// when the slow call ends; with batches of one call, and sized
// automatically.
func TestImapReadAheadBound(t *testing.T) {
	for _, chunk := range []int{1, 0} {
		t.Run(fmt.Sprintf("chunk %d", chunk), func(t *testing.T) {
			ctx := bound(t)
			gate := testproc.Name(t)
			ev, err := xsync.CreateEvent(gate)
			require.NoError(t, err)
			defer ev.Close()
			t.Setenv("POOL_TEST_GATE", gate)
			p := newPool(t, pool.Workers(2), pool.ChunkSize(chunk))

			const bound = 8192
			var reads, yielded atomic.Int64
			var over atomic.Int64 // the most inputs read ahead of those yielded
			endless := func(yield func(int) bool) {
				for i := 0; ; i++ {
					if ahead := reads.Add(1) - yielded.Load(); ahead > over.Load() {
						over.Store(ahead)
					}
					if !yield(i) {
						return
					}
				}
			}
			// Open the gate once reading has reached the bound, and a little
			// after, to give a wrong Imap time to read past it. A correct one
			// passes whatever the timing.
			go func() {
				for reads.Load() < bound && ctx.Err() == nil {
					time.Sleep(time.Millisecond) // observing, not synchronising
				}
				time.Sleep(100 * time.Millisecond)
				ev.Set()
			}()
			n := 0
			for y, err := range pool.Imap(ctx, p, gated, endless) {
				require.NoError(t, err)
				require.Equal(t, n, y)
				if n == 0 {
					assert.Equal(t, int64(bound), reads.Load(), "read ahead while waiting for the first result")
				}
				n++
				yielded.Add(1)
				if n == 20000 {
					break
				}
			}
			assert.Equal(t, 20000, n)
			assert.LessOrEqual(t, over.Load(), int64(bound), "read ahead of the results yielded")
			got, err := pool.Map(ctx, p, square, ints(10))
			require.NoError(t, err, "the pool goes on after the range stopped early")
			assert.Equal(t, squares(10), got)
		})
	}
}

// A call that runs for long does not hold up the others: its batch's
// room in the tasks ring is free while it runs, so many megabytes of
// tasks pass it, run by the other worker.
func TestLongCallDoesNotBlockRing(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2), pool.ChunkSize(1))
	name, v := counter(t)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	long := pool.ApplyAsync(sctx, p, stall, name)
	awaitPid(t, ctx, v)
	got, err := pool.Map(ctx, p, length, megabytes(40)) // through a 4 MiB ring
	require.NoError(t, err)
	assert.Equal(t, 1<<20, got[39])
	stop()
	_, err = long.Wait(ctx)
	assert.ErrorIs(t, err, context.Canceled)
}

// A pool that breaks while a Map waits for room in the tasks ring fails
// that Map with ErrBroken: the wait for room ends with the call.
func TestBrokenWhileSending(t *testing.T) {
	ctx := bound(t)
	count, _ := counter(t)
	p := newPool(t, pool.Workers(1), pool.ChunkSize(1), pool.MaxTasksPerChild(1),
		pool.Initializer(initUpTo, pool.Pair[string, int]{A: count, B: 1}))
	_, err := pool.Map(ctx, p, length, megabytes(40)) // the Map waits for room
	assert.ErrorIs(t, err, pool.ErrBroken)
	require.NoError(t, ctx.Err(), "the Map waited until the test's deadline")
	require.NoError(t, p.Close(ctx))
}

// A worker killed in the middle of a batch leaves nothing in its slot of
// the control array: its replacement, idle, is not taken for a worker
// running the call when that call is cancelled, and is not killed after
// the grace period.
func TestCancelSparesReplacement(t *testing.T) {
	ctx := bound(t)
	grace := 50 * time.Millisecond
	p := newPool(t, pool.Workers(2), pool.ChunkSize(1), pool.Grace(grace))
	n1, v1 := counter(t)
	n2, v2 := counter(t)
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := pool.Map(mctx, p, stall, []string{n1, n2})
		done <- err
	}()
	killed, other := awaitPid(t, ctx, v1), awaitPid(t, ctx, v2)
	require.NoError(t, syscall.Kill(killed, syscall.SIGKILL))
	var fresh int
	for fresh == 0 {
		require.NoError(t, ctx.Err(), "no replacement")
		for _, pid := range p.Pids() {
			if pid != killed && pid != other {
				fresh = pid
			}
		}
		time.Sleep(time.Millisecond) // observing the replacement start
	}
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	time.Sleep(4 * grace) // a window for a wrong kill to happen in
	assert.Contains(t, p.Pids(), fresh, "the idle replacement was killed")
}

// The kill storm's workers: each, once initialised, writes its pid into
// the storm's board whenever it runs a call, so that only workers that
// are running calls are killed (killing ones still starting would, after
// a few, rightly break the pool).
var (
	stormBoard *value.Value[int64]
	stormInit  = process.Register("pool-test-storm-init", func(ctx context.Context, name string) (struct{}, error) {
		var err error
		stormBoard, err = value.Open[int64](name)
		return struct{}{}, err
	})
	stormSquare = process.Register("pool-test-storm-square", func(ctx context.Context, x int) (int, error) {
		stormBoard.Store(int64(os.Getpid()))
		time.Sleep(20 * time.Microsecond) // work: a call long enough for kills to land inside it
		return x * x, nil
	})
)

// TestKillStorm: workers are killed with SIGKILL again and again while
// an Imap runs. Every input is yielded exactly once and in order, either
// right or failed with ErrWorkerDied; no more calls fail than the batches
// the dead workers were running; with Retries none fails; nothing hangs,
// and the pool goes on afterwards.
func TestKillStorm(t *testing.T) {
	const kills, chunk = 12, 4
	for _, retries := range []int{0, 1000} {
		t.Run(fmt.Sprintf("retries=%d", retries), func(t *testing.T) {
			ctx := bound(t)
			name, board := counter(t)
			p := newPool(t, pool.Workers(2), pool.ChunkSize(chunk), pool.Retries(retries), pool.Initializer(stormInit, name))

			var killed atomic.Int32
			stop := make(chan struct{})
			stormed := make(chan struct{})
			// Before the pool is terminated and the board closed (cleanups
			// run last first), however the test ends.
			t.Cleanup(func() { close(stop); <-stormed })
			go func() {
				defer close(stormed)
				last := int64(0)
				for killed.Load() < kills {
					select {
					case <-stop:
						return
					case <-time.After(2 * time.Millisecond): // pacing the storm, not synchronising
					}
					pid := board.Load()
					if pid == 0 || pid == last || !slices.Contains(p.Pids(), int(pid)) {
						continue
					}
					if syscall.Kill(int(pid), syscall.SIGKILL) == nil {
						last = pid
						killed.Add(1)
					}
				}
			}()
			// The input runs until the storm is over, whatever the timing.
			inputs := func(yield func(int) bool) {
				for i := 0; ; i++ {
					if i >= 1000 && killed.Load() >= kills || !yield(i) {
						return
					}
				}
			}
			want, died := 0, 0
			for y, err := range pool.Imap(ctx, p, stormSquare, inputs) {
				if err != nil {
					require.ErrorIs(t, err, pool.ErrWorkerDied)
					var te *pool.TaskError
					require.ErrorAs(t, err, &te)
					require.Equal(t, want, te.Index)
					died++
				} else {
					require.Equal(t, want*want, y, "input %d", want)
				}
				want++
			}
			t.Logf("%d inputs, %d workers killed, %d calls failed", want, killed.Load(), died)
			require.EqualValues(t, kills, killed.Load())
			assert.LessOrEqual(t, died, kills*chunk, "only the calls of the batches the dead were running fail")
			if retries > 0 {
				assert.Zero(t, died, "every batch of a dead worker ran again")
			}
			got, err := pool.Map(ctx, p, square, ints(100))
			require.NoError(t, err, "the pool goes on")
			assert.Equal(t, squares(100), got)
		})
	}
}

// markRan sets the named value to 1.
var markRan = process.Register("pool-test-mark-ran", func(ctx context.Context, name string) (int, error) {
	v, err := value.Open[int64](name)
	if err != nil {
		return 0, err
	}
	defer v.Close()
	v.Store(1)
	return 1, nil
})

// An Imap whose input iterator blocks after an input does not keep that
// input from a sleeping worker: the batch goes out at once (a timer wakes
// the workers when the iterator takes over a millisecond), not when the
// worker would next look on its own (every 100ms). Over five rounds the
// median from the input to the worker running it is far below that.
func TestImapBlockingInput(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2), pool.ChunkSize(1))
	name, v := counter(t)
	var lat []time.Duration
	for range 5 {
		v.Store(0)
		time.Sleep(5 * time.Millisecond) // the workers fall asleep: only sharpens the test
		var waited time.Duration
		inputs := func(yield func(string) bool) {
			if !yield(name) {
				return
			}
			start := time.Now()
			for v.Load() == 0 { // the iterator blocks until the worker ran the input
				require.NoError(t, ctx.Err(), "the input never ran")
				time.Sleep(100 * time.Microsecond) // observing, not synchronising
			}
			waited = time.Since(start)
		}
		n := 0
		for y, err := range pool.Imap(ctx, p, markRan, inputs) {
			require.NoError(t, err)
			assert.Equal(t, 1, y)
			n++
		}
		assert.Equal(t, 1, n)
		lat = append(lat, waited)
	}
	slices.Sort(lat)
	t.Logf("input to its run, while the iterator blocks: %v", lat)
	assert.Less(t, lat[len(lat)/2], 40*time.Millisecond)
}

// nap sleeps for d, or until its context ends, and returns d.
var nap = process.Register("pool-test-nap", func(ctx context.Context, d time.Duration) (time.Duration, error) {
	select {
	case <-time.After(d): // the work of this call
	case <-ctx.Done():
	}
	return d, nil
})

// A result is not held back while its worker runs the next batch: the
// worker puts results without waking the parent each time, but a timer
// wakes it within a millisecond. One worker gets a quick call (2ms: the
// long one is queued before it ends, so the worker does not find the
// queue empty and flush on that path) and a 300ms one together; the quick
// one's result is yielded long before the long one ends, and before the
// parent would look on its own (every 100ms).
func TestResultNotHeldByNextBatch(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(1), pool.ChunkSize(1))
	const rounds = 5
	var lat []time.Duration
	for range rounds {
		// A round lasts about 300ms, a whole number of the parent's own
		// looks: shifting each by a fifth of one spreads the rounds over
		// it, so that without the timer at most two could be lucky. Only
		// sharpens the test.
		time.Sleep(100 * time.Millisecond / rounds)
		start := time.Now()
		i := 0
		for d, err := range pool.Imap(ctx, p, nap, slices.Values([]time.Duration{2 * time.Millisecond, 300 * time.Millisecond})) {
			require.NoError(t, err)
			if i == 0 {
				assert.Equal(t, 2*time.Millisecond, d)
				lat = append(lat, time.Since(start))
			}
			i++
		}
	}
	slices.Sort(lat)
	t.Logf("the quick call's result, while the long one runs: %v", lat)
	assert.Less(t, lat[len(lat)/2], 30*time.Millisecond)
}
