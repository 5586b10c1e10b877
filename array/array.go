package array

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"

	"github.com/xproc-go/xproc/internal/atomicx"
	"github.com/xproc-go/xproc/internal/elems"
	"github.com/xproc-go/xproc/shm"
)

// Errors returned by this package (wrapped in a *shm.Error naming the
// operation and segment), besides those of package shm. Compare with
// errors.Is.
var (
	// ErrInvalidLen is returned for a length or shape that no array can
	// have: zero, negative, or (as ErrTooLarge, which also matches
	// ErrInvalidLen) too many bytes. The message says which. It also
	// matches shm.ErrInvalid, as every argument out of range does.
	ErrInvalidLen error = &invalidLen{"invalid array length"}
	// ErrTooLarge is returned for an array of more than MaxBytes bytes,
	// or whose size in bytes overflows.
	ErrTooLarge = errors.New("array too large")
)

// invalidLen is ErrInvalidLen: a length out of range is an argument out
// of range, so it also matches shm.ErrInvalid, the sentinel every package
// uses for one.
type invalidLen struct{ msg string }

func (e *invalidLen) Error() string { return e.msg }
func (e *invalidLen) Unwrap() error { return shm.ErrInvalid }

// MaxBytes is the largest size in bytes of an array's elements (1 TiB
// less the lock's cache line, and at most math.MaxInt).
const MaxBytes = min(1<<40-64, math.MaxInt)

// MaxDims is the largest number of dimensions a shape may have.
const MaxDims = 4

// Array is a fixed-length array of T in shared memory, with a lock. Its
// methods are safe for concurrent use by goroutines and processes, except
// that none of them may be used after (or during) Close.
type Array[T any] struct {
	seg   *shm.Segment
	s     []T
	lk    *elems.Lock
	kind  atomicx.Kind
	shape []int
}

// spec describes an array of T with the given shape (nil for a plain
// one of n elements), checking n and the shape.
func spec[T any](n int, shape []int) (shm.Spec, error) {
	t, err := shm.TypeOf[T]()
	if err != nil {
		return shm.Spec{}, err
	}
	var dims []uint64
	if shape != nil {
		if len(shape) == 0 || len(shape) > MaxDims {
			return shm.Spec{}, fmt.Errorf("%w: shape %v (want 1 to %d dimensions)", ErrInvalidLen, shape, MaxDims)
		}
		n = 1
		for _, d := range shape {
			if d <= 0 {
				return shm.Spec{}, fmt.Errorf("%w: shape %v has a dimension < 1", ErrInvalidLen, shape)
			}
			hi, lo := bits.Mul64(uint64(n), uint64(d))
			if hi != 0 || lo > MaxBytes {
				return shm.Spec{}, fmt.Errorf("%w: %w: shape %v", ErrInvalidLen, ErrTooLarge, shape)
			}
			n = int(lo)
			dims = append(dims, uint64(d))
		}
	}
	switch {
	case n == 0:
		return shm.Spec{}, fmt.Errorf("%w: length 0 (an array has at least 1 element)", ErrInvalidLen)
	case n < 0:
		return shm.Spec{}, fmt.Errorf("%w: negative length %d", ErrInvalidLen, n)
	}
	hi, size := bits.Mul64(uint64(n), t.Size)
	if hi != 0 || size > MaxBytes {
		return shm.Spec{}, fmt.Errorf("%w: %w: %d elements of %d bytes (at most %d bytes)", ErrInvalidLen, ErrTooLarge, n, t.Size, uint64(MaxBytes))
	}
	return elems.Spec(shm.KindArray, t, uint64(n), dims), nil
}

// Create makes a new named array of n zero elements. It fails with
// shm.ErrExist if the name is taken, ErrInvalidLen if n < 1 or the array
// would be too large, and shm.ErrUnsupportedType, naming the field, if T
// cannot live in shared memory. opts choose the directory and permissions
// (shm.Dir, shm.Perm).
func Create[T any](name string, n int, opts ...shm.Option) (*Array[T], error) {
	return create[T](name, false, n, nil, nil, opts)
}

