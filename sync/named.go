package sync

import (
	"context"
	"fmt"
	"time"

	"github.com/xproc-go/xproc/shm"
)

// named is what every handle to a named primitive has: the segment that
// holds it.
//
// A named primitive lives in its segment's memory, which Close unmaps, so
// each handle's methods check first that the handle is open: after Close,
// those with an error result return an error wrapping ErrClosed, the
// others panic with one (which recover can catch), instead of faulting.
// A call racing with Close is still a bug: it may fault.
type named struct{ seg *shm.Segment }

// closedErr returns the error for op on a closed handle, or nil.
func (n named) closedErr(op string) error {
	if !n.seg.Closed() {
		return nil
	}
	return fmt.Errorf("xsync: %s on closed %s %q: %w", op, n.seg.Kind(), n.seg.Name(), ErrClosed)
}

// check panics with closedErr if the handle is closed.
func (n named) check(op string) {
	if err := n.closedErr(op); err != nil {
		panic(err)
	}
}

// Name returns the segment name.
func (n named) Name() string { return n.seg.Name() }

// Segment returns the segment that holds the primitive.
func (n named) Segment() *shm.Segment { return n.seg }

// Close unmaps the primitive. Calls blocked on it return ErrClosed (or
// panic, for those without an error result), and so do calls made
// afterwards. Closing again does nothing and returns the same result.
func (n named) Close() error { return n.seg.Close() }

// Unlink removes the name. Processes that have it open keep using it.
func (n named) Unlink() error { return n.seg.Unlink() }

func createNamed[T any](name string, kind shm.Kind, init func(*T) error, opts []shm.Option) (*T, named, error) {
	t, err := shm.TypeOf[T]()
	if err != nil {
		return nil, named{}, err
	}
	var p *T
	seg, err := shm.Create(name, shm.Spec{Kind: kind, Type: t, Len: 1, Init: func(s *shm.Segment) error {
		v, err := shm.View[T](s, 0)
		if err == nil && init != nil {
			err = init(v)
		}
		p = v
		return err
	}}, opts...)
	if err != nil {
		return nil, named{}, err
	}
	return p, named{seg}, nil
}

func openNamed[T any](name string, kind shm.Kind, opts []shm.Option) (*T, named, error) {
	t, err := shm.TypeOf[T]()
	if err != nil {
		return nil, named{}, err
	}
	seg, err := shm.Open(name, shm.Spec{Kind: kind, Type: t, Len: 1}, opts...)
	if err != nil {
		return nil, named{}, err
	}
	p, err := shm.View[T](seg, 0)
	if err != nil {
		seg.Close()
		return nil, named{}, err
	}
	return p, named{seg}, nil
}

// NamedMutex is a Mutex in a segment of its own.
type NamedMutex struct {
	mu *Mutex
	named
}

// CreateMutex creates a named, unlocked Mutex. It fails if name exists.
func CreateMutex(name string, opts ...shm.Option) (*NamedMutex, error) {
	p, n, err := createNamed[Mutex](name, shm.KindMutex, nil, opts)
	if err != nil {
		return nil, err
	}
	return &NamedMutex{p, n}, nil
}

// OpenMutex opens a Mutex made by CreateMutex.
func OpenMutex(name string, opts ...shm.Option) (*NamedMutex, error) {
	p, n, err := openNamed[Mutex](name, shm.KindMutex, opts)
	if err != nil {
		return nil, err
	}
	return &NamedMutex{p, n}, nil
}

// Lock locks the mutex; see Mutex.Lock.
func (m *NamedMutex) Lock() { m.check("Lock"); m.mu.Lock() }

// TryLock tries to lock the mutex; see Mutex.TryLock.
func (m *NamedMutex) TryLock() bool { m.check("TryLock"); return m.mu.TryLock() }

// LockContext locks the mutex, giving up when ctx is done; see
// Mutex.LockContext.
func (m *NamedMutex) LockContext(ctx context.Context) error {
	if err := m.closedErr("LockContext"); err != nil {
		return err
	}
	return m.mu.LockContext(ctx)
}

// Unlock unlocks the mutex; see Mutex.Unlock.
func (m *NamedMutex) Unlock() { m.check("Unlock"); m.mu.Unlock() }

// Locked reports whether the mutex is locked; see Mutex.Locked.
func (m *NamedMutex) Locked() bool { m.check("Locked"); return m.mu.Locked() }

// NamedReentrantMutex is a ReentrantMutex in a segment of its own.
type NamedReentrantMutex struct {
	rm *ReentrantMutex
	named
}

