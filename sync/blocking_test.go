package sync_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	xsync "github.com/xproc-go/xproc/sync"
)

// blockShared holds one of each primitive, every one of them in a state
// that blocks: the mutexes are held by a child, the semaphore is 0, the
// event clear, the barrier short of parties.
type blockShared struct {
	Mu  xsync.Mutex
	RMu xsync.ReentrantMutex
	Sem xsync.Semaphore
	Ev  xsync.Event
	CMu xsync.Mutex
	C   xsync.Cond
	B   xsync.Barrier
}

func init() {
	testproc.Register("block-hold", func(args []string) error {
		sh, err := openShared[blockShared](args[0])
		if err != nil {
			return err
		}
		sh.Mu.Lock()
		sh.RMu.Lock()
		testproc.Say("holding")
		return testproc.Await("release")
	})
}

// blockingCalls are every blocking call in the package, each given a
// context, against a blockShared set up by setupBlocking.
var blockingCalls = []struct {
	name   string
	call   func(ctx context.Context, sh *blockShared) error
	asleep func(sh *blockShared) bool // the call has reached its sleep
}{
	{"Mutex.LockContext", func(ctx context.Context, sh *blockShared) error { return sh.Mu.LockContext(ctx) },
		func(sh *blockShared) bool { return xsync.Asleep(&sh.Mu) }},
	{"ReentrantMutex.LockContext", func(ctx context.Context, sh *blockShared) error { return sh.RMu.LockContext(ctx) },
		func(sh *blockShared) bool { return xsync.Asleep(&sh.RMu) }},
	{"Semaphore.AcquireContext", func(ctx context.Context, sh *blockShared) error { return sh.Sem.AcquireContext(ctx) },
		func(sh *blockShared) bool { return xsync.Asleep(&sh.Sem) }},
	{"Event.WaitContext", func(ctx context.Context, sh *blockShared) error { return sh.Ev.WaitContext(ctx) },
		func(sh *blockShared) bool { return xsync.Asleep(&sh.Ev) }},
	{"Cond.WaitContext", func(ctx context.Context, sh *blockShared) error {
		sh.CMu.Lock()
		defer sh.CMu.Unlock()
		return sh.C.WaitContext(ctx, &sh.CMu)
	}, func(sh *blockShared) bool { return xsync.Asleep(&sh.C) }},
	{"Cond.WaitFor", func(ctx context.Context, sh *blockShared) error {
		sh.CMu.Lock()
		defer sh.CMu.Unlock()
		_, err := sh.C.WaitFor(ctx, &sh.CMu, func() bool { return false })
		return err
	}, func(sh *blockShared) bool { return xsync.Asleep(&sh.C) }},
	{"Barrier.WaitContext", func(ctx context.Context, sh *blockShared) error {
		_, err := sh.B.WaitContext(ctx)
		sh.B.Reset()
		return err
	}, func(sh *blockShared) bool { return xsync.Asleep(&sh.B) }},
}

func setupBlocking(t *testing.T) (*blockShared, string) {
	name, sh := createShared[blockShared](t)
	require.NoError(t, sh.B.Init(2, 0))
	c := testproc.Start(t, "block-hold", name)
	c.Expect("holding")
	t.Cleanup(func() {
		c.Send("release")
		c.Wait()
	})
	return sh, name
}

func TestCancelIsPrompt(t *testing.T) {
	sh, _ := setupBlocking(t)
	for _, bc := range blockingCalls {
		t.Run(bc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			got := make(chan error, 1)
			go func() { got <- bc.call(ctx, sh) }()
			eventually(t, "the call sleeps", func() bool { return bc.asleep(sh) })
			start := time.Now()
			cancel()
			err := <-got
			took := time.Since(start)
			assert.ErrorIs(t, err, context.Canceled)
			assert.Less(t, took, 250*time.Millisecond, "cancellation must end a blocked wait promptly")
		})
	}
}

func TestDeadlineIsKept(t *testing.T) {
	sh, _ := setupBlocking(t)
	for _, bc := range blockingCalls {
		t.Run(bc.name, func(t *testing.T) {
			const d = 60 * time.Millisecond
			start := time.Now()
			ctx, cancel := timeoutCtx(d)
			defer cancel()
			err := bc.call(ctx, sh)
			took := time.Since(start)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.GreaterOrEqual(t, took, d)
			assert.Less(t, took, d+250*time.Millisecond)
		})
	}
}

// threads returns the number of OS threads of this process.
func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

func TestThousandWaitersFewThreads(t *testing.T) {
	// 1,000 goroutines blocked on one Mutex held by another process, and
	// 1,000 on one Event, must not become 2,000 OS threads.
	sh, _ := setupBlocking(t)
	base := threads(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var started sync.WaitGroup
	errs := make(chan error, 2000)
	for i := range 2000 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			if i%2 == 0 {
				errs <- sh.Mu.LockContext(ctx)
			} else {
				errs <- sh.Ev.WaitContext(ctx)
			}
		}()
	}
	started.Wait()
	// Watch the thread count while they settle into their sleeps. A
	// design that gives each sleeper a thread grows by hundreds within
	// milliseconds; sample for a while and keep the peak.
	peak := 0
	for range 50 {
		peak = max(peak, threads(t))
		time.Sleep(4 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.True(t, errors.Is(err, context.Canceled), "got %v", err)
	}
	t.Logf("threads: %d before, peak %d while 2000 goroutines waited", base, peak)
	assert.LessOrEqual(t, peak-base, 16, "threads added by blocked goroutines")
}

func TestCloseWakesWaiters(t *testing.T) {
	name := testproc.Name(t)
	e, err := xsync.CreateEvent(name)
	require.NoError(t, err)
	got := make(chan error, 3)
	for range 3 {
		go func() { got <- e.WaitContext(context.Background()) }()
	}
	eventually(t, "waiters asleep", func() bool { return xsync.Sleepers(e) == 3 })
	require.NoError(t, e.Close())
	for range 3 {
		assert.ErrorIs(t, <-got, xsync.ErrClosed)
	}
	require.NoError(t, e.Close(), "Close is idempotent")
}

func TestOpenWrongKind(t *testing.T) {
	name := testproc.Name(t)
	b, err := xsync.CreateBarrier(name, 2, 0)
	require.NoError(t, err)
	defer b.Close()
	_, err = xsync.OpenMutex(name)
	assert.ErrorIs(t, err, shmErrKind)
	_, err = xsync.CreateMutex(name)
	assert.ErrorIs(t, err, shmErrExist)
	_, err = xsync.OpenEvent(name + "-missing")
	assert.ErrorIs(t, err, shmErrNotExist)
	_, err = xsync.OpenSemaphore("bad/name")
	assert.ErrorIs(t, err, shmErrInvalidName)
	_, err = xsync.CreateBarrier(testproc.Name(t), 0, 0)
	assert.ErrorIs(t, err, xsync.ErrInvalid)
}
