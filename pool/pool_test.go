//go:build linux

package pool_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/pool"
	"github.com/xproc-go/xproc/process"
	"github.com/xproc-go/xproc/queue"
	"github.com/xproc-go/xproc/value"
)

func TestMain(m *testing.M) {
	process.Init()
	testproc.Main(m)
}

var (
	square = process.Register("pool-test-square", func(ctx context.Context, x int) (int, error) { return x * x, nil })
	mul    = pool.Register2("pool-test-mul", func(ctx context.Context, a, b int) (int, error) { return a * b, nil })
	// pidSquare returns its worker's pid and the square of its input.
	pidSquare = process.Register("pool-test-pid-square", func(ctx context.Context, x int) (pool.Pair[int, int], error) {
		return pool.Pair[int, int]{A: os.Getpid(), B: x * x}, nil
	})
	boom = process.Register("pool-test-panic", func(ctx context.Context, x int) (int, error) {
		if x == 3 {
			panic(fmt.Sprintf("no %d", x))
		}
		return x, nil
	})
	failOdd = process.Register("pool-test-fail-odd", func(ctx context.Context, x int) (int, error) {
		if x%2 == 1 {
			return 0, fmt.Errorf("odd %d", x)
		}
		return x, nil
	})
	// stall records its pid in the named value, then waits for its
	// context to end: a task a test can find and kill.
	stall = process.Register("pool-test-stall", stallIn)
	// countInit counts, in the named value, the workers that start.
	countInit = process.Register("pool-test-count-init", func(ctx context.Context, name string) (struct{}, error) {
		v, err := value.Open[int64](name)
		if err != nil {
			return struct{}{}, err
		}
		defer v.Close()
		v.Add(1)
		return struct{}{}, nil
	})
	badInit = process.Register("pool-test-bad-init", func(ctx context.Context, _ int) (int, error) {
		return 0, errors.New("cannot start")
	})
	words = process.Register("pool-test-words", func(ctx context.Context, s string) ([]string, error) {
		return strings.Fields(s), nil
	})
	// viaJSON's values go through JSON, which drops Hidden both ways
	// (gob would carry it) and refuses a NaN (gob would not).
	viaJSON = process.Register("pool-test-json", func(ctx context.Context, x tagged) (tagged, error) {
		return tagged{A: x.A + x.Hidden, Hidden: 7, Note: x.Note + "!"}, nil
	}, process.Encoding(queue.JSONCodec))
)

// tagged is not fixed-size (Note), so a pool encodes it with a codec.
type tagged struct {
	A      int
	Hidden int `json:"-"`
	Note   string
	F      float64
}

func bound(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testproc.Bound)
	t.Cleanup(cancel)
	return ctx
}

func newPool(t *testing.T, opts ...pool.Option) *pool.Pool {
	t.Helper()
	p, err := pool.New(bound(t), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { p.Terminate() })
	return p
}

func squares(n int) []int {
	var out []int
	for i := range n {
		out = append(out, i*i)
	}
	return out
}

// stallIn records its pid in the named value, then waits for its context
// to end (stall).
func stallIn(ctx context.Context, name string) (int, error) {
	v, err := value.Open[int64](name)
	if err != nil {
		return 0, err
	}
	defer v.Close()
	v.Store(int64(os.Getpid()))
	<-ctx.Done()
	return 0, ctx.Err()
}

func ints(n int) []int {
	xs := make([]int, n)
	for i := range xs {
		xs[i] = i
	}
	return xs
}

