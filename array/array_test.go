package array_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
	"github.com/xproc-go/xproc/value"
)

func init() {
	testproc.Register("array-running-sums", func(args []string) error {
		a, err := array.Open[int32](args[0], testproc.Atoi(args[1]))
		if err != nil {
			return err
		}
		defer a.Close()
		a.Update(func(s []int32) {
			for i := 1; i < len(s); i++ {
				s[i] += s[i-1]
			}
		})
		return nil
	})
	testproc.Register("array-check-zero-then-fill", func(args []string) error {
		a, err := array.Open[float64](args[0], 0)
		if err != nil {
			return err
		}
		defer a.Close()
		for i, x := range a.Slice() {
			if x != 0 {
				return fmt.Errorf("element %d of a new array is %v", i, x)
			}
		}
		for i := range a.Slice() {
			a.Slice()[i] = float64(i) + 0.5
		}
		return nil
	})
	testproc.Register("array-count", func(args []string) error {
		a, err := array.Open[int64](args[0], 2)
		if err != nil {
			return err
		}
		defer a.Close()
		testproc.Say("ready")
		// The parent sets element 1 to start both at once: spinning
		// starts this process within a fraction of a microsecond.
		for a.AtomicLoad(1) == 0 {
		}
		count(a, args[1], testproc.Atoi(args[2]))
		return nil
	})
	testproc.Register("array-subword", func(args []string) error {
		a, err := array.Open[uint16](args[0], 4)
		if err != nil {
			return err
		}
		defer a.Close()
		for range testproc.Atoi(args[1]) {
			a.Add(1, 1)
			a.Add(3, 2)
		}
		return nil
	})
	testproc.Register("array-anonymous", func(args []string) error {
		a, err := array.OpenFile[float64](os.NewFile(3, "array"), 0)
		if err != nil {
			return err
		}
		defer a.Close()
		if got := fmt.Sprint(a.Shape()); got != args[0] {
			return fmt.Errorf("shape %s, want %s", got, args[0])
		}
		for i := range a.Len() {
			a.Set(i, 2*a.Get(i))
		}
		return nil
	})
}

// TestCPythonSequence follows CPython's test_multiprocessing test_array:
// length, an element, a sub-range, a range write, and a child that
// replaces the contents with running sums in place.
func TestCPythonSequence(t *testing.T) {
	seq := []int32{680, 626, 934, 821, 150, 233, 548, 982, 714, 831}
	name := testproc.Name(t)
	a, err := array.CreateFrom(name, seq)
	require.NoError(t, err)
	defer a.Close()

	assert.Equal(t, len(seq), a.Len())
	assert.Equal(t, int32(821), a.Get(3))
	sub := make([]int32, 5)
	assert.Equal(t, 5, a.ReadAt(sub, 2))
	assert.Equal(t, seq[2:7], sub)

	want := slices.Clone(seq)
	copy(want[4:8], []int32{1, 2, 3, 4})
	assert.Equal(t, 4, a.WriteAt([]int32{1, 2, 3, 4}, 4))
	all := make([]int32, 20)
	assert.Equal(t, 10, a.ReadAt(all, 0), "ReadAt copies what there is")
	assert.Equal(t, want, all[:10])

	testproc.Start(t, "array-running-sums", name, "10").Wait()
	for i := 1; i < len(want); i++ {
		want[i] += want[i-1]
	}
	assert.Equal(t, want, a.Slice())
}

// TestZeroedEveryTime: an array created by size is all zeros, each of
// three times under the same name, though a child fills it each time.
func TestZeroedEveryTime(t *testing.T) {
	name := testproc.Name(t)
	const n = 3000 // several pages
	for round := range 3 {
		a, err := array.Create[float64](name, n)
		require.NoError(t, err)
		for i := range n {
			require.Zero(t, a.Get(i), "round %d, element %d", round, i)
		}
		testproc.Start(t, "array-check-zero-then-fill", name).Wait()
		assert.Equal(t, n-0.5, a.Get(n-1), "the child filled it")
		require.NoError(t, a.Unlink())
		require.NoError(t, a.Close())
	}
}

func count(a *array.Array[int64], mode string, n int) {
	switch mode {
	case "atomic":
		for range n {
			a.Add(0, 1)
		}
	case "plain":
		s := a.Slice()
		for range n {
			s[0]++
		}
	default:
		panic("unknown mode " + mode)
	}
}

