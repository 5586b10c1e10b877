package value

import (
	"context"
	"fmt"
	"os"

	"github.com/xproc-go/xproc/internal/atomicx"
	"github.com/xproc-go/xproc/internal/elems"
	"github.com/xproc-go/xproc/shm"
)

// Value is one T in shared memory, with a lock beside it. Its methods are
// safe for concurrent use by goroutines and processes, except that none of
// them may be used after (or during) Close.
type Value[T any] struct {
	seg  *shm.Segment
	p    *T
	lk   *elems.Lock
	kind atomicx.Kind
}

func spec[T any](op, name string) (shm.Spec, error) {
	t, err := shm.TypeOf[T]()
	if err != nil {
		return shm.Spec{}, &shm.Error{Op: op, Name: name, Err: err}
	}
	return elems.Spec(shm.KindValue, t, 1, nil), nil
}

// Create makes a new named Value holding init. It fails with shm.ErrExist
// if the name is taken, and with shm.ErrUnsupportedType, naming the
// field, if T cannot live in shared memory. opts choose the directory and
// permissions (shm.Dir, shm.Perm).
//
// For a T with xsync primitives as fields use CreateFunc: passing such a
// T by value copies its locks (go vet says so), and a Semaphore or
// Barrier field initialised after Create can be seen uninitialised by a
// process that opens the name in between.
func Create[T any](name string, init T, opts ...shm.Option) (*Value[T], error) {
	return CreateFunc(name, func(p *T) error { *p = init; return nil }, opts...)
}

// CreateFunc makes a new named Value and initialises it in place: init,
// if not nil, is called with a pointer to the zero T in shared memory,
// and the name appears only after it returns, so no other process can
// ever open the value half-initialised. If init returns an error,
// CreateFunc returns it (in a *shm.Error) and nothing is created. Other
// errors are Create's.
//
// It is the way to create a T holding xsync primitives, which must not be
// copied and some of which (Semaphore, Barrier) need Init:
//
//	type pool struct {
//		Slots xsync.Semaphore // at most 4 workers at a time
//		Mu    xsync.Mutex
//		Done  int64
//	}
//	p, err := value.CreateFunc("pool", func(p *pool) error {
//		return p.Slots.Init(4, false)
//	})
//
// init must not keep the pointer; it runs before CreateFunc returns the
// Value whose Ptr gives it again.
func CreateFunc[T any](name string, init func(p *T) error, opts ...shm.Option) (*Value[T], error) {
	sp, err := spec[T]("create", name)
	if err != nil {
		return nil, err
	}
	sp.Init = func(s *shm.Segment) error { return initValue(s, init) }
	seg, err := shm.Create(name, sp, opts...)
	if err != nil {
		return nil, err
	}
	return wrap[T](seg, "create", name)
}

// CreateAnonymous makes a Value holding init in a segment with no name.
// Hand v.Segment().File() to a child process through
// exec.Cmd.ExtraFiles; the child maps it with OpenFile.
func CreateAnonymous[T any](init T) (*Value[T], error) {
	sp, err := spec[T]("create", "")
	if err != nil {
		return nil, err
	}
	sp.Init = func(s *shm.Segment) error {
		return initValue(s, func(p *T) error { *p = init; return nil })
	}
	seg, err := shm.CreateAnonymous(sp)
	if err != nil {
		return nil, err
	}
	return wrap[T](seg, "create", "")
}

func initValue[T any](s *shm.Segment, init func(*T) error) error {
	p, err := shm.View[T](s, 0)
	if err != nil || init == nil {
		return err
	}
	return init(p)
}

// Open maps the named Value made by Create. It fails with shm.ErrNotExist
// if there is none, shm.ErrKind if the segment holds something other than
// a Value, shm.ErrTypeMismatch if it holds a Value of another type, and
// shm.ErrCorrupt if the lock is not where it must be.
func Open[T any](name string, opts ...shm.Option) (*Value[T], error) {
	sp, err := spec[T]("open", name)
	if err != nil {
		return nil, err
	}
	seg, err := shm.Open(name, sp, opts...)
	if err != nil {
		return nil, err
	}
	return wrap[T](seg, "open", name)
}