// The lessons' programs.
func TestLessons(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2))

	got, err := pool.Map(ctx, p, square, ints(10))
	require.NoError(t, err)
	assert.Equal(t, squares(10), got, "map(square, range(10))")

	var seen []int
	for y, err := range pool.Imap(ctx, p, square, slices.Values(ints(10))) {
		require.NoError(t, err)
		seen = append(seen, y)
	}
	assert.Equal(t, squares(10), seen, "imap yields in order")

	seen = nil
	for y, err := range pool.ImapUnordered(ctx, p, square, slices.Values(ints(10))) {
		require.NoError(t, err)
		seen = append(seen, y)
	}
	slices.Sort(seen)
	assert.Equal(t, squares(10), seen, "imap_unordered yields all")

	prods, err := pool.Starmap(ctx, p, mul, []pool.Pair[int, int]{{1, 2}, {3, 4}, {5, 6}})
	require.NoError(t, err)
	assert.Equal(t, []int{2, 12, 30}, prods, "starmap(mul, [(1, 2), (3, 4), (5, 6)])")

	y, err := pool.Apply(ctx, p, square, 12)
	require.NoError(t, err)
	assert.Equal(t, 144, y)
	fut := pool.ApplyAsync(ctx, p, square, 5)
	y, err = fut.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 25, y)

	// Values that are not fixed-size go through gob.
	ws, err := pool.Map(ctx, p, words, []string{"a b", "", "c"})
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"a", "b"}, nil, {"c"}}, ws)

	require.NoError(t, p.Close(ctx))
	_, err = pool.Map(ctx, p, square, ints(3))
	assert.ErrorIs(t, err, pool.ErrClosed)
	assert.NoError(t, p.Close(ctx), "Close again")
	assert.NoError(t, p.Terminate(), "Terminate after Close")
}

// Pool(5) over three items, as the lessons do.
func TestMoreWorkersThanItems(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(5))
	assert.Equal(t, 5, p.Workers())
	assert.Len(t, p.Pids(), 5)
	got, err := pool.Map(ctx, p, square, []int{1, 2, 3})
	require.NoError(t, err)
	assert.Equal(t, []int{1, 4, 9}, got)
	empty, err := pool.Map(ctx, p, square, nil)
	require.NoError(t, err)
	assert.Empty(t, empty)
}

// Many inputs, batched automatically and by hand: every result right.
func TestBatching(t *testing.T) {
	ctx := bound(t)
	for _, chunk := range []int{0, 1, 7, 1000} {
		t.Run(fmt.Sprintf("chunk %d", chunk), func(t *testing.T) {
			p := newPool(t, pool.Workers(2), pool.ChunkSize(chunk))
			got, err := pool.Map(ctx, p, square, ints(20000))
			require.NoError(t, err)
			assert.Equal(t, squares(20000), got)
			var n int
			for y, err := range pool.Imap(ctx, p, square, slices.Values(ints(5000))) {
				require.NoError(t, err)
				require.Equal(t, n*n, y)
				n++
			}
			assert.Equal(t, 5000, n)
		})
	}
}

func TestTaskErrors(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2))
	got, err := pool.Map(ctx, p, boom, ints(6))
	var te *pool.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 3, te.Index)
	assert.True(t, te.Panic)
	assert.Equal(t, "no 3", te.Message)
	assert.Contains(t, te.Stack, "pool_test.go", "the worker's stack")
	assert.Contains(t, p.Pids(), te.Pid)
	assert.Equal(t, []int{0, 1, 2, 0, 4, 5}, got, "the other calls' results are there")

	// The pool stays usable; errors of each call in Imap.
	var errs, oks int
	for _, err := range pool.Imap(ctx, p, failOdd, slices.Values(ints(10))) {
		if err != nil {
			require.ErrorAs(t, err, &te)
			assert.Equal(t, fmt.Sprintf("odd %d", te.Index), te.Message)
			errs++
		} else {
			oks++
		}
	}
	assert.Equal(t, 5, errs)
	assert.Equal(t, 5, oks)

	// A function the workers do not have (registered in this process
	// only) fails its calls with ErrUnknownFunc.
	_, err = pool.Apply(ctx, p, parentOnly, 1)
	assert.ErrorIs(t, err, process.ErrUnknownFunc)
}

// parentOnly is registered in the test process and not in its workers.
var parentOnly process.Func[int, int]

func init() {
	if !process.IsWorker() {
		parentOnly = process.Register("pool-test-parent-only", func(ctx context.Context, x int) (int, error) { return x, nil })
	}
}

// TestWorkerKilled: kill -9 of the worker in the middle of a call. That
// call fails with ErrWorkerDied, naming the worker and the signal, the
// others succeed, a replacement starts, and the next Map succeeds.
func TestWorkerKilled(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2))
	name, v := counter(t)

	fut := pool.ApplyAsync(ctx, p, stall, name)
	pid := awaitPid(t, ctx, v)
	before := p.Pids()
	require.Contains(t, before, pid)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	_, err := fut.Wait(ctx)
	require.ErrorIs(t, err, pool.ErrWorkerDied)
	var te *pool.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, pid, te.Pid)
	assert.Contains(t, err.Error(), "killed")
	var ee *process.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, syscall.SIGKILL, ee.Signal)

	got, err := pool.Map(ctx, p, square, ints(100))
	require.NoError(t, err)
	assert.Equal(t, squares(100), got)
	assert.NotContains(t, p.Pids(), pid, "replaced")
	deadline := time.Now().Add(testproc.Bound)
	for len(p.Pids()) != 2 {
		require.True(t, time.Now().Before(deadline), "no replacement worker")
		time.Sleep(time.Millisecond) // observing the replacement start
	}
}