// countTogether has this process and a child add 1 to element 0 of a
// fresh array increments times each, starting together, and returns the
// total.
func countTogether(t *testing.T, mode string) int64 {
	name := testproc.Name(t)
	a, err := array.Create[int64](name, 2)
	require.NoError(t, err)
	defer a.Close()
	c := testproc.Start(t, "array-count", name, mode, strconv.Itoa(increments))
	c.Expect("ready")
	a.AtomicStore(1, 1)
	count(a, mode, increments)
	c.Wait()
	return a.AtomicLoad(0)
}

func TestAtomicAddCountsExactly(t *testing.T) {
	assert.Equal(t, int64(2*increments), countTogether(t, "atomic"))
}

// TestPlainIncrementsMayLoseUpdates documents what Slice gives up: two
// processes adding to the same element without atomics may lose updates.
func TestPlainIncrementsMayLoseUpdates(t *testing.T) {
	got := countTogether(t, "plain")
	assert.Positive(t, got)
	assert.LessOrEqual(t, got, int64(2*increments))
	t.Logf("plain increments: %d of %d kept, %d lost", got, 2*increments, 2*increments-got)
}

// TestSubwordAtomicsAcrossProcesses: two processes add atomically to
// neighbouring 16-bit elements, which share 32-bit words; none of the
// additions is lost.
func TestSubwordAtomicsAcrossProcesses(t *testing.T) {
	const n = 30000
	name := testproc.Name(t)
	a, err := array.Create[uint16](name, 4)
	require.NoError(t, err)
	defer a.Close()
	c := testproc.Start(t, "array-subword", name, strconv.Itoa(n))
	for range n {
		a.Add(0, 1)
		a.Add(2, 2)
	}
	c.Wait()
	assert.Equal(t, []uint16{n, n, 2 * n, 2 * n}, a.Slice())
}

func TestAnonymousAcrossProcesses(t *testing.T) {
	a, err := array.CreateAnonymousFrom([]float64{1, 2.5, -3})
	require.NoError(t, err)
	defer a.Close()
	testproc.StartCmd(t, "array-anonymous", func(cmd *exec.Cmd) {
		cmd.ExtraFiles = []*os.File{a.Segment().File()}
	}, "[]").Wait()
	assert.Equal(t, []float64{2, 5, -6}, a.Slice())

	b, err := array.CreateAnonymousShape[float64]([]int{2, 2})
	require.NoError(t, err)
	defer b.Close()
	b.Slice()[3] = 4
	testproc.StartCmd(t, "array-anonymous", func(cmd *exec.Cmd) {
		cmd.ExtraFiles = []*os.File{b.Segment().File()}
	}, "[2 2]").Wait()
	assert.Equal(t, []float64{0, 0, 0, 8}, b.Slice())

	c, err := array.CreateAnonymous[int8](3)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, []int8{0, 0, 0}, c.Slice())
	assert.Equal(t, "", c.Name())
}

func TestBasics(t *testing.T) {
	name := testproc.Name(t)
	a, err := array.Create[complex128](name, 5)
	require.NoError(t, err)
	defer a.Close()
	assert.Equal(t, name, a.Name())
	assert.Equal(t, 5, a.Len())
	assert.Nil(t, a.Shape())
	s := a.Slice()
	assert.Equal(t, 5, cap(s), "Slice's capacity is its length")
	a.Set(1, 2+3i)
	assert.Equal(t, 2+3i, s[1], "Slice sees Set")
	s[4] = -1i
	assert.Equal(t, -1i, a.Get(4), "Get sees writes through Slice")
	a.Update(func(s []complex128) { s[0] = s[1] * s[4] })
	assert.Equal(t, 3-2i, a.Get(0))

	// A second mapping in this process sees the same memory; its length
	// may be given or left open.
	b, err := array.Open[complex128](name, 5)
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, 3-2i, b.Get(0))

	require.NoError(t, a.Unlink())
	_, err = array.Open[complex128](name, 0)
	assert.ErrorIs(t, err, shm.ErrNotExist)
	assert.Equal(t, 2+3i, b.Get(1), "mappings outlive the name")
	require.NoError(t, a.Close())
	require.NoError(t, a.Close(), "Close is idempotent")
}