// CreateFrom makes a new named array holding a copy of src.
func CreateFrom[T any](name string, src []T, opts ...shm.Option) (*Array[T], error) {
	return create(name, false, len(src), nil, copyFrom(src), opts)
}

// CreateFunc makes a new named array of n elements and initialises them
// in place: init, if not nil, is called with the zero elements in shared
// memory, and the name appears only after it returns, so no other
// process can ever open the array half-initialised. If init returns an
// error, CreateFunc returns it (in a *shm.Error) and nothing is created.
// Other errors are Create's.
//
// It is the way to create an array of a T holding xsync primitives that
// need Init (Semaphore, Barrier):
//
//	type lane struct {
//		Free xsync.Semaphore
//		Used int64
//	}
//	lanes, err := array.CreateFunc("lanes", 8, func(s []lane) error {
//		for i := range s {
//			if err := s[i].Free.Init(16, true); err != nil {
//				return err
//			}
//		}
//		return nil
//	})
//
// init must not keep the slice.
func CreateFunc[T any](name string, n int, init func(s []T) error, opts ...shm.Option) (*Array[T], error) {
	return create(name, false, n, nil, init, opts)
}

// CreateShape makes a new named array of zero elements with the given
// shape: 1 to MaxDims dimensions, each at least 1, holding their product
// of elements in row-major order (the last index varies fastest, as in C
// and numpy). See Index.
func CreateShape[T any](name string, shape []int, opts ...shm.Option) (*Array[T], error) {
	if shape == nil {
		shape = []int{}
	}
	return create[T](name, false, 0, shape, nil, opts)
}

// CreateAnonymous makes an array of n zero elements in a segment with no
// name. Hand a.Segment().File() to a child process through
// exec.Cmd.ExtraFiles; the child maps it with OpenFile.
func CreateAnonymous[T any](n int) (*Array[T], error) {
	return create[T]("", true, n, nil, nil, nil)
}

// CreateAnonymousFrom makes an array holding a copy of src in a segment
// with no name.
func CreateAnonymousFrom[T any](src []T) (*Array[T], error) {
	return create("", true, len(src), nil, copyFrom(src), nil)
}

// CreateAnonymousShape makes an array of zero elements with the given
// shape in a segment with no name.
func CreateAnonymousShape[T any](shape []int) (*Array[T], error) {
	if shape == nil {
		shape = []int{}
	}
	return create[T]("", true, 0, shape, nil, nil)
}

// copyFrom returns the init function that copies src into the new
// array's elements.
func copyFrom[T any](src []T) func([]T) error {
	return func(dst []T) error { copy(dst, src); return nil }
}

// create makes a named or an anonymous array, whose elements init, if not
// nil, initialises before anyone else can see them.
func create[T any](name string, anonymous bool, n int, shape []int, init func([]T) error, opts []shm.Option) (*Array[T], error) {
	sp, err := spec[T](n, shape)
	if err != nil {
		return nil, &shm.Error{Op: "create", Name: name, Err: err}
	}
	if init != nil {
		sp.Init = func(s *shm.Segment) error {
			dst, err := shm.Slice[T](s, 0, sp.Len)
			if err != nil {
				return err
			}
			return init(dst)
		}
	}
	var seg *shm.Segment
	if anonymous {
		seg, err = shm.CreateAnonymous(sp)
	} else {
		seg, err = shm.Create(name, sp, opts...)
	}
	if err != nil {
		return nil, err
	}
	return wrap[T](seg, "create", name)
}