// TestRetries: with a retry, the call of a killed worker runs again.
func TestRetries(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2), pool.Retries(1))
	name, v := counter(t)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fut := pool.ApplyAsync(cctx, p, stall, name)
	pid := awaitPid(t, ctx, v)
	v.Store(0)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	var again int
	for again == 0 {
		again = int(v.Load()) // the call runs again, in another worker
		time.Sleep(time.Millisecond)
	}
	assert.NotEqual(t, pid, again)
	cancel()
	_, err := fut.Wait(ctx)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestMaxTasksPerChild: a worker runs at most 2 calls, then is replaced;
// every call's result is right.
func TestMaxTasksPerChild(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2), pool.MaxTasksPerChild(2))
	got, err := pool.Map(ctx, p, pidSquare, ints(20))
	require.NoError(t, err)
	calls := map[int]int{}
	for i, r := range got {
		assert.Equal(t, i*i, r.B, "result of call %d", i)
		require.NotZero(t, r.A, "call %d has no pid", i)
		calls[r.A]++
	}
	for pid, n := range calls {
		assert.LessOrEqual(t, n, 2, "worker %d ran %d calls: %v", pid, n, got)
	}
	assert.GreaterOrEqual(t, len(calls), 10, "pids %v", got)
}

func TestInitializer(t *testing.T) {
	ctx := bound(t)
	name, v := counter(t)
	p := newPool(t, pool.Workers(3), pool.Initializer(countInit, name))
	assert.Equal(t, int64(3), v.Load(), "once per worker, before New returns")
	_, err := pool.Map(ctx, p, square, ints(100))
	require.NoError(t, err)
	assert.Equal(t, int64(3), v.Load())

	_, err = pool.New(ctx, pool.Workers(2), pool.Initializer(badInit, 0))
	require.ErrorIs(t, err, pool.ErrBroken)
	assert.Contains(t, err.Error(), "cannot start")
}

// TestCancel: cancelling a Map returns ctx.Err() within a second; the
// workers running its calls are stopped and replaced; once the pool is
// closed, no worker is left, and no segment: no file left in the
// segment directory, and no anonymous segment still open or mapped.
func TestCancel(t *testing.T) {
	ctx := bound(t)
	segs := anonymousSegments(t)
	p := newPool(t, pool.Workers(2), pool.Grace(100*time.Millisecond))
	require.Greater(t, anonymousSegments(t), segs, "the pool's queues are anonymous segments, open and mapped")
	before := p.Pids()
	name, v := counter(t)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := pool.Map(cctx, p, stall, []string{name, name, name})
		done <- err
	}()
	for v.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
		assert.Less(t, time.Since(start), time.Second)
	case <-time.After(testproc.Bound):
		t.Fatal("Map did not return after its context was cancelled")
	}
	// The pool goes on with fresh workers.
	got, err := pool.Map(ctx, p, square, ints(10))
	require.NoError(t, err)
	assert.Equal(t, squares(10), got)

	require.NoError(t, p.Close(ctx))
	assertGone(t, append(before, p.Pids()...))
	ents, err := os.ReadDir(os.Getenv("XPROC_SHM_DIR"))
	require.NoError(t, err)
	for _, e := range ents {
		assert.Equal(t, name, e.Name(), "segment left behind")
	}
	assert.Equal(t, segs, anonymousSegments(t), "anonymous segments still open or mapped after Close")
}

// anonymousSegments counts the descriptors and mappings of anonymous
// segments (memfds named xproc) in this process.
func anonymousSegments(t *testing.T) int {
	t.Helper()
	n := 0
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "/memfd:xproc") {
			n++
		}
	}
	maps, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	return n + strings.Count(string(maps), "/memfd:xproc")
}

