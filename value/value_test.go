package value_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
	"github.com/xproc-go/xproc/value"
)

// triple is the struct of the typed-value test.
type triple struct {
	A int32
	B float64
	C int64
}

// A typed case: the parent creates a Value[T] holding init; a child opens
// it, checks that it holds init, stores next(init) and exits; the parent
// must then load next(init). The child looks its case up by name.
type typedCase struct {
	name  string
	child func(segName string) error
	check func(t *testing.T)
}

var typedCases []typedCase

func addTypedCase[T comparable](typ string, init T, next func(T) T) {
	typedCases = append(typedCases, typedCase{
		name: typ,
		child: func(segName string) error {
			v, err := value.Open[T](segName)
			if err != nil {
				return err
			}
			defer v.Close()
			if got := v.Load(); got != init {
				return fmt.Errorf("child loaded %v, want %v", got, init)
			}
			v.Store(next(init))
			return nil
		},
		check: func(t *testing.T) {
			name := testproc.Name(t)
			v, err := value.Create(name, init)
			require.NoError(t, err)
			defer v.Close()
			assert.Equal(t, init, v.Load())
			testproc.Start(t, "value-typed", name, typ).Wait()
			assert.Equal(t, next(init), v.Load())
		},
	})
}

func constant[T any](x T) func(T) T { return func(T) T { return x } }

func init() {
	// The values of CPython's test_multiprocessing test_value.
	addTypedCase("int32", int32(4343), constant(int32(24234)))
	addTypedCase("float64", 3.625, constant(-4.25))
	addTypedCase("int16", int16(-232), constant(int16(234)))
	addTypedCase("int64", int64(1)<<33, constant(int64(1)<<34))
	addTypedCase("byte", byte('x'), constant(byte('y')))
	addTypedCase("triple", triple{-7, 2.25, 1 << 40}, func(x triple) triple {
		return triple{2 * x.A, 2 * x.B, 2 * x.C}
	})

	testproc.Register("value-typed", func(args []string) error {
		for _, c := range typedCases {
			if c.name == args[1] {
				return c.child(args[0])
			}
		}
		return fmt.Errorf("no typed case %q", args[1])
	})
	testproc.Register("value-count", func(args []string) error {
		v, err := value.Open[int64](args[0])
		if err != nil {
			return err
		}
		defer v.Close()
		start, err := value.Open[int32](args[1])
		if err != nil {
			return err
		}
		defer start.Close()
		testproc.Say("ready")
		// Spin rather than sleep, so as to start within a fraction of
		// a microsecond of the parent: the plain loop takes well under
		// a millisecond.
		for start.AtomicLoad() == 0 {
		}
		count(v, args[2], testproc.Atoi(args[3]))
		return nil
	})
	testproc.Register("value-job", func(args []string) error {
		v, err := value.Open[job](args[0])
		if err != nil {
			return err
		}
		defer v.Close()
		work(v.Ptr(), testproc.Atoi(args[1]))
		testproc.Say("counted")
		v.Ptr().Done.Wait()
		if got, want := v.Ptr().Count, int64(testproc.Atoi(args[2])); got != want {
			return fmt.Errorf("count %d after Done, want %d", got, want)
		}
		return nil
	})
	testproc.Register("value-anonymous", func(args []string) error {
		v, err := value.OpenFile[int64](os.NewFile(3, "value"))
		if err != nil {
			return err
		}
		defer v.Close()
		if v.Name() != "" {
			return fmt.Errorf("anonymous value named %q", v.Name())
		}
		v.Add(35)
		return nil
	})
	testproc.Register("value-hold", func(args []string) error {
		v, err := value.Open[int64](args[0])
		if err != nil {
			return err
		}
		defer v.Close()
		v.Lock()
		*v.Ptr() = 1
		testproc.Say("locked")
		if err := testproc.Await("unlock"); err != nil {
			return err
		}
		*v.Ptr() = 2
		v.Unlock()
		return nil
	})
}

func TestTypedValuesAcrossProcesses(t *testing.T) {
	for _, c := range typedCases {
		t.Run(c.name, c.check)
	}
}

// count increments v n times in the given way.
func count(v *value.Value[int64], mode string, n int) {
	switch mode {
	case "update":
		for range n {
			v.Update(func(p *int64) { *p++ })
		}
	case "atomic":
		for range n {
			v.Add(1)
		}
	case "plain":
		p := v.Ptr()
		for range n {
			*p++
		}
	default:
		panic("unknown mode " + mode)
	}
}

