package array_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
)

// An Array's lock is a sync.Locker, through the Array.
var _ sync.Locker = (*array.Array[int64])(nil)

func init() {
	// Python's
	//	for _ in range(n):
	//	    with a.get_lock():
	//	        a[0] += 1
	//	        a[1] = a[0] * 2
	// translated as the package documentation says.
	testproc.Register("array-python-idiom", func(args []string) error {
		a, err := array.Open[int64](args[0], 2)
		if err != nil {
			return err
		}
		defer a.Close()
		n, _ := strconv.Atoi(args[1])
		if err := testproc.Ready(); err != nil {
			return err
		}
		for range n {
			a.Lock()
			a.Set(0, a.Get(0)+1)
			a.Set(1, a.Get(0)*2)
			a.Unlock()
		}
		return nil
	})
}

// TestPythonGetLock: the locked methods work inside Lock, which nests.
func TestPythonGetLock(t *testing.T) {
	a, err := array.CreateFrom(testproc.Name(t), []int64{1, 2, 3})
	require.NoError(t, err)
	defer a.Close()
	defer a.Unlink()

	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Lock()
		a.Set(0, a.Get(0)+a.Get(1))
		buf := make([]int64, 3)
		a.ReadAt(buf, 0)
		a.WriteAt([]int64{buf[0] * 10}, 2)
		a.Update(func(s []int64) { s[1] = -s[1] })
		a.Lock()
		a.Set(1, a.Get(1)-1)
		a.Unlock()
		a.Unlock()
	}()
	select {
	case <-done:
	case <-time.After(testproc.Bound):
		t.Fatalf("the locked methods under Lock hang")
	}
	assert.Equal(t, []int64{3, -3, 30}, a.Slice())
	require.True(t, a.TryLock(), "released")
	a.Unlock()

}

// TestLockAcrossProcesses: two processes running the Python idiom and
// this one Update keep the two elements consistent and lose nothing.
func TestLockAcrossProcesses(t *testing.T) {
	const n = 2000
	name := testproc.Name(t)
	a, err := array.Create[int64](name, 2)
	require.NoError(t, err)
	defer a.Close()
	children := testproc.StartTogether(t, 2, "array-python-idiom", name, strconv.Itoa(n))
	for range n {
		a.Update(func(s []int64) {
			if s[1] != s[0]*2 {
				t.Errorf("inconsistent under the lock: %v", s)
			}
			s[0]++
			s[1] = s[0] * 2
		})
	}
	for _, c := range children {
		c.Wait()
	}
	assert.Equal(t, []int64{3 * n, 6 * n}, a.Slice())
	ctx, cancel := context.WithTimeout(context.Background(), testproc.Bound)
	defer cancel()
	require.NoError(t, a.LockContext(ctx))
	a.Unlock()
}

// TestCreateFunc: elements initialised in place, before the name exists.
func TestCreateFunc(t *testing.T) {
	type lane struct {
		Free xsync.Semaphore
		Used int64
	}
	name := testproc.Name(t)
	lanes, err := array.CreateFunc(name, 4, func(s []lane) error {
		_, err := shm.Stat(name)
		assert.ErrorIs(t, err, shm.ErrNotExist, "the name does not exist while init runs")
		for i := range s {
			if err := s[i].Free.Init(i+1, true); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	defer lanes.Close()
	for i := range lanes.Len() {
		assert.Equal(t, i+1, lanes.Slice()[i].Free.Value())
	}

	name2 := testproc.Name(t)
	_, err = array.CreateFunc(name2, 2, func(s []lane) error { return s[1].Free.Init(-1, false) })
	require.ErrorIs(t, err, xsync.ErrInvalid)
	_, err = shm.Stat(name2)
	assert.ErrorIs(t, err, shm.ErrNotExist, "a failed init leaves nothing")
	_, err = array.CreateFunc[lane](name2, 0, nil)
	assert.ErrorIs(t, err, array.ErrInvalidLen)
}