// Open maps the named array made by Create (or CreateFrom, CreateShape).
// If n is not 0 the array must have n elements; with n = 0 any length is
// accepted (see Len). It fails with shm.ErrNotExist if there is no such
// segment, shm.ErrKind if it holds something other than an array,
// shm.ErrTypeMismatch if its elements are not Ts, shm.ErrLenMismatch if
// it has another length, ErrInvalidLen if n < 0, and shm.ErrCorrupt if the
// lock is not where it must be.
func Open[T any](name string, n int, opts ...shm.Option) (*Array[T], error) {
	sp, err := openSpec[T](n)
	if err != nil {
		return nil, &shm.Error{Op: "open", Name: name, Err: err}
	}
	seg, err := shm.Open(name, sp, opts...)
	if err != nil {
		return nil, err
	}
	return wrap[T](seg, "open", name)
}

// OpenFile maps an array from an open segment file, typically one made by
// CreateAnonymous and inherited by this process: process.File(0) in a worker
// started with process.Files, or os.NewFile(3, "array") for the first of
// exec.Cmd.ExtraFiles. n and the checks are as for Open.
// The caller keeps f and may close it once OpenFile returns.
func OpenFile[T any](f *os.File, n int) (*Array[T], error) {
	sp, err := openSpec[T](n)
	if err != nil {
		return nil, &shm.Error{Op: "open", Name: f.Name(), Err: err}
	}
	seg, err := shm.OpenFile(f, sp)
	if err != nil {
		return nil, err
	}
	return wrap[T](seg, "open", f.Name())
}

func openSpec[T any](n int) (shm.Spec, error) {
	if n < 0 {
		return shm.Spec{}, fmt.Errorf("%w: negative length %d", ErrInvalidLen, n)
	}
	t, err := shm.TypeOf[T]()
	if err != nil {
		return shm.Spec{}, err
	}
	return shm.Spec{Kind: shm.KindArray, Type: t, Len: uint64(n)}, nil
}

// wrap checks the array-specific parts of seg's header and builds the
// Array, closing seg on failure. shm has already checked kind, type and
// length, and that the elements fit in the data area.
func wrap[T any](seg *shm.Segment, op, name string) (*Array[T], error) {
	a, err := build[T](seg)
	if err != nil {
		seg.Close()
		return nil, &shm.Error{Op: op, Name: name, Err: err}
	}
	return a, nil
}

func build[T any](seg *shm.Segment) (*Array[T], error) {
	n, size := seg.Len(), seg.Type().Size
	hi, bytes := bits.Mul64(n, size)
	switch {
	case n == 0:
		return nil, fmt.Errorf("%w: an array of length 0", shm.ErrCorrupt)
	case hi != 0 || bytes > MaxBytes:
		// Possible on a 32-bit machine, for an array made on a 64-bit one.
		return nil, fmt.Errorf("%w: %d elements of %d bytes (at most %d bytes)", ErrTooLarge, n, size, uint64(MaxBytes))
	}
	s, mu, err := elems.Map[T](seg)
	if err != nil {
		return nil, err
	}
	a := &Array[T]{seg: seg, s: s, lk: elems.NewLock("array", seg.Name(), mu), kind: atomicx.KindOf[T]()}
	// The header has checked that the dimensions multiply to n, so each
	// is at least 1 and at most n.
	for _, d := range seg.Shape() {
		a.shape = append(a.shape, int(d))
	}
	return a, nil
}

// Len returns the number of elements.
func (a *Array[T]) Len() int { return len(a.s) }

// Shape returns the dimensions the array was created with by CreateShape,
// or nil.
func (a *Array[T]) Shape() []int {
	if a.shape == nil {
		return nil
	}
	return append([]int(nil), a.shape...)
}

// Index returns the position in the array (as for Get or Slice) of the
// element at the given multi-dimensional index, in row-major order. It
// panics, as an index out of range does, unless the array has a shape of
// len(idx) dimensions and each index is within its dimension.
func (a *Array[T]) Index(idx ...int) int {
	if len(idx) != len(a.shape) {
		panic(fmt.Sprintf("array: Index with %d indices on an array of shape %v", len(idx), a.shape))
	}
	i := 0
	for k, d := range a.shape {
		x := idx[k]
		if x < 0 || x >= d {
			panic(fmt.Sprintf("array: index %v out of range for shape %v", idx, a.shape))
		}
		i = i*d + x
	}
	return i
}

