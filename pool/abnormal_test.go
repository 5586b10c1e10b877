//go:build linux

package pool_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/pool"
	"github.com/xproc-go/xproc/process"
	"github.com/xproc-go/xproc/value"
)

// Calls that end abnormally: a panic in the caller's code that runs
// inside a call, a context that ends while the caller is slow or its
// input blocks, a function that ignores its context.

// catch runs f and returns the value of its panic, if any.
func catch(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// waitFor waits until cond holds, or ctx ends (false). For goroutines
// other than the test's, where require cannot be used.
func waitFor(ctx context.Context, cond func() bool) bool {
	for !cond() {
		if ctx.Err() != nil {
			return false
		}
		time.Sleep(time.Millisecond) // observing, not synchronising
	}
	return true
}

// meeting is the argument of rendezvous.
type meeting struct {
	Record string   // a counter: stall there
	Await  []string // counters: wait until each is set, then return 0
}

// rendezvous, given Record, stalls: it records its pid there, waits for
// its context to end, then records -1. Given Await, it waits until each
// of those values is set (the calls stalling there have started), then
// returns 0.
var rendezvous = process.Register("pool-test-rendezvous", func(ctx context.Context, m meeting) (int, error) {
	if m.Record != "" {
		v, err := value.Open[int64](m.Record)
		if err != nil {
			return 0, err
		}
		defer v.Close()
		v.Store(int64(os.Getpid()))
		<-ctx.Done()
		v.Store(-1)
		return 0, ctx.Err()
	}
	for _, name := range m.Await {
		v, err := value.Open[int64](name)
		if err != nil {
			return 0, err
		}
		ok := waitFor(ctx, func() bool { return v.Load() != 0 })
		v.Close()
		if !ok {
			return 0, ctx.Err()
		}
	}
	return 0, nil
})

// stalling returns the arguments of rendezvous for three calls: the
// first returns once the other two have started, and they stall. On 3
// workers, when the first call's result comes, the two others are
// running, until cancelled. started reports whether they have started,
// stopped whether they have seen their context end.
func stalling(t *testing.T) (args []meeting, started, stopped func() bool) {
	n1, v1 := counter(t)
	n2, v2 := counter(t)
	args = []meeting{{Await: []string{n1, n2}}, {Record: n1}, {Record: n2}}
	return args, func() bool { return v1.Load() != 0 && v2.Load() != 0 },
		func() bool { return v1.Load() == -1 && v2.Load() == -1 }
}

// cancelled checks that the calls stalling (see stalling) see their
// context end, within a bound far below the test's, and that p goes on.
func cancelled(t *testing.T, p *pool.Pool, pids []int, stopped func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	assert.True(t, waitFor(ctx, stopped), "the calls under way were not cancelled")
	goesOn(t, p, pids)
}

// goesOn checks that p runs a Map within a bound far below the test's:
// the workers are not held by the calls of an earlier one, and are the
// same processes (those calls were cancelled, not killed).
func goesOn(t *testing.T, p *pool.Pool, pids []int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := pool.Map(ctx, p, square, ints(100))
	require.NoError(t, err, "the pool's workers are still held by the calls of the call that panicked")
	assert.Equal(t, squares(100), got)
	if pids != nil {
		assert.ElementsMatch(t, pids, p.Pids(), "workers were replaced: their calls were not cancelled")
	}
}

type testPanic struct{ where string }

// A panic in the caller's code that runs inside a call (the loop body of
// an Imap, its input iterator, a Progress function) goes on, unchanged,
// to the caller, and cancels the call's work in the workers as a
// cancelled context does: two calls that wait for their context stop,
// and the next Map runs on the same workers.
func TestPanicCancelsCall(t *testing.T) {
	t.Run("Imap body", func(t *testing.T) {
		ctx := bound(t)
		p := newPool(t, pool.Workers(3), pool.ChunkSize(1))
		pids := p.Pids()
		args, started, stopped := stalling(t)
		boom := &testPanic{"body"}
		got := catch(func() {
			for y, err := range pool.Imap(ctx, p, rendezvous, slices.Values(args)) {
				require.NoError(t, err)
				require.Equal(t, 0, y)
				require.True(t, waitFor(ctx, started))
				panic(boom)
			}
		})
		assert.Same(t, boom, got)
		cancelled(t, p, pids, stopped)
	})
	t.Run("ImapUnordered body", func(t *testing.T) {
		ctx := bound(t)
		p := newPool(t, pool.Workers(3), pool.ChunkSize(1))
		pids := p.Pids()
		args, started, stopped := stalling(t)
		boom := &testPanic{"body"}
		got := catch(func() {
			for _, err := range pool.ImapUnordered(ctx, p, rendezvous, slices.Values(args)) {
				require.NoError(t, err)
				require.True(t, waitFor(ctx, started))
				panic(boom)
			}
		})
		assert.Same(t, boom, got)
		cancelled(t, p, pids, stopped)
	})
	t.Run("Imap input", func(t *testing.T) {
		ctx := bound(t)
		p := newPool(t, pool.Workers(3), pool.ChunkSize(1))
		pids := p.Pids()
		args, started, stopped := stalling(t)
		boom := &testPanic{"input"}
		input := func(yield func(meeting) bool) {
			if !yield(args[1]) || !yield(args[2]) {
				return
			}
			if waitFor(ctx, started) {
				panic(boom)
			}
		}
		got := catch(func() {
			for _, err := range pool.Imap(ctx, p, rendezvous, input) {
				t.Errorf("yielded %v", err)
			}
		})
		assert.Same(t, boom, got)
		cancelled(t, p, pids, stopped)
	})
	t.Run("Progress", func(t *testing.T) {
		ctx := bound(t)
		var armed atomic.Bool
		boom := &testPanic{"progress"}
		var started, stopped func() bool
		p := newPool(t, pool.Workers(3), pool.ChunkSize(1), pool.Progress(func(done, total int) {
			if done > 0 && armed.CompareAndSwap(true, false) && waitFor(ctx, started) {
				panic(boom)
			}
		}))
		pids := p.Pids()
		var args []meeting
		args, started, stopped = stalling(t)
		armed.Store(true)
		got := catch(func() { pool.Map(ctx, p, rendezvous, args) })
		assert.Same(t, boom, got)
		cancelled(t, p, pids, stopped)
	})
}

// Cancelling the context of an Imap whose caller is slow to read ends it
// at once: not one result more is yielded, though the rest of the answer
// being yielded (ChunkSize(100)) and more have arrived; then ctx.Err(),
// once, ends the sequence.
func TestImapCancelSlowConsumer(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		t.Run(map[bool]string{true: "Imap", false: "ImapUnordered"}[ordered], func(t *testing.T) {
			ctx := bound(t)
			p := newPool(t, pool.Workers(2), pool.ChunkSize(100))
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			imap := pool.Imap[int, int]
			if !ordered {
				imap = pool.ImapUnordered[int, int]
			}
			var start time.Time
			n, after := 0, 0
			var errs []error
			for y, err := range imap(cctx, p, square, slices.Values(ints(100_000))) {
				if n == 10 {
					if err == nil {
						after++
					} else {
						errs = append(errs, err)
					}
					continue
				}
				require.NoError(t, err)
				if ordered {
					require.Equal(t, n*n, y)
				}
				if n++; n == 10 {
					start = time.Now()
					cancel()
				}
			}
			took := time.Since(start)
			assert.Zero(t, after, "results yielded after the context was cancelled")
			require.Len(t, errs, 1)
			assert.ErrorIs(t, errs[0], context.Canceled)
			assert.Less(t, took, time.Second)
			goesOn(t, p, nil)
		})
	}
}