// countTogether has this process and a child increment a fresh counter
// increments times each, starting together, and returns the total.
func countTogether(t *testing.T, mode string) int64 {
	name, startName := testproc.Name(t), testproc.Name(t)
	v, err := value.Create[int64](name, 0)
	require.NoError(t, err)
	defer v.Close()
	start, err := value.Create[int32](startName, 0)
	require.NoError(t, err)
	defer start.Close()
	c := testproc.Start(t, "value-count", name, startName, mode, strconv.Itoa(increments))
	c.Expect("ready")
	start.AtomicStore(1)
	count(v, mode, increments)
	c.Wait()
	return v.Load()
}

func TestLockedUpdateCountsExactly(t *testing.T) {
	assert.Equal(t, int64(2*increments), countTogether(t, "update"))
}

func TestAtomicAddCountsExactly(t *testing.T) {
	assert.Equal(t, int64(2*increments), countTogether(t, "atomic"))
}

// TestPlainIncrementsMayLoseUpdates documents what Ptr gives up: two
// processes incrementing without the lock or atomics may lose increments
// (how many depends on scheduling, so only the bounds are checked).
func TestPlainIncrementsMayLoseUpdates(t *testing.T) {
	got := countTogether(t, "plain")
	assert.Positive(t, got)
	assert.LessOrEqual(t, got, int64(2*increments))
	t.Logf("plain increments: %d of %d kept, %d lost", got, 2*increments, 2*increments-got)
}

// job is the struct with xsync primitives as fields.
type job struct {
	Mu    xsync.Mutex
	Count int64
	Done  xsync.Event
}

func work(j *job, n int) {
	for range n {
		j.Mu.Lock()
		j.Count++
		j.Mu.Unlock()
	}
}

// TestStructWithPrimitivesAcrossProcesses: three processes lock the Mutex
// field of a shared Value[job] to count, and two of them wait on its Event
// field until the third sets it.
func TestStructWithPrimitivesAcrossProcesses(t *testing.T) {
	const n = 20000
	name := testproc.Name(t)
	v, err := value.Create(name, job{})
	require.NoError(t, err)
	defer v.Close()
	kids := []*testproc.Child{
		testproc.Start(t, "value-job", name, strconv.Itoa(n), strconv.Itoa(3*n)),
		testproc.Start(t, "value-job", name, strconv.Itoa(n), strconv.Itoa(3*n)),
	}
	j := v.Ptr()
	work(j, n)
	for _, k := range kids {
		k.Expect("counted")
	}
	j.Mu.Lock()
	assert.Equal(t, int64(3*n), j.Count)
	j.Mu.Unlock()
	assert.False(t, j.Done.IsSet())
	j.Done.Set()
	for _, k := range kids {
		k.Wait()
	}
	assert.False(t, j.Mu.Locked())
}

func TestAnonymousAcrossProcesses(t *testing.T) {
	v, err := value.CreateAnonymous[int64](7)
	require.NoError(t, err)
	defer v.Close()
	assert.Equal(t, "", v.Name())
	require.NoError(t, v.Unlink(), "unlinking an anonymous value is a no-op")
	testproc.StartCmd(t, "value-anonymous", func(cmd *exec.Cmd) {
		cmd.ExtraFiles = []*os.File{v.Segment().File()}
	}).Wait()
	assert.Equal(t, int64(42), v.Load())
}

// TestLockHeldByOtherProcess: Store waits while another process holds
// the Value's lock, and the raw writes made under it are then complete.
func TestLockHeldByOtherProcess(t *testing.T) {
	name := testproc.Name(t)
	v, err := value.Create[int64](name, 0)
	require.NoError(t, err)
	defer v.Close()
	c := testproc.Start(t, "value-hold", name)
	c.Expect("locked")
	assert.False(t, v.TryLock(), "held by the child")
	loaded := make(chan int64, 1)
	go func() { loaded <- v.Load() }()
	c.Send("unlock")
	assert.Equal(t, int64(2), <-loaded, "Load waited for the lock")
	c.Wait()
}