// The locked methods (Get, Set, ReadAt, WriteAt, Update) take the lock
// with a.lk.Enter, which lets in the goroutine that holds it through
// Lock, and unlock only if they took it.

// Get returns element i, read under the lock. It panics if i is out of
// range, like indexing a slice.
func (a *Array[T]) Get(i int) T {
	a.live("Get")
	p := &a.s[i]
	if !a.lk.Enter("Get") {
		return *p
	}
	x := *p
	a.lk.Mu.Unlock()
	return x
}

// Set sets element i to x under the lock. It panics if i is out of range,
// like indexing a slice.
func (a *Array[T]) Set(i int, x T) {
	a.live("Set")
	p := &a.s[i]
	if !a.lk.Enter("Set") {
		*p = x
		return
	}
	*p = x
	a.lk.Mu.Unlock()
}

// ReadAt copies elements from position off on into dst, under the lock,
// and returns the number copied: copy(dst, a.Slice()[off:]) made atomic.
// It panics if off is out of range [0, Len()], like slicing a slice.
func (a *Array[T]) ReadAt(dst []T, off int) int {
	a.live("ReadAt")
	s := a.s[off:]
	if !a.lk.Enter("ReadAt") {
		return copy(dst, s)
	}
	n := copy(dst, s)
	a.lk.Mu.Unlock()
	return n
}

// WriteAt copies src into the array from position off on, under the lock,
// and returns the number of elements copied: copy(a.Slice()[off:], src)
// made atomic. It panics if off is out of range [0, Len()].
func (a *Array[T]) WriteAt(src []T, off int) int {
	a.live("WriteAt")
	s := a.s[off:]
	if !a.lk.Enter("WriteAt") {
		return copy(s, src)
	}
	n := copy(s, src)
	a.lk.Mu.Unlock()
	return n
}

// Update calls f with the whole array while holding the lock, for a
// read-modify-write of any number of elements. f must not keep the
// slice. Update takes the lock for f alone, not for its goroutine as Lock
// does: if f calls a's locked methods (Get, Set, ReadAt, WriteAt, Update)
// they wait for f for ever, unless the goroutine holds the lock through
// Lock already; after a second the handle says so on standard error,
// once, with the waiting goroutine's stack. Where the steps need those
// methods, hold the lock with Lock. If f panics the lock is released.
func (a *Array[T]) Update(f func(s []T)) {
	a.live("Update")
	if a.lk.Enter("Update") {
		defer a.lk.Mu.Unlock()
	}
	f(a.s)
}

// Lock locks the array's lock for the calling goroutine: Python's
//
//	with a.get_lock():
//	    a[0] += a[1]
//
// is
//
//	a.Lock()
//	a.Set(0, a.Get(0)+a.Get(1))
//	a.Unlock()
//
// As with Python's lock (an RLock), the goroutine holding it may call the
// locked methods (Get, Set, ReadAt, WriteAt, Update), which then do not
// take it again, and may Lock again (each Lock needs its Unlock). Other
// goroutines and processes wait. The holder is the goroutine, through
// this handle: another handle of the same segment, in this process too,
// waits like any other. If the holder died, Lock takes the lock over
// silently; LockContext says so. Lock costs about a microsecond more than
// Update (it reads the goroutine's id).
func (a *Array[T]) Lock() {
	a.live("Lock")
	a.lk.Lock()
}

// LockContext is Lock, giving up when ctx is done. It returns nil,
// xsync.ErrOwnerDead (an *xsync.OwnerDeadError) with the lock held if the
// previous holder died holding it (elements may be half-written), or
// ctx.Err() without the lock.
func (a *Array[T]) LockContext(ctx context.Context) error {
	a.live("LockContext")
	return a.lk.LockContext(ctx)
}

