//go:build linux

package pool_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/pool"
	"github.com/xproc-go/xproc/process"
)

// hogSize is what hog makes resident: far above a worker's own memory.
const hogSize = 128 << 20

var (
	// residentBytes returns its worker's resident memory.
	residentBytes = process.Register("pool-test-rss", func(ctx context.Context, _ int) (int64, error) {
		return residentNow()
	})
	// hog makes hogSize more bytes resident in its worker, in memory it
	// never frees (mapped outside Go's heap: no GC, no race detector
	// shadow), and returns its pid and the square of its input.
	hog = process.Register("pool-test-hog", func(ctx context.Context, x int) (pool.Pair[int, int], error) {
		mem, err := syscall.Mmap(-1, 0, hogSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			return pool.Pair[int, int]{}, err
		}
		for i := 0; i < len(mem); i += os.Getpagesize() {
			mem[i] = 1
		}
		return pool.Pair[int, int]{A: os.Getpid(), B: x * x}, nil
	})
	gomaxprocs = process.Register("pool-test-gomaxprocs", func(ctx context.Context, _ int) (int, error) {
		return runtime.GOMAXPROCS(0), nil
	})
)

// residentNow returns this process's resident memory, as the pool's
// workers measure it (/proc/self/statm).
func residentNow() (int64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("statm: %q", b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()), err
}

// workerMemory returns the most resident memory of a worker of a fresh
// pool, here (the race detector adds to it), in bytes.
func workerMemory(t *testing.T) int64 {
	t.Helper()
	probe := newPool(t, pool.Workers(2), pool.ChunkSize(1))
	sizes, err := pool.Map(bound(t), probe, residentBytes, ints(20))
	require.NoError(t, err)
	require.NoError(t, probe.Terminate())
	base := int64(0)
	for _, s := range sizes {
		require.Positive(t, s)
		base = max(base, s)
	}
	return base
}

// TestMaxRSS: a worker whose resident memory has grown past MaxRSS when
// a batch ends is replaced after that batch, and the batch's results are
// right; workers that stay below it are kept. (The watchdog, which
// would have cut the batch short, is off: this is the check after each
// batch, which catches memory taken within a period of the watchdog's.)
func TestMaxRSS(t *testing.T) {
	ctx := bound(t)
	base := workerMemory(t)
	limit := base + hogSize/2
	t.Logf("a worker's resident memory: %d MiB; MaxRSS %d MiB", base>>20, limit>>20)

	p := newPool(t, pool.Workers(2), pool.ChunkSize(1), pool.MaxRSS(limit), pool.NoWatchdog())
	pidsOf := func(rs []pool.Pair[int, int]) map[int]int {
		t.Helper()
		calls := map[int]int{}
		for i, r := range rs {
			require.Equal(t, i*i, r.B, "result of call %d", i)
			require.NotZero(t, r.A)
			calls[r.A]++
		}
		return calls
	}
	// Below the limit: the workers stay.
	got, err := pool.Map(ctx, p, pidSquare, ints(20))
	require.NoError(t, err)
	kept := pidsOf(got)
	assert.LessOrEqual(t, len(kept), 2, "workers below MaxRSS replaced: %v", got)

	// Above it: a worker runs one batch (one call), then is replaced.
	const n = 6
	got, err = pool.Map(ctx, p, hog, ints(n))
	require.NoError(t, err)
	hogs := pidsOf(got)
	assert.Len(t, hogs, n, "each call in a worker of its own: %v", got)

	// A worker past the limit takes no more batches.
	got, err = pool.Map(ctx, p, pidSquare, ints(20))
	require.NoError(t, err, "the pool goes on")
	for pid := range pidsOf(got) {
		assert.NotContains(t, hogs, pid, "a worker past MaxRSS ran more calls")
	}
}

// TestWorkerGOMAXPROCS: a worker's GOMAXPROCS is, by default, the CPUs
// divided among the workers (at least 1), replacements included; the
// GOMAXPROCS option sets it.
func TestWorkerGOMAXPROCS(t *testing.T) {
	cpus := process.CPUCount()
	for _, c := range []struct {
		name string
		opts []pool.Option
		want int
	}{
		{"default, 1 worker", []pool.Option{pool.Workers(1)}, cpus},
		{"default, 2 workers", []pool.Option{pool.Workers(2)}, max(1, cpus/2)},
		{"default, 3 workers", []pool.Option{pool.Workers(3)}, max(1, cpus/3)},
		{"default, replacements", []pool.Option{pool.Workers(2), pool.MaxTasksPerChild(1)}, max(1, cpus/2)},
		{"GOMAXPROCS(3), 2 workers", []pool.Option{pool.Workers(2), pool.GOMAXPROCS(3)}, 3},
		{"GOMAXPROCS(1), 1 worker", []pool.Option{pool.Workers(1), pool.GOMAXPROCS(1)}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := bound(t)
			p := newPool(t, append(c.opts, pool.ChunkSize(1))...)
			got, err := pool.Map(ctx, p, gomaxprocs, ints(12))
			require.NoError(t, err)
			for i, g := range got {
				assert.Equal(t, c.want, g, "GOMAXPROCS of the worker of call %d (%d CPUs)", i, cpus)
			}
			require.NoError(t, p.Terminate())
		})
	}
}

// gobble, given n, makes n bytes resident in its worker (mapped outside
// Go's heap) and holds them until its context ends; given 0, it returns
// its worker's pid.
var gobble = process.Register("pool-test-gobble", func(ctx context.Context, n int) (int, error) {
	if n == 0 {
		return os.Getpid(), nil
	}
	mem, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(mem); i += os.Getpagesize() {
		mem[i] = 1
	}
	<-ctx.Done()
	return 0, ctx.Err()
})

// TestMaxRSSCap: MaxRSS is a cap. A call that makes 512 MiB resident
// under a cap 64 MiB above a worker's own memory (and would then wait
// for ever) fails quickly with ErrMaxRSS, naming its worker, the
// worker's resident memory and the cap; that worker is replaced, the
// other calls of the Map succeed, and the pool goes on.
func TestMaxRSSCap(t *testing.T) {
	const much = 512 << 20
	ctx := bound(t)
	limit := workerMemory(t) + 64<<20
	p := newPool(t, pool.Workers(2), pool.ChunkSize(1), pool.MaxRSS(limit))
	start := time.Now()
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a bound: without the cap, the call waits for ever
	defer cancel()
	got, err := pool.Map(mctx, p, gobble, []int{0, much, 0, 0, 0})
	took := time.Since(start)
	require.ErrorIs(t, err, pool.ErrMaxRSS)
	var te *pool.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 1, te.Index)
	assert.Contains(t, te.Message, fmt.Sprintf("worker %d: resident memory ", te.Pid))
	assert.Contains(t, te.Message, fmt.Sprintf(" bytes, MaxRSS %d bytes", limit))
	assert.Contains(t, err.Error(), "exceeded MaxRSS")
	assert.Less(t, took, 5*time.Second, "the call failed %v after it started", took)
	t.Logf("failed after %v: %v", took, err)
	for i, pid := range got {
		if i != 1 {
			assert.NotZero(t, pid, "call %d", i)
		}
	}
	require.True(t, waitFor(ctx, func() bool { return !alive(te.Pid) }), "the worker past MaxRSS is still there")
	ys, err := pool.Map(ctx, p, square, ints(100))
	require.NoError(t, err, "the pool goes on")
	assert.Equal(t, squares(100), ys)
	assert.NotContains(t, p.Pids(), te.Pid, "replaced")
}