// OpenFile maps a Value from an open segment file, typically one made by
// CreateAnonymous and inherited by this process:
// process.File(0) in a worker started with process.Files, or
// os.NewFile(3, "value") for the first of exec.Cmd.ExtraFiles. It checks
// the segment as Open does. The caller keeps f and may close it once
// OpenFile returns.
func OpenFile[T any](f *os.File) (*Value[T], error) {
	sp, err := spec[T]("open", f.Name())
	if err != nil {
		return nil, err
	}
	seg, err := shm.OpenFile(f, sp)
	if err != nil {
		return nil, err
	}
	return wrap[T](seg, "open", f.Name())
}

// wrap checks the Value-specific parts of seg's header and builds the
// Value, closing seg on failure. shm has already checked kind, type and
// length.
func wrap[T any](seg *shm.Segment, op, name string) (*Value[T], error) {
	v, err := build[T](seg)
	if err != nil {
		seg.Close()
		return nil, &shm.Error{Op: op, Name: name, Err: err}
	}
	return v, nil
}

func build[T any](seg *shm.Segment) (*Value[T], error) {
	if seg.Shape() != nil {
		return nil, fmt.Errorf("%w: a value has no shape, found %v", shm.ErrCorrupt, seg.Shape())
	}
	s, mu, err := elems.Map[T](seg)
	if err != nil {
		return nil, err
	}
	if len(s) != 1 {
		return nil, fmt.Errorf("%w: a value holds %d elements", shm.ErrCorrupt, len(s))
	}
	p := &s[0]
	return &Value[T]{seg: seg, p: p, lk: elems.NewLock("value", seg.Name(), mu), kind: atomicx.KindOf[T]()}, nil
}

// Load returns the value, read under the lock (or, by the goroutine
// that holds the lock through Lock, read directly).
func (v *Value[T]) Load() T {
	v.live("Load")
	if !v.lk.Enter("Load") {
		return *v.p
	}
	x := *v.p
	v.lk.Mu.Unlock()
	return x
}

// Store sets the value under the lock (or, by the goroutine that holds
// the lock through Lock, directly).
func (v *Value[T]) Store(x T) {
	v.live("Store")
	if !v.lk.Enter("Store") {
		*v.p = x
		return
	}
	*v.p = x
	v.lk.Mu.Unlock()
}

// Update calls f with a pointer to the value while holding the lock: an
// atomic read-modify-write, Python's
//
//	with v.get_lock():
//	    v.value += 1
//
// f must not keep the pointer. Update takes the lock for f alone, not
// for its goroutine as Lock does: if f calls v's locked methods (Load,
// Store, Update) they wait for f for ever, unless the goroutine holds the
// lock through Lock already (then Update, and those calls in f, do not
// take it again); after a second the handle says so on standard error,
// once, with the waiting goroutine's stack (telling that wait from one
// for another goroutine's f would cost every Update the goroutine's id).
// Where the steps need those methods, hold the lock with Lock. If f
// panics the lock is released.
func (v *Value[T]) Update(f func(p *T)) {
	v.live("Update")
	if v.lk.Enter("Update") {
		defer v.lk.Mu.Unlock()
	}
	f(v.p)
}

// Lock locks the value's lock for the calling goroutine: Python's
//
//	with v.get_lock():
//	    v.value = v.value * 2 + 1
//
// is
//
//	v.Lock()
//	v.Store(v.Load()*2 + 1)
//	v.Unlock()
//
// As with Python's lock (an RLock), the goroutine holding it may call
// Load, Store and Update, which then do not take it again, and may Lock
// again (each Lock needs its Unlock). Other goroutines and processes
// wait. The holder is the goroutine, through this handle: another handle
// of the same segment, in this process too, waits like any other. If the
// holder died, Lock takes the lock over silently; LockContext says so.
// Lock costs about a microsecond more than Update (it reads the
// goroutine's id), so prefer Update, or the atomics, for single steps.
func (v *Value[T]) Lock() {
	v.live("Lock")
	v.lk.Lock()
}