// TryLock locks the array's lock as Lock does, if that can be done at
// once, and reports whether it did.
func (a *Array[T]) TryLock() bool {
	a.live("TryLock")
	return a.lk.TryLock()
}

// Unlock undoes one Lock; the last one releases the lock. Unlocking a
// lock the calling goroutine does not hold through Lock is a bug: Unlock
// then changes nothing and panics with an error wrapping
// xsync.ErrNotOwner.
func (a *Array[T]) Unlock() {
	a.live("Unlock")
	a.lk.Unlock()
}

// Slice returns the elements themselves, in shared memory, for raw access
// without the lock: Python's RawArray, or Array(lock=False). Writes
// through it are seen by every process (immediately, on the machines Go
// runs on, but with no ordering or atomicity beyond that of single
// aligned words), which is what hogwild-style algorithms want. The slice
// is valid until Close; its capacity is its length.
func (a *Array[T]) Slice() []T {
	a.live("Slice")
	return a.s
}

// Add atomically adds delta to element i, without the lock, and returns
// the new value. It panics if i is out of range, or unless T's underlying
// type is an integer or a float type. On floats it is a compare-and-swap
// loop.
//
// Atomic operations do not take the lock, so they do not exclude the
// locked methods: use one discipline per element.
func (a *Array[T]) Add(i int, delta T) T {
	a.live("Add")
	n, ok := atomicx.Add(a.kind, &a.s[i], delta)
	if !ok {
		panic(atomicx.Unsupported[T]("array", "Add"))
	}
	return n
}

// CompareAndSwap atomically sets element i to new if it is old, without
// the lock, and reports whether it did. Floats are compared bit for bit
// (so -0 is not 0, and a NaN matches itself). It panics if i is out of
// range, or unless T's underlying type is an integer or a float type.
func (a *Array[T]) CompareAndSwap(i int, old, new T) bool {
	a.live("CompareAndSwap")
	swapped, ok := atomicx.CompareAndSwap(a.kind, &a.s[i], old, new)
	if !ok {
		panic(atomicx.Unsupported[T]("array", "CompareAndSwap"))
	}
	return swapped
}

// AtomicLoad atomically loads element i, without the lock. It panics if i
// is out of range, or unless T's underlying type is an integer or a float
// type.
func (a *Array[T]) AtomicLoad(i int) T {
	a.live("AtomicLoad")
	x, ok := atomicx.Load(a.kind, &a.s[i])
	if !ok {
		panic(atomicx.Unsupported[T]("array", "AtomicLoad"))
	}
	return x
}

// AtomicStore atomically stores x into element i, without the lock. It
// panics if i is out of range, or unless T's underlying type is an integer
// or a float type.
func (a *Array[T]) AtomicStore(i int, x T) {
	a.live("AtomicStore")
	if !atomicx.Store(a.kind, &a.s[i], x) {
		panic(atomicx.Unsupported[T]("array", "AtomicStore"))
	}
}

// Name returns the segment name, or "" for an anonymous array.
func (a *Array[T]) Name() string { return a.seg.Name() }

// Segment returns the segment that holds the array, for its File (to hand
// an anonymous array to a child), Path or Info.
func (a *Array[T]) Segment() *shm.Segment { return a.seg }

// Close unmaps the array. Its methods that touch the elements panic
// afterwards, with an error wrapping shm.ErrClosed, but slices already
// taken from Slice must not be used: using them faults, as does any call
// racing with Close. The segment itself stays until
// Unlink. Close is idempotent.
func (a *Array[T]) Close() error { return a.seg.Close() }

// live panics if a is closed.
func (a *Array[T]) live(op string) {
	if a.seg.Closed() {
		elems.UsedAfterClose("array", op, a.seg)
	}
}

// Unlink removes the array's name, so that no process can Open it any
// more. Processes that have it open keep using it; the memory is freed
// when the last one closes it.
func (a *Array[T]) Unlink() error { return a.seg.Unlink() }
