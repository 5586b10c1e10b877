package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/queue"
)

// The tests of CPython's Lib/test/_test_multiprocessing.py (_TestQueue:
// test_put, test_get, test_fork, test_qsize, test_task_done), ported:
// every child is a separate process.

// Python's TIMEOUT1..3 are 0.1, 0.82 and 0.1 s; one is enough here.
const pyTimeout = 100 * time.Millisecond

func init() {
	testproc.Register("py-get-all", func(args []string) error {
		q, err := queue.Open(args[0])
		if err != nil {
			return err
		}
		if err := testproc.Await("start"); err != nil {
			return err
		}
		for range testproc.Atoi(args[1]) {
			if _, err := q.Get(bg); err != nil {
				return err
			}
		}
		testproc.Say("done")
		return nil
	})
	testproc.Register("py-put-range", func(args []string) error {
		q, err := queue.Open(args[0])
		if err != nil {
			return err
		}
		if len(args) > 3 {
			if err := testproc.Await("start"); err != nil {
				return err
			}
		}
		for i := testproc.Atoi(args[1]); i < testproc.Atoi(args[2]); i++ {
			if err := q.Put(bg, []byte(strconv.Itoa(i))); err != nil {
				return err
			}
		}
		testproc.Say("done")
		return nil
	})
	testproc.Register("py-task-worker", func(args []string) error {
		q, err := queue.Open(args[0])
		if err != nil {
			return err
		}
		for {
			msg, err := q.Get(bg)
			if err != nil {
				return err
			}
			if string(msg) == "None" {
				return nil
			}
			if err := q.TaskDone(); err != nil {
				return err
			}
		}
	})
}

// timedErr checks that f fails with want after about d.
func timedErr(t *testing.T, d time.Duration, f func(ctx context.Context) error, want ...error) {
	t.Helper()
	start := time.Now()
	ctx, cancel := timeout(d)
	defer cancel()
	err := f(ctx)
	took := time.Since(start)
	for _, w := range want {
		require.ErrorIs(t, err, w)
	}
	assert.GreaterOrEqual(t, took, d)
	assert.Less(t, took, d+time.Second, "generous bound")
}

func TestPythonPut(t *testing.T) {
	const maxsize = 6
	name, q := create(t, queue.Options{MaxMessages: maxsize})
	child := testproc.Start(t, "py-get-all", name, strconv.Itoa(maxsize))
	assert.Equal(t, 0, q.Len(), "empty")
	assert.Equal(t, maxsize, q.Cap())
	assert.Less(t, q.Len(), q.Cap(), "not full")
	for i := range maxsize {
		if i%2 == 0 {
			require.NoError(t, q.Put(bg, []byte{byte(i)}))
		} else {
			require.NoError(t, q.TryPut([]byte{byte(i)}))
		}
	}
	assert.Equal(t, maxsize, q.Len(), "full")
	testproc.Within(t, 100*time.Millisecond, "TryPut on a full queue", func() {
		require.ErrorIs(t, q.TryPut([]byte{7}), queue.ErrFull)
	})
	// Python's put(timeout=t) raises Full.
	timedErr(t, pyTimeout, func(ctx context.Context) error { return q.Put(ctx, []byte{7}) }, queue.ErrFull, context.DeadlineExceeded)
	child.Send("start")
	child.Expect("done")
	child.Wait()
	assert.Equal(t, 0, q.Len(), "empty after the child took all")
}

func TestPythonGet(t *testing.T) {
	name, q := create(t, queue.Options{})
	child := testproc.Start(t, "py-put-range", name, "2", "6", "wait")
	child.Send("start")
	child.Expect("done")
	child.Wait()
	for i := 2; i < 6; i++ {
		msg, err := q.Get(bg)
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(i), string(msg))
	}
	testproc.Within(t, 100*time.Millisecond, "TryGet on an empty queue", func() {
		_, err := q.TryGet()
		require.ErrorIs(t, err, queue.ErrEmpty)
	})
	// Python's get(timeout=t) raises Empty.
	timedErr(t, pyTimeout, func(ctx context.Context) error { _, err := q.Get(ctx); return err }, queue.ErrEmpty, context.DeadlineExceeded)
}

func TestPythonFork(t *testing.T) {
	name, q := create(t, queue.Options{})
	for i := range 10 {
		require.NoError(t, q.Put(bg, []byte(strconv.Itoa(i))))
	}
	child := testproc.Start(t, "py-put-range", name, "10", "20")
	for i := range 20 {
		msg, err := q.Get(bg)
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(i), string(msg))
	}
	child.Wait()
}

func TestPythonQsize(t *testing.T) {
	_, q := create(t, queue.Options{})
	var sizes []int
	sizes = append(sizes, q.Len())
	require.NoError(t, q.Put(bg, []byte{1}))
	sizes = append(sizes, q.Len())
	require.NoError(t, q.Put(bg, []byte{5}))
	sizes = append(sizes, q.Len())
	_, err := q.Get(bg)
	require.NoError(t, err)
	sizes = append(sizes, q.Len())
	_, err = q.Get(bg)
	require.NoError(t, err)
	sizes = append(sizes, q.Len())
	assert.Equal(t, []int{0, 1, 2, 1, 0}, sizes)
}

func TestPythonTaskDone(t *testing.T) {
	name, q := create(t, queue.Options{})
	var workers []*testproc.Child
	for range 4 {
		workers = append(workers, testproc.Start(t, "py-task-worker", name))
	}
	for i := range 10 {
		require.NoError(t, q.Put(bg, []byte(strconv.Itoa(i))))
	}
	ctx, cancel := timeout(testproc.Bound)
	defer cancel()
	require.NoError(t, q.Join(ctx))
	assert.Equal(t, 0, q.Len())
	for range workers {
		require.NoError(t, q.Put(bg, []byte("None")))
	}
	for _, w := range workers {
		w.Wait()
	}
	// Python's ValueError: one TaskDone too many.
	for range 4 {
		require.NoError(t, q.TaskDone()) // the four "None"s
	}
	require.ErrorIs(t, q.TaskDone(), queue.ErrTaskDone)
}

var _ = errors.Is
var _ = fmt.Sprint