func TestBasics(t *testing.T) {
	name := testproc.Name(t)
	v, err := value.Create(name, triple{1, 2, 3})
	require.NoError(t, err)
	defer v.Close()
	assert.Equal(t, name, v.Name())
	assert.Equal(t, shm.KindValue, v.Segment().Kind())
	assert.Equal(t, triple{1, 2, 3}, v.Load())
	v.Store(triple{4, 5, 6})
	v.Update(func(p *triple) { p.C += 10 })
	assert.Equal(t, triple{4, 5, 16}, *v.Ptr())

	// Update releases the lock when f panics.
	assert.PanicsWithValue(t, "boom", func() { v.Update(func(*triple) { panic("boom") }) })
	require.True(t, v.TryLock(), "not left locked")
	v.Unlock()

	// A second mapping in this process sees the same memory.
	w, err := value.Open[triple](name)
	require.NoError(t, err)
	defer w.Close()
	w.Store(triple{7, 8, 9})
	assert.Equal(t, triple{7, 8, 9}, v.Load())

	require.NoError(t, v.Unlink())
	_, err = value.Open[triple](name)
	assert.ErrorIs(t, err, shm.ErrNotExist)
	assert.Equal(t, triple{7, 8, 9}, w.Load(), "mappings outlive the name")
	require.NoError(t, v.Close())
	require.NoError(t, v.Close(), "Close is idempotent")
}

func TestLayout(t *testing.T) {
	name := testproc.Name(t)
	v, err := value.Create[[100]byte](name, [100]byte{0: 1, 99: 2})
	require.NoError(t, err)
	defer v.Close()
	seg := v.Segment()
	assert.Equal(t, uint64(104), seg.Params()[0], "lock at the size rounded up to 8")
	assert.Len(t, seg.Data(), 104+8)
	assert.Equal(t, byte(1), seg.Data()[0], "the value starts the data area")
	assert.Equal(t, byte(2), seg.Data()[99])
	assert.Nil(t, seg.Shape())
	lock, err := shm.View[xsync.Mutex](seg, 104)
	require.NoError(t, err)
	lock.Lock()
	assert.False(t, v.TryLock(), "the value's lock is the one at Params[0]")
	lock.Unlock()

	// A small value shares its cache line with its lock.
	small, err := value.CreateAnonymous(int64(1))
	require.NoError(t, err)
	defer small.Close()
	assert.Equal(t, uint64(8), small.Segment().Params()[0])
	assert.Equal(t, uintptr(unsafe.Pointer(small.Ptr()))/64, uintptr(unsafe.Pointer(&small.Segment().Data()[8]))/64)
}

func TestAtomics(t *testing.T) {
	name := testproc.Name(t)
	i, err := value.Create[uint16](name, 65535)
	require.NoError(t, err)
	defer i.Close()
	assert.Equal(t, uint16(1), i.Add(2), "wraps like Go's uint16")
	assert.False(t, i.CompareAndSwap(0, 9))
	assert.True(t, i.CompareAndSwap(1, 9))
	assert.Equal(t, uint16(9), i.AtomicLoad())
	i.AtomicStore(300)
	assert.Equal(t, uint16(300), i.Load())

	f, err := value.CreateAnonymous(0.5)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, 2.0, f.Add(1.5))
	assert.True(t, f.CompareAndSwap(2, -1))
	assert.Equal(t, -1.0, f.AtomicLoad())

	s, err := value.CreateAnonymous(triple{})
	require.NoError(t, err)
	defer s.Close()
	msg := "value: atomic Add needs an integer or float element type, not value_test.triple"
	assert.PanicsWithValue(t, msg, func() { s.Add(triple{}) })
	assert.Panics(t, func() { s.CompareAndSwap(triple{}, triple{}) })
	assert.Panics(t, func() { s.AtomicLoad() })
	assert.Panics(t, func() { s.AtomicStore(triple{}) })
}

// TestFloatAddAcrossGoroutines: Add on a float is a CAS loop that loses
// nothing.
func TestFloatAddAcrossGoroutines(t *testing.T) {
	f, err := value.CreateAnonymous[float32](0)
	require.NoError(t, err)
	defer f.Close()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10000 {
				f.Add(0.5)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, float32(20000), f.AtomicLoad())
}