func TestLayout(t *testing.T) {
	name := testproc.Name(t)
	a, err := array.CreateFrom(name, []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17})
	require.NoError(t, err)
	defer a.Close()
	seg := a.Segment()
	assert.Equal(t, shm.KindArray, seg.Kind())
	assert.Equal(t, uint64(17), seg.Len())
	assert.Equal(t, uint64(128), seg.Params()[0], "68 bytes of elements: lock at 128")
	assert.Len(t, seg.Data(), 128+8)
	assert.Equal(t, []byte{1, 0, 0, 0, 2, 0, 0, 0}, seg.Data()[:8], "elements start the data area, little-endian")
	assert.Equal(t, byte(17), seg.Data()[64])
	lock, err := shm.View[xsync.Mutex](seg, 128)
	require.NoError(t, err)
	lock.Lock()
	assert.False(t, a.TryLock(), "the array's lock is the one at Params[0]")
	lock.Unlock()
}

func TestShape(t *testing.T) {
	name := testproc.Name(t)
	a, err := array.CreateShape[float32](name, []int{2, 3, 4})
	require.NoError(t, err)
	defer a.Close()
	assert.Equal(t, 24, a.Len())
	assert.Equal(t, []int{2, 3, 4}, a.Shape())
	assert.Equal(t, []uint64{2, 3, 4}, a.Segment().Shape())
	a.Shape()[0] = 99
	assert.Equal(t, []int{2, 3, 4}, a.Shape(), "Shape returns a copy")
	assert.Equal(t, 0, a.Index(0, 0, 0))
	assert.Equal(t, 1, a.Index(0, 0, 1))
	assert.Equal(t, 4, a.Index(0, 1, 0))
	assert.Equal(t, 23, a.Index(1, 2, 3))
	assert.Panics(t, func() { a.Index(2, 0, 0) })
	assert.Panics(t, func() { a.Index(0, -1, 0) })
	assert.Panics(t, func() { a.Index(0, 0) })

	b, err := array.Open[float32](name, 24)
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, []int{2, 3, 4}, b.Shape())

	c, err := array.Create[float32](testproc.Name(t), 3)
	require.NoError(t, err)
	defer c.Close()
	assert.PanicsWithValue(t, "array: Index with 1 indices on an array of shape []", func() { c.Index(1) })
}

func TestIndexOutOfRangePanicsLikeASlice(t *testing.T) {
	a, err := array.CreateAnonymous[int64](10)
	require.NoError(t, err)
	defer a.Close()
	msg := func(f func()) (s string) {
		defer func() {
			r := recover()
			require.NotNil(t, r, "no panic")
			_, isRuntime := r.(interface{ RuntimeError() })
			assert.True(t, isRuntime, "a runtime error, as from a slice: %v", r)
			s = fmt.Sprint(r)
		}()
		f()
		return ""
	}
	assert.Contains(t, msg(func() { a.Get(10) }), "index out of range [10] with length 10")
	assert.Contains(t, msg(func() { a.Get(-1) }), "index out of range [-1]")
	assert.Contains(t, msg(func() { a.Set(10, 1) }), "index out of range [10] with length 10")
	assert.Contains(t, msg(func() { a.Add(11, 1) }), "index out of range [11] with length 10")
	assert.Contains(t, msg(func() { a.CompareAndSwap(10, 0, 1) }), "index out of range")
	assert.Contains(t, msg(func() { a.AtomicLoad(10) }), "index out of range")
	assert.Contains(t, msg(func() { a.AtomicStore(-5, 1) }), "index out of range")
	assert.Contains(t, msg(func() { a.ReadAt(make([]int64, 1), 11) }), "slice bounds out of range [11:10]")
	assert.Contains(t, msg(func() { a.WriteAt(make([]int64, 1), -1) }), "slice bounds out of range [-1:]")
	require.True(t, a.TryLock(), "no panic leaves the lock held")
	a.Unlock()
	assert.Equal(t, 0, a.ReadAt(make([]int64, 1), 10), "off = Len is in range, like s[len(s):]")

	// Update releases the lock when f panics.
	assert.Panics(t, func() { a.Update(func(s []int64) { _ = s[len(s)] }) })
	require.True(t, a.TryLock(), "not left locked")
	a.Unlock()
}