// CreateReentrantMutex creates a named, unlocked ReentrantMutex.
func CreateReentrantMutex(name string, opts ...shm.Option) (*NamedReentrantMutex, error) {
	p, n, err := createNamed[ReentrantMutex](name, shm.KindReentrantMutex, nil, opts)
	if err != nil {
		return nil, err
	}
	return &NamedReentrantMutex{p, n}, nil
}

// OpenReentrantMutex opens a ReentrantMutex made by CreateReentrantMutex.
func OpenReentrantMutex(name string, opts ...shm.Option) (*NamedReentrantMutex, error) {
	p, n, err := openNamed[ReentrantMutex](name, shm.KindReentrantMutex, opts)
	if err != nil {
		return nil, err
	}
	return &NamedReentrantMutex{p, n}, nil
}

// Lock locks or re-locks the mutex; see ReentrantMutex.Lock.
func (r *NamedReentrantMutex) Lock() { r.check("Lock"); r.rm.Lock() }

// TryLock tries to lock or re-lock the mutex; see ReentrantMutex.TryLock.
func (r *NamedReentrantMutex) TryLock() bool { r.check("TryLock"); return r.rm.TryLock() }

// LockContext locks or re-locks the mutex, giving up when ctx is done;
// see ReentrantMutex.LockContext.
func (r *NamedReentrantMutex) LockContext(ctx context.Context) error {
	if err := r.closedErr("LockContext"); err != nil {
		return err
	}
	return r.rm.LockContext(ctx)
}

// Unlock undoes one Lock; see ReentrantMutex.Unlock.
func (r *NamedReentrantMutex) Unlock() { r.check("Unlock"); r.rm.Unlock() }

// Locked reports whether the mutex is held; see ReentrantMutex.Locked.
func (r *NamedReentrantMutex) Locked() bool { r.check("Locked"); return r.rm.Locked() }

// Held reports whether the calling goroutine holds the mutex.
func (r *NamedReentrantMutex) Held() bool { r.check("Held"); return r.rm.Held() }

// Depth returns how many times the calling goroutine holds the mutex.
func (r *NamedReentrantMutex) Depth() int { r.check("Depth"); return r.rm.Depth() }

// NamedSemaphore is a Semaphore in a segment of its own.
type NamedSemaphore struct {
	sem *Semaphore
	named
}

// CreateSemaphore creates a named Semaphore with the given value (0 to
// MaxSemaphore; ErrInvalid otherwise), bounded (Python's
// BoundedSemaphore) if bounded is true.
func CreateSemaphore(name string, value int, bounded bool, opts ...shm.Option) (*NamedSemaphore, error) {
	if err := checkSemaphore("CreateSemaphore", value); err != nil {
		return nil, &shm.Error{Op: "create", Name: name, Err: err}
	}
	p, n, err := createNamed(name, shm.KindSemaphore, func(s *Semaphore) error {
		return s.Init(value, bounded)
	}, opts)
	if err != nil {
		return nil, err
	}
	return &NamedSemaphore{p, n}, nil
}

// OpenSemaphore opens a Semaphore made by CreateSemaphore.
func OpenSemaphore(name string, opts ...shm.Option) (*NamedSemaphore, error) {
	p, n, err := openNamed[Semaphore](name, shm.KindSemaphore, opts)
	if err != nil {
		return nil, err
	}
	return &NamedSemaphore{p, n}, nil
}

// TryAcquire takes a unit if one is available; see Semaphore.TryAcquire.
func (s *NamedSemaphore) TryAcquire() bool { s.check("TryAcquire"); return s.sem.TryAcquire() }

// Acquire takes a unit, waiting as long as it takes; see
// Semaphore.Acquire.
func (s *NamedSemaphore) Acquire() { s.check("Acquire"); s.sem.Acquire() }

// AcquireContext takes a unit, giving up when ctx is done; see
// Semaphore.AcquireContext.
func (s *NamedSemaphore) AcquireContext(ctx context.Context) error {
	if err := s.closedErr("AcquireContext"); err != nil {
		return err
	}
	return s.sem.AcquireContext(ctx)
}

// Release returns one unit; see Semaphore.Release.
func (s *NamedSemaphore) Release() error { return s.ReleaseN(1) }

// ReleaseN returns n units; see Semaphore.ReleaseN.
func (s *NamedSemaphore) ReleaseN(n int) error {
	if err := s.closedErr("ReleaseN"); err != nil {
		return err
	}
	return s.sem.ReleaseN(n)
}