// LockContext is Lock, giving up when ctx is done. It returns nil,
// xsync.ErrOwnerDead (an *xsync.OwnerDeadError) with the lock held if the
// previous holder died holding it (the value may be half-written), or
// ctx.Err() without the lock.
func (v *Value[T]) LockContext(ctx context.Context) error {
	v.live("LockContext")
	return v.lk.LockContext(ctx)
}

// TryLock locks the value's lock as Lock does, if that can be done at
// once, and reports whether it did.
func (v *Value[T]) TryLock() bool {
	v.live("TryLock")
	return v.lk.TryLock()
}

// Unlock undoes one Lock; the last one releases the lock. Unlocking a
// lock the calling goroutine does not hold through Lock is a bug: Unlock
// then changes nothing and panics with an error wrapping
// xsync.ErrNotOwner.
func (v *Value[T]) Unlock() {
	v.live("Unlock")
	v.lk.Unlock()
}

// Ptr returns a pointer to the value in shared memory, for raw access
// without the lock: Python's RawValue, or Value(lock=False). Reads and
// writes through it are not synchronised with other processes; see the
// package documentation. The pointer is valid until Close.
func (v *Value[T]) Ptr() *T {
	v.live("Ptr")
	return v.p
}

// Add atomically adds delta to the value, without the lock, and returns
// the new value. It panics unless T's underlying type is an integer or a
// float type. On floats it is a compare-and-swap loop.
//
// Atomic operations do not take the lock, so they do not exclude Load,
// Store and Update (which do): use one discipline per value.
func (v *Value[T]) Add(delta T) T {
	v.live("Add")
	n, ok := atomicx.Add(v.kind, v.p, delta)
	if !ok {
		panic(atomicx.Unsupported[T]("value", "Add"))
	}
	return n
}

// CompareAndSwap atomically sets the value to new if it is old, without
// the lock, and reports whether it did. Floats are compared bit for bit
// (so -0 is not 0, and a NaN matches itself). It panics unless T's
// underlying type is an integer or a float type.
func (v *Value[T]) CompareAndSwap(old, new T) bool {
	v.live("CompareAndSwap")
	swapped, ok := atomicx.CompareAndSwap(v.kind, v.p, old, new)
	if !ok {
		panic(atomicx.Unsupported[T]("value", "CompareAndSwap"))
	}
	return swapped
}

// AtomicLoad atomically loads the value, without the lock. It panics
// unless T's underlying type is an integer or a float type.
func (v *Value[T]) AtomicLoad() T {
	v.live("AtomicLoad")
	x, ok := atomicx.Load(v.kind, v.p)
	if !ok {
		panic(atomicx.Unsupported[T]("value", "AtomicLoad"))
	}
	return x
}

// AtomicStore atomically stores x, without the lock. It panics unless T's
// underlying type is an integer or a float type.
func (v *Value[T]) AtomicStore(x T) {
	v.live("AtomicStore")
	if !atomicx.Store(v.kind, v.p, x) {
		panic(atomicx.Unsupported[T]("value", "AtomicStore"))
	}
}

// Name returns the segment name, or "" for an anonymous Value.
func (v *Value[T]) Name() string { return v.seg.Name() }

// Segment returns the segment that holds the value, for its File (to hand
// an anonymous Value to a child), Path or Info.
func (v *Value[T]) Segment() *shm.Segment { return v.seg }

// Close unmaps the value. Its methods that touch the value panic
// afterwards, with an error wrapping shm.ErrClosed, but pointers already
// taken from Ptr must not be used: using them faults, as does any call
// racing with Close. The segment itself stays until Unlink.
// Close is idempotent.
func (v *Value[T]) Close() error { return v.seg.Close() }

// live panics if v is closed.
func (v *Value[T]) live(op string) {
	if v.seg.Closed() {
		elems.UsedAfterClose("value", op, v.seg)
	}
}

// Unlink removes the value's name, so that no process can Open it any
// more. Processes that have it open keep using it; the memory is freed
// when the last one closes it.
func (v *Value[T]) Unlink() error { return v.seg.Unlink() }