func TestErrors(t *testing.T) {
	name := testproc.Name(t)
	v, err := value.Create[int64](name, 1)
	require.NoError(t, err)
	defer v.Close()

	_, err = value.Create[int64](name, 1)
	assert.ErrorIs(t, err, shm.ErrExist)
	_, err = value.Open[int32](name)
	assert.ErrorIs(t, err, shm.ErrTypeMismatch)
	_, err = value.Open[uint64](name)
	assert.ErrorIs(t, err, shm.ErrTypeMismatch, "same size, another type")
	_, err = value.Open[int64]("no-such-value")
	assert.ErrorIs(t, err, shm.ErrNotExist)
	_, err = value.Open[int64]("../escape")
	assert.ErrorIs(t, err, shm.ErrInvalidName)
	_, err = value.Create[int64]("", 1)
	assert.ErrorIs(t, err, shm.ErrInvalidName, "an empty name does not make an anonymous value")

	// A segment of another kind.
	aname := testproc.Name(t)
	a, err := array.Create[int64](aname, 1)
	require.NoError(t, err)
	defer a.Close()
	_, err = value.Open[int64](aname)
	assert.ErrorIs(t, err, shm.ErrKind)
	_, err = array.Open[int64](name, 0)
	assert.ErrorIs(t, err, shm.ErrKind)

	// Types that cannot be shared, refused naming the field.
	type bad struct {
		N     int
		Inner struct{ P *int }
	}
	_, err = value.Create(testproc.Name(t), bad{})
	require.ErrorIs(t, err, shm.ErrUnsupportedType)
	assert.Contains(t, err.Error(), "Inner.P")
	_, err = value.Open[bad](name)
	assert.ErrorIs(t, err, shm.ErrUnsupportedType)
	_, err = value.CreateAnonymous("a string")
	assert.ErrorIs(t, err, shm.ErrUnsupportedType)
	_, err = value.Create(testproc.Name(t), []int{1})
	assert.ErrorIs(t, err, shm.ErrUnsupportedType)
	_, err = value.Create(testproc.Name(t), struct{}{})
	assert.ErrorIs(t, err, shm.ErrUnsupportedType, "zero size")
	var se *shm.Error
	require.True(t, errors.As(err, &se))
	assert.Equal(t, "create", se.Op)

	// Go's own sync types hold no pointers, but their waiters live in one
	// process's runtime: across processes they deadlock.
	type goLocked struct {
		N  int64
		Mu sync.Mutex
	}
	_, err = value.CreateAnonymous(goLocked{})
	require.ErrorIs(t, err, shm.ErrUnsupportedType)
	assert.Contains(t, err.Error(), "Mu is sync.Mutex")
	_, err = value.Open[struct{ WG sync.WaitGroup }](name)
	assert.ErrorIs(t, err, shm.ErrUnsupportedType)
}

// TestCorruptLockOffset: a Value segment whose Params[0] does not put the
// lock where it belongs is refused, not trusted.
func TestCorruptLockOffset(t *testing.T) {
	ty, err := shm.TypeOf[int64]()
	require.NoError(t, err)
	// {64, 0} is where an Array would keep its lock.
	for _, params := range [][2]uint64{{64, 0}, {0, 0}, {8, 1}} {
		name := testproc.Name(t)
		spec := shm.Spec{Kind: shm.KindValue, Type: ty, Len: 1, DataSize: 72}
		spec.Params[0], spec.Params[1] = params[0], params[1]
		seg, err := shm.Create(name, spec)
		require.NoError(t, err)
		seg.Close()
		_, err = value.Open[int64](name)
		assert.ErrorIs(t, err, shm.ErrCorrupt, "params %v", params)
	}
	// Right offset, wrong data size.
	name := testproc.Name(t)
	spec := shm.Spec{Kind: shm.KindValue, Type: ty, Len: 1, DataSize: 4096}
	spec.Params[0] = 8
	seg, err := shm.Create(name, spec)
	require.NoError(t, err)
	seg.Close()
	_, err = value.Open[int64](name)
	assert.ErrorIs(t, err, shm.ErrCorrupt)
}

// usedAfterClose checks that f panics with an error wrapping shm.ErrClosed.
func usedAfterClose(t *testing.T, op string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		err, _ := recover().(error)
		assert.ErrorIs(t, err, shm.ErrClosed, "%s after Close", op)
	}()
	f()
}

func TestUseAfterClose(t *testing.T) {
	v, err := value.Create(testproc.Name(t), int64(7))
	require.NoError(t, err)
	require.NoError(t, v.Unlink())
	require.NoError(t, v.Close())
	for op, f := range map[string]func(){
		"Load":           func() { v.Load() },
		"Store":          func() { v.Store(1) },
		"Update":         func() { v.Update(func(*int64) {}) },
		"Lock":           func() { v.Lock() },
		"LockContext":    func() { v.LockContext(context.Background()) },
		"TryLock":        func() { v.TryLock() },
		"Unlock":         func() { v.Unlock() },
		"Ptr":            func() { v.Ptr() },
		"Add":            func() { v.Add(1) },
		"CompareAndSwap": func() { v.CompareAndSwap(7, 8) },
		"AtomicLoad":     func() { v.AtomicLoad() },
		"AtomicStore":    func() { v.AtomicStore(1) },
	} {
		usedAfterClose(t, op, f)
	}
	assert.NotEmpty(t, v.Name(), "what describes the handle still works")
}