// Value returns the number of available units; see Semaphore.Value.
func (s *NamedSemaphore) Value() int { s.check("Value"); return s.sem.Value() }

// Init re-initialises the semaphore; see Semaphore.Init. Processes using
// it at the time see the change at once.
func (s *NamedSemaphore) Init(value int, bounded bool) error {
	if err := s.closedErr("Init"); err != nil {
		return err
	}
	return s.sem.Init(value, bounded)
}

// Bounded reports whether the semaphore is bounded.
func (s *NamedSemaphore) Bounded() bool { s.check("Bounded"); return s.sem.Bounded() }

// NamedEvent is an Event in a segment of its own.
type NamedEvent struct {
	ev *Event
	named
}

// CreateEvent creates a named, clear Event.
func CreateEvent(name string, opts ...shm.Option) (*NamedEvent, error) {
	p, n, err := createNamed[Event](name, shm.KindEvent, nil, opts)
	if err != nil {
		return nil, err
	}
	return &NamedEvent{p, n}, nil
}

// OpenEvent opens an Event made by CreateEvent.
func OpenEvent(name string, opts ...shm.Option) (*NamedEvent, error) {
	p, n, err := openNamed[Event](name, shm.KindEvent, opts)
	if err != nil {
		return nil, err
	}
	return &NamedEvent{p, n}, nil
}

// Set sets the flag; see Event.Set.
func (e *NamedEvent) Set() { e.check("Set"); e.ev.Set() }

// Clear clears the flag; see Event.Clear.
func (e *NamedEvent) Clear() { e.check("Clear"); e.ev.Clear() }

// IsSet reports whether the flag is set; see Event.IsSet.
func (e *NamedEvent) IsSet() bool { e.check("IsSet"); return e.ev.IsSet() }

// Wait blocks until the flag is set; see Event.Wait.
func (e *NamedEvent) Wait() { e.check("Wait"); e.ev.Wait() }

// WaitContext blocks until the flag is set or ctx is done; see
// Event.WaitContext.
func (e *NamedEvent) WaitContext(ctx context.Context) error {
	if err := e.closedErr("WaitContext"); err != nil {
		return err
	}
	return e.ev.WaitContext(ctx)
}

// condPair is the content of a named condition's segment.
type condPair struct {
	Mu   Mutex
	Cond Cond
}

// NamedCond is a Cond together with its Mutex, in a segment of its own:
// Python's Condition with its own lock.
//
// It hands out no pointer to its Cond or Mutex: such a pointer would
// outlive Close, and a call through it then would fault, where every
// method of the handle fails with ErrClosed. A Cond to be waited on with
// a mutex of one's choosing, or a Mutex to be passed around, is a field
// of a struct in a value.Value (whose pointers are valid until Close, as
// its documentation says).
type NamedCond struct {
	p *condPair
	named
}

// CreateCond creates a named condition variable and its mutex.
func CreateCond(name string, opts ...shm.Option) (*NamedCond, error) {
	p, n, err := createNamed[condPair](name, shm.KindCond, nil, opts)
	if err != nil {
		return nil, err
	}
	return &NamedCond{p, n}, nil
}

// OpenCond opens a condition made by CreateCond.
func OpenCond(name string, opts ...shm.Option) (*NamedCond, error) {
	p, n, err := openNamed[condPair](name, shm.KindCond, opts)
	if err != nil {
		return nil, err
	}
	return &NamedCond{p, n}, nil
}

// Lock locks the condition's mutex; see Mutex.Lock.
func (c *NamedCond) Lock() { c.check("Lock"); c.p.Mu.Lock() }

// TryLock tries to lock the condition's mutex; see Mutex.TryLock.
func (c *NamedCond) TryLock() bool { c.check("TryLock"); return c.p.Mu.TryLock() }

// Locked reports whether the condition's mutex is locked; see
// Mutex.Locked.
func (c *NamedCond) Locked() bool { c.check("Locked"); return c.p.Mu.Locked() }

// LockContext locks the condition's mutex, giving up when ctx is done.
func (c *NamedCond) LockContext(ctx context.Context) error {
	if err := c.closedErr("LockContext"); err != nil {
		return err
	}
	return c.p.Mu.LockContext(ctx)
}

// Unlock unlocks the condition's mutex.
func (c *NamedCond) Unlock() { c.check("Unlock"); c.p.Mu.Unlock() }

// Wait waits for a notification; see Cond.WaitContext.
func (c *NamedCond) Wait() error { return c.WaitContext(context.Background()) }