// Cancelling the context of an Imap whose input iterator blocks (a read
// of a channel nobody sends on) ends it within a second with ctx.Err():
// the iterator runs in a goroutine of its own, and the result of the
// input before is yielded meanwhile. The pool goes on, and the iterator,
// once it yields again, is stopped (its yield returns false).
func TestImapCancelBlockedInput(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2))
	never := make(chan int)
	blocked := make(chan struct{}) // closed once the iterator reads never
	unstick := make(chan struct{}) // a bound on the test, for an Imap that never returns
	stuck := time.AfterFunc(10*time.Second, func() { close(unstick) })
	defer stuck.Stop()
	returned := make(chan bool, 1) // what the last yield returned
	input := func(yield func(int) bool) {
		if !yield(7) {
			returned <- false
			return
		}
		close(blocked)
		select {
		case x := <-never:
			returned <- yield(x)
		case <-unstick:
			returned <- true
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got []int
	var errs []error
	var start time.Time
	for y, err := range pool.Imap(cctx, p, square, input) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		got = append(got, y)
		select {
		case <-blocked:
		case <-unstick:
			t.Fatal("the iterator never got to its blocking read")
		}
		select {
		case <-unstick:
			t.Fatal("the result was held back while the iterator blocked")
		default:
		}
		start = time.Now()
		cancel()
	}
	took := time.Since(start)
	assert.Equal(t, []int{49}, got)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], context.Canceled)
	assert.Less(t, took, time.Second, "Imap returned %v after its context was cancelled", took)
	goesOn(t, p, nil)

	select {
	case never <- 42: // the iterator yields again: its yield returns false
	case <-unstick:
		t.Fatal("the iterator no longer reads its channel")
	}
	assert.False(t, <-returned, "the iterator's yield, after Imap returned")
}