// TestManyApply: a thousand goroutines calling Apply on one pool at once.
func TestManyApply(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2))
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			y, err := pool.Apply(ctx, p, square, i)
			if err == nil && y != i*i {
				err = fmt.Errorf("square(%d) = %d", i, y)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestProgress(t *testing.T) {
	ctx := bound(t)
	var mu sync.Mutex
	var seen [][2]int
	p := newPool(t, pool.Workers(2), pool.Progress(func(done, total int) {
		mu.Lock()
		seen = append(seen, [2]int{done, total})
		mu.Unlock()
	}))
	_, err := pool.Map(ctx, p, square, ints(50))
	require.NoError(t, err)
	require.NotEmpty(t, seen)
	assert.Equal(t, [2]int{50, 50}, seen[len(seen)-1])
	for i := 1; i < len(seen); i++ {
		assert.Less(t, seen[i-1][0], seen[i][0], "each report is news: %v", seen)
	}
	seen = nil
	for _, err := range pool.Imap(ctx, p, square, slices.Values(ints(20))) {
		require.NoError(t, err)
	}
	require.NotEmpty(t, seen)
	assert.Equal(t, [2]int{20, 20}, seen[len(seen)-1])
	for i, s := range seen {
		if s[1] == 20 {
			for _, later := range seen[i:] {
				assert.Equal(t, 20, later[1], "the total is known once the input ends: %v", seen)
			}
			break
		}
		assert.Equal(t, -1, s[1], "unknown while the input runs")
	}
	// Left before its end, once its input has ended: the last report
	// gives the total, not -1.
	seen = nil
	n := 0
	for _, err := range pool.Imap(ctx, p, square, slices.Values(ints(20))) {
		require.NoError(t, err)
		if n++; n == 19 {
			break
		}
	}
	require.NotEmpty(t, seen)
	if last := seen[len(seen)-1]; last[0] >= 19 {
		assert.Equal(t, 20, last[1], "the input had ended: %v", seen)
	}
	seen = nil
	_, err = pool.Starmap(ctx, p, mul, []pool.Pair[int, int]{{A: 2, B: 3}})
	require.NoError(t, err)
	assert.Equal(t, [][2]int{{1, 1}}, seen)

	var out strings.Builder
	pv := newPool(t, pool.Workers(2), pool.Verbose(&out))
	_, err = pool.Map(ctx, pv, square, ints(10))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	assert.Regexp(t, `^\[Pool\(n_jobs=2\)\]: Done  10 out of  10 \| elapsed: +\d+\.\ds finished$`, lines[len(lines)-1])
	// A line at 1, 2, 4 and 8 calls done, or at the first count past
	// each when answers come together.
	assert.Regexp(t, `^\[Pool\(n_jobs=2\)\]: Done +\d+ out of  10 \| elapsed: `, lines[0])
	assert.LessOrEqual(t, len(lines), 5)
}

func init() {
	// pool-parent: start a pool, print its workers' pids and start
	// times, and wait to be killed.
	testproc.Register("pool-parent", func(args []string) error {
		p, err := pool.New(context.Background(), pool.Workers(2))
		if err != nil {
			return err
		}
		for _, pid := range p.Pids() {
			if err := testproc.SayProcess("worker", pid); err != nil {
				return err
			}
		}
		testproc.Say("ready")
		return testproc.Await("never")
	})
}

// TestParentKilled: when the pool's parent is killed with SIGKILL, every
// worker exits.
func TestParentKilled(t *testing.T) {
	c := testproc.Start(t, "pool-parent")
	var ids []owner.ID
	for range 2 {
		ids = append(ids, c.ExpectProcess("worker"))
	}
	c.Expect("ready")
	c.Kill()
	c.WaitKilled()
	testproc.AwaitExit(t, ids...)
}

func TestWorkersCount(t *testing.T) {
	n := process.CPUCount()
	for _, c := range []struct{ opt, want int }{{0, n}, {3, 3}, {-1, n}, {-2, max(1, n-1)}, {-1000, 1}} {
		p := newPool(t, pool.Workers(c.opt))
		assert.Equal(t, c.want, p.Workers(), "Workers(%d)", c.opt)
		p.Terminate()
	}
}

// A function registered with Encoding has its arguments and results encoded
// with that codec on both sides, in Map and Apply, and an encoding error
// of that codec fails only its call.
func TestEncoding(t *testing.T) {
	ctx := bound(t)
	p := newPool(t, pool.Workers(2))
	assert.Equal(t, queue.JSONCodec, viaJSON.Codec())
	assert.Equal(t, queue.GobCodec, square.Codec())
	ys, err := pool.Map(ctx, p, viaJSON, []tagged{{A: 1, Hidden: 100, Note: "a"}, {A: 2, Hidden: 200, Note: "b"}})
	require.NoError(t, err)
	assert.Equal(t, []tagged{{A: 1, Note: "a!"}, {A: 2, Note: "b!"}}, ys, "Hidden dropped on the way out and back")
	y, err := pool.Apply(ctx, p, viaJSON, tagged{A: 3, Hidden: 5, Note: "c"})
	require.NoError(t, err)
	assert.Equal(t, tagged{A: 3, Note: "c!"}, y)

	_, err = pool.Map(ctx, p, viaJSON, []tagged{{A: 1}, {A: 2, F: math.NaN()}, {A: 3}})
	var te *pool.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 1, te.Index)
	assert.ErrorIs(t, err, process.ErrCodec)
	assert.Contains(t, te.Message, "NaN")
	ys, err = pool.Map(ctx, p, viaJSON, []tagged{{A: 4, Hidden: 1}})
	require.NoError(t, err, "the pool goes on")
	assert.Equal(t, []tagged{{A: 4, Note: "!"}}, ys)
}