func TestAtomics(t *testing.T) {
	a, err := array.CreateAnonymous[int8](5)
	require.NoError(t, err)
	defer a.Close()
	assert.Equal(t, int8(-128), a.Add(2, -128))
	assert.Equal(t, int8(127), a.Add(2, -1), "wraps like Go's int8")
	assert.True(t, a.CompareAndSwap(1, 0, 5))
	assert.False(t, a.CompareAndSwap(1, 0, 6))
	a.AtomicStore(4, -9)
	assert.Equal(t, []int8{0, 5, 127, 0, -9}, a.Slice())
	assert.Equal(t, int8(-9), a.AtomicLoad(4))

	f, err := array.CreateAnonymous[float64](2)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, 0.25, f.Add(1, 0.25))
	assert.True(t, f.CompareAndSwap(1, 0.25, math.Inf(1)))
	assert.Equal(t, math.Inf(1), f.AtomicLoad(1))

	type pair struct{ A, B int32 }
	p, err := array.CreateAnonymous[pair](2)
	require.NoError(t, err)
	defer p.Close()
	assert.PanicsWithValue(t, "array: atomic Add needs an integer or float element type, not array_test.pair",
		func() { p.Add(0, pair{}) })
	assert.Panics(t, func() { p.CompareAndSwap(0, pair{}, pair{}) })
	assert.Panics(t, func() { p.AtomicLoad(0) })
	assert.Panics(t, func() { p.AtomicStore(0, pair{}) })
}

// TestErrors: each misuse gets its own error, never a panic.
func TestErrors(t *testing.T) {
	name := testproc.Name(t)
	a, err := array.Create[int64](name, 10)
	require.NoError(t, err)
	defer a.Close()

	sentinels := []error{shm.ErrTypeMismatch, shm.ErrKind, shm.ErrUnsupportedType, array.ErrInvalidLen,
		array.ErrTooLarge, shm.ErrLenMismatch, shm.ErrExist, shm.ErrNotExist, shm.ErrCorrupt}
	// only checks that err matches want (and ErrInvalidLen, for
	// ErrTooLarge) and none of the other sentinels.
	only := func(err error, want error, msg string) {
		t.Helper()
		require.Error(t, err, msg)
		var se *shm.Error
		assert.True(t, errors.As(err, &se), "%s: %v is not a *shm.Error", msg, err)
		for _, s := range sentinels {
			is := s == want || want == array.ErrTooLarge && s == array.ErrInvalidLen
			assert.Equal(t, is, errors.Is(err, s), "%s: errors.Is(%v, %v)", msg, err, s)
		}
	}
	_, err = array.Create[int64](name, 10)
	only(err, shm.ErrExist, "create existing")
	_, err = array.Open[int64]("no-such-array", 0)
	only(err, shm.ErrNotExist, "open missing")
	_, err = array.Create[int64]("", 1)
	assert.ErrorIs(t, err, shm.ErrInvalidName, "an empty name does not make an anonymous array")

	// Wrong element type, wrong length, wrong kind.
	_, err = array.Open[int32](name, 0)
	only(err, shm.ErrTypeMismatch, "open as int32")
	_, err = array.Open[float64](name, 10)
	only(err, shm.ErrTypeMismatch, "open as float64")
	_, err = array.Open[[2]int64](name, 5)
	only(err, shm.ErrTypeMismatch, "open as [2]int64")
	_, err = array.Open[int64](name, 11)
	only(err, shm.ErrLenMismatch, "open with length 11")
	vname := testproc.Name(t)
	v, err := value.Create[int64](vname, 0)
	require.NoError(t, err)
	defer v.Close()
	_, err = array.Open[int64](vname, 0)
	only(err, shm.ErrKind, "open a value")
	_, err = array.Open[int64](vname, 1)
	only(err, shm.ErrKind, "open a value with length 1")

	// Unsupported element types, named down to the field.
	type inner struct{ M map[string]int }
	type bad struct {
		X     float64
		Inner [2]inner
	}
	_, err = array.Create[bad](testproc.Name(t), 3)
	only(err, shm.ErrUnsupportedType, "create []bad")
	assert.Contains(t, err.Error(), "Inner[].M")
	_, err = array.Open[bad](name, 0)
	only(err, shm.ErrUnsupportedType, "open as []bad")
	for _, f := range []func() error{
		func() error { _, err := array.Create[*int](testproc.Name(t), 1); return err },
		func() error { _, err := array.Create[string](testproc.Name(t), 1); return err },
		func() error { _, err := array.Create[any](testproc.Name(t), 1); return err },
		func() error { _, err := array.Create[chan int](testproc.Name(t), 1); return err },
		func() error { _, err := array.Create[func()](testproc.Name(t), 1); return err },
		func() error { _, err := array.CreateAnonymous[[]byte](1); return err },
	} {
		only(f(), shm.ErrUnsupportedType, "unsupported type")
	}

	// Lengths: zero, negative, overflowing; each says which.
	_, err = array.Create[int64](testproc.Name(t), 0)
	only(err, array.ErrInvalidLen, "length 0")
	assert.Contains(t, err.Error(), "length 0")
	_, err = array.Create[int64](testproc.Name(t), -1)
	only(err, array.ErrInvalidLen, "length -1")
	assert.Contains(t, err.Error(), "negative length -1")
	_, err = array.CreateFrom[int64](testproc.Name(t), nil)
	only(err, array.ErrInvalidLen, "from an empty slice")
	_, err = array.CreateAnonymous[int64](-5)
	only(err, array.ErrInvalidLen, "anonymous, length -5")
	_, err = array.Create[int64](testproc.Name(t), math.MaxInt)
	only(err, array.ErrTooLarge, "length MaxInt of int64: the byte size overflows")
	_, err = array.Create[[1 << 20]byte](testproc.Name(t), 1<<20)
	only(err, array.ErrTooLarge, "1 TiB")
	if maxBytes := uint64(array.MaxBytes); maxBytes < math.MaxInt {
		_, err = array.Create[byte](testproc.Name(t), int(maxBytes+1))
		only(err, array.ErrTooLarge, "MaxBytes+1")
	}
	_, err = array.Open[int64](name, -1)
	only(err, array.ErrInvalidLen, "open with length -1")

	// Shapes.
	for _, shape := range [][]int{nil, {}, {0}, {3, 0}, {2, -2}, {1, 1, 1, 1, 1}} {
		_, err = array.CreateShape[int64](testproc.Name(t), shape)
		only(err, array.ErrInvalidLen, fmt.Sprintf("shape %v", shape))
	}
	for _, shape := range [][]int{{math.MaxInt, 2}, {1 << 20, 1 << 20, 1 << 20}, {1 << 19, 1 << 19}} {
		_, err = array.CreateShape[int64](testproc.Name(t), shape)
		only(err, array.ErrTooLarge, fmt.Sprintf("shape %v", shape))
	}
	_, err = array.CreateAnonymousShape[int64]([]int{4, 0})
	only(err, array.ErrInvalidLen, "anonymous shape [4 0]")
}