// An Imap with automatic batching whose input comes slowly yields each
// result before the next input is read: a batch goes out with the
// inputs read so far, though the batches have grown to many calls
// during a quick first part of the input. The input reads its next
// value only once the result of the last has been yielded.
func TestImapSlowInputLazy(t *testing.T) {
	const quick, slow = 5000, 30
	ctx := bound(t)
	p := newPool(t, pool.Workers(2))
	next := make(chan struct{})
	unstick := make(chan struct{}) // a bound on the test, for an Imap that holds back results
	stuck := time.AfterFunc(10*time.Second, func() { close(unstick) })
	defer stuck.Stop()
	input := func(yield func(int) bool) {
		for i := range quick + slow {
			if i >= quick {
				select {
				case <-next:
				case <-unstick:
					return
				}
			}
			if !yield(i) {
				return
			}
		}
	}
	n := 0
	for y, err := range pool.Imap(ctx, p, square, input) {
		require.NoError(t, err)
		require.Equal(t, n*n, y)
		if n++; n >= quick && n < quick+slow {
			select {
			case next <- struct{}{}:
			case <-unstick:
				t.Fatalf("result %d held back: the input is not read while Imap waits for more", n-1)
			}
		}
	}
	assert.Equal(t, quick+slow, n)
}

// deaf records its pid in the named value, then runs for ever, ignoring
// its context.
var deaf = process.Register("pool-test-deaf", func(ctx context.Context, name string) (int, error) {
	v, err := value.Open[int64](name)
	if err != nil {
		return 0, err
	}
	v.Store(int64(os.Getpid()))
	v.Close()
	for {
		time.Sleep(time.Hour) // its work, which never looks at ctx
	}
})

// alive reports whether process pid exists (a zombie does: it goes once
// reaped).
func alive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return !errors.Is(err, os.ErrNotExist)
}

// Cancelling a Map whose function ignores its context returns ctx.Err()
// within a second; the worker running it is killed once the pool's grace
// period has passed, and replaced; the next Map runs.
func TestCancelDeafFunction(t *testing.T) {
	const grace = 300 * time.Millisecond
	ctx := bound(t)
	p := newPool(t, pool.Workers(2), pool.Grace(grace))
	name, v := counter(t)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := pool.Map(cctx, p, deaf, []string{name})
		done <- err
	}()
	pid := awaitPid(t, ctx, v)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
		assert.Less(t, time.Since(start), time.Second)
	case <-ctx.Done():
		t.Fatal("Map did not return after its context was cancelled")
	}
	require.True(t, waitFor(ctx, func() bool { return !alive(pid) }), "the worker running the function was not killed")
	assert.GreaterOrEqual(t, time.Since(start), grace, "killed before the grace period ended")
	require.True(t, waitFor(ctx, func() bool { return len(p.Pids()) == 2 && !slices.Contains(p.Pids(), pid) }), "no replacement")
	goesOn(t, p, nil)
}