// nanAt2 returns, for 2, a result JSON cannot encode (a NaN), and x
// itself otherwise.
var nanAt2 = process.Register("pool-test-nan-at-2", func(ctx context.Context, x int) (tagged, error) {
	r := tagged{A: x}
	if x == 2 {
		r.F = math.NaN()
	}
	return r, nil
}, process.Encoding(queue.JSONCodec))

// A result that cannot be encoded in the worker fails its call alone,
// with process.ErrCodec and the codec's message, naming the worker; the
// other results of its batch (ChunkSize(5): all in one, which is then
// sent in parts) and of the call are right, in Map and in Imap, and the
// pool goes on.
func TestResultEncodeError(t *testing.T) {
	for _, chunk := range []int{1, 5} {
		t.Run(fmt.Sprintf("chunk %d", chunk), func(t *testing.T) {
			ctx := bound(t)
			p := newPool(t, pool.Workers(2), pool.ChunkSize(chunk))
			check := func(err error) {
				t.Helper()
				var te *pool.TaskError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, 2, te.Index)
				assert.ErrorIs(t, err, process.ErrCodec)
				assert.Contains(t, te.Message, "result")
				assert.Contains(t, te.Message, "NaN")
				assert.Contains(t, p.Pids(), te.Pid, "the worker that could not encode it")
			}
			got, err := pool.Map(ctx, p, nanAt2, ints(5))
			check(err)
			for i, r := range got {
				if i != 2 {
					assert.Equal(t, tagged{A: i}, r, "call %d", i)
				}
			}
			i := 0
			for r, err := range pool.Imap(ctx, p, nanAt2, slices.Values(ints(5))) {
				if i == 2 {
					check(err)
				} else {
					require.NoError(t, err)
					assert.Equal(t, tagged{A: i}, r, "call %d", i)
				}
				i++
			}
			assert.Equal(t, 5, i)
			ys, err := pool.Map(ctx, p, square, ints(10))
			require.NoError(t, err, "the pool goes on")
			assert.Equal(t, squares(10), ys)
		})
	}
}

// MapAsync: Python's map_async. The call is under way when it returns,
// so Close finishes it; a failed call's Future holds its *TaskError;
// after Close, the Future is done at once with ErrClosed.
func TestMapAsync(t *testing.T) {
	ctx := bound(t)
	p, err := pool.New(ctx, pool.Workers(2))
	require.NoError(t, err)
	defer p.Terminate()
	big := pool.MapAsync(ctx, p, square, ints(5000))
	odd := pool.MapAsync(ctx, p, failOdd, ints(10))
	_, err = odd.Wait(ctx)
	var te *pool.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 1, te.Index)
	require.NoError(t, p.Close(ctx))
	ys, err := big.Wait(ctx)
	require.NoError(t, err, "Close finished the call under way")
	assert.Equal(t, squares(5000), ys)
	_, err = pool.MapAsync(ctx, p, square, ints(3)).Wait(ctx)
	assert.ErrorIs(t, err, pool.ErrClosed)
}