// WaitContext waits for a notification or until ctx is done; see
// Cond.WaitContext.
func (c *NamedCond) WaitContext(ctx context.Context) error {
	if err := c.closedErr("WaitContext"); err != nil {
		return err
	}
	return c.p.Cond.WaitContext(ctx, &c.p.Mu)
}

// WaitFor waits until pred holds; see Cond.WaitFor.
func (c *NamedCond) WaitFor(ctx context.Context, pred func() bool) (bool, error) {
	if err := c.closedErr("WaitFor"); err != nil {
		return false, err
	}
	return c.p.Cond.WaitFor(ctx, &c.p.Mu, pred)
}

// Signal wakes one waiter.
func (c *NamedCond) Signal() { c.Notify(1) }

// Broadcast wakes every waiter.
func (c *NamedCond) Broadcast() { c.check("Broadcast"); c.p.Cond.Broadcast() }

// Notify wakes up to n waiters.
func (c *NamedCond) Notify(n int) { c.check("Notify"); c.p.Cond.Notify(n) }

// Waiting returns the number of callers waiting; see Cond.Waiting.
func (c *NamedCond) Waiting() int { c.check("Waiting"); return c.p.Cond.Waiting() }

// NamedBarrier is a Barrier in a segment of its own, with this process's
// action.
type NamedBarrier struct {
	b *Barrier
	named
	action func() error
}

// CreateBarrier creates a named barrier for parties parties with a
// default timeout for Wait (0 for none).
func CreateBarrier(name string, parties int, timeout time.Duration, opts ...shm.Option) (*NamedBarrier, error) {
	if err := checkBarrier("CreateBarrier", parties, timeout); err != nil {
		return nil, &shm.Error{Op: "create", Name: name, Err: err}
	}
	p, n, err := createNamed(name, shm.KindBarrier, func(p *Barrier) error {
		return p.Init(parties, timeout)
	}, opts)
	if err != nil {
		return nil, err
	}
	p.Join()
	return &NamedBarrier{b: p, named: n}, nil
}

// OpenBarrier opens a barrier made by CreateBarrier.
func OpenBarrier(name string, opts ...shm.Option) (*NamedBarrier, error) {
	p, n, err := openNamed[Barrier](name, shm.KindBarrier, opts)
	if err != nil {
		return nil, err
	}
	p.Join()
	return &NamedBarrier{b: p, named: n}, nil
}

// SetAction sets the action this process runs when it is the last to
// arrive in a round. Set it before the first Wait. Processes may set
// different actions (or none); each round runs the last arriver's.
func (b *NamedBarrier) SetAction(action func() error) { b.action = action }

// Wait waits for all parties with this process's action. See
// Barrier.WaitFunc.
func (b *NamedBarrier) Wait() (int, error) {
	return b.WaitFunc(context.Background(), b.action)
}

// WaitContext waits for all parties or until ctx is done, with this
// process's action. See Barrier.WaitFunc.
func (b *NamedBarrier) WaitContext(ctx context.Context) (int, error) {
	return b.WaitFunc(ctx, b.action)
}

// WaitFunc waits for all parties or until ctx is done, running action if
// this party arrives last. See Barrier.WaitFunc.
func (b *NamedBarrier) WaitFunc(ctx context.Context, action func() error) (int, error) {
	if err := b.closedErr("Wait"); err != nil {
		return -1, err
	}
	return b.b.WaitFunc(ctx, action)
}

// Init re-initialises the barrier; see Barrier.Init.
func (b *NamedBarrier) Init(parties int, timeout time.Duration) error {
	if err := b.closedErr("Init"); err != nil {
		return err
	}
	return b.b.Init(parties, timeout)
}

// Parties returns the number of parties.
func (b *NamedBarrier) Parties() int { b.check("Parties"); return b.b.Parties() }

// Waiting returns the number of parties waiting in the current round.
func (b *NamedBarrier) Waiting() int { b.check("Waiting"); return b.b.Waiting() }

// Broken reports whether the barrier is broken.
func (b *NamedBarrier) Broken() bool { b.check("Broken"); return b.b.Broken() }

// Abort breaks the barrier; see Barrier.Abort.
func (b *NamedBarrier) Abort() { b.check("Abort"); b.b.Abort() }

// Reset returns the barrier to its initial state; see Barrier.Reset.
func (b *NamedBarrier) Reset() { b.check("Reset"); b.b.Reset() }

// Join declares this process a party; see Barrier.Join.
func (b *NamedBarrier) Join() { b.check("Join"); b.b.Join() }