// TestCorruptHeader: an array segment whose lock offset, parameters or
// data size are not what this package writes is refused, not trusted.
func TestCorruptHeader(t *testing.T) {
	ty, err := shm.TypeOf[int32]()
	require.NoError(t, err)
	for _, c := range []struct {
		params   [2]uint64
		dataSize uint64
	}{
		{[2]uint64{40, 0}, 48}, // lock not rounded up
		{[2]uint64{0, 0}, 72},
		{[2]uint64{64, 7}, 72}, // unknown parameter
		{[2]uint64{64, 0}, 4096},
	} {
		name := testproc.Name(t)
		spec := shm.Spec{Kind: shm.KindArray, Type: ty, Len: 10, DataSize: c.dataSize}
		spec.Params[0], spec.Params[1] = c.params[0], c.params[1]
		seg, err := shm.Create(name, spec)
		require.NoError(t, err)
		seg.Close()
		_, err = array.Open[int32](name, 0)
		assert.ErrorIs(t, err, shm.ErrCorrupt, "%+v", c)
	}
}

func TestUseAfterClose(t *testing.T) {
	a, err := array.CreateAnonymous[int64](4)
	require.NoError(t, err)
	require.NoError(t, a.Close())
	for op, f := range map[string]func(){
		"Get":            func() { a.Get(0) },
		"Set":            func() { a.Set(0, 1) },
		"ReadAt":         func() { a.ReadAt(make([]int64, 4), 0) },
		"WriteAt":        func() { a.WriteAt(make([]int64, 4), 0) },
		"Update":         func() { a.Update(func([]int64) {}) },
		"Lock":           func() { a.Lock() },
		"LockContext":    func() { a.LockContext(context.Background()) },
		"TryLock":        func() { a.TryLock() },
		"Unlock":         func() { a.Unlock() },
		"Slice":          func() { a.Slice() },
		"Add":            func() { a.Add(0, 1) },
		"CompareAndSwap": func() { a.CompareAndSwap(0, 0, 1) },
		"AtomicLoad":     func() { a.AtomicLoad(0) },
		"AtomicStore":    func() { a.AtomicStore(0, 1) },
	} {
		func() {
			defer func() {
				err, _ := recover().(error)
				assert.ErrorIs(t, err, shm.ErrClosed, "%s after Close", op)
				assert.ErrorContains(t, err, "array: "+op+" of (anonymous) after Close")
			}()
			f()
		}()
	}
	assert.Equal(t, 4, a.Len(), "what describes the handle still works")
}
