package sync

import (
	"context"
	"time"

	"github.com/xproc-go/xproc/shm"
)

// named is what every handle to a named primitive has: the segment that
// holds it.
type named struct{ seg *shm.Segment }

// Name returns the segment name.
func (n named) Name() string { return n.seg.Name() }

// Segment returns the segment that holds the primitive.
func (n named) Segment() *shm.Segment { return n.seg }

// Close unmaps the primitive. Calls blocked on it return ErrClosed (or
// panic, for those without an error result); it must not be used after.
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
	*Mutex
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

// NamedReentrantMutex is a ReentrantMutex in a segment of its own.
type NamedReentrantMutex struct {
	*ReentrantMutex
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

// NamedSemaphore is a Semaphore in a segment of its own.
type NamedSemaphore struct {
	*Semaphore
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

// NamedEvent is an Event in a segment of its own.
type NamedEvent struct {
	*Event
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

// condPair is the content of a named condition's segment.
type condPair struct {
	Mu   Mutex
	Cond Cond
}

// NamedCond is a Cond together with its Mutex, in a segment of its own:
// Python's Condition with its own lock.
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

// Mutex returns the condition's mutex.
func (c *NamedCond) Mutex() *Mutex { return &c.p.Mu }

// Cond returns the condition variable.
func (c *NamedCond) Cond() *Cond { return &c.p.Cond }

// Lock locks the condition's mutex.
func (c *NamedCond) Lock() { c.p.Mu.Lock() }

// LockContext locks the condition's mutex, giving up when ctx is done.
func (c *NamedCond) LockContext(ctx context.Context) error { return c.p.Mu.LockContext(ctx) }

// Unlock unlocks the condition's mutex.
func (c *NamedCond) Unlock() { c.p.Mu.Unlock() }

// Wait waits for a notification; see Cond.WaitContext.
func (c *NamedCond) Wait() error { return c.p.Cond.Wait(&c.p.Mu) }

// WaitContext waits for a notification or until ctx is done; see
// Cond.WaitContext.
func (c *NamedCond) WaitContext(ctx context.Context) error {
	return c.p.Cond.WaitContext(ctx, &c.p.Mu)
}

// WaitFor waits until pred holds; see Cond.WaitFor.
func (c *NamedCond) WaitFor(ctx context.Context, pred func() bool) (bool, error) {
	return c.p.Cond.WaitFor(ctx, &c.p.Mu, pred)
}

// Signal wakes one waiter.
func (c *NamedCond) Signal() { c.p.Cond.Signal() }

// Broadcast wakes every waiter.
func (c *NamedCond) Broadcast() { c.p.Cond.Broadcast() }

// Notify wakes up to n waiters.
func (c *NamedCond) Notify(n int) { c.p.Cond.Notify(n) }

// NamedBarrier is a Barrier in a segment of its own, with this process's
// action.
type NamedBarrier struct {
	*Barrier
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
	return &NamedBarrier{Barrier: p, named: n}, nil
}

// OpenBarrier opens a barrier made by CreateBarrier.
func OpenBarrier(name string, opts ...shm.Option) (*NamedBarrier, error) {
	p, n, err := openNamed[Barrier](name, shm.KindBarrier, opts)
	if err != nil {
		return nil, err
	}
	p.Join()
	return &NamedBarrier{Barrier: p, named: n}, nil
}

// SetAction sets the action this process runs when it is the last to
// arrive in a round. Set it before the first Wait. Processes may set
// different actions (or none); each round runs the last arriver's.
func (b *NamedBarrier) SetAction(action func() error) { b.action = action }

// Wait waits for all parties with this process's action. See
// Barrier.WaitFunc.
func (b *NamedBarrier) Wait() (int, error) {
	return b.Barrier.WaitFunc(context.Background(), b.action)
}

// WaitContext waits for all parties or until ctx is done, with this
// process's action. See Barrier.WaitFunc.
func (b *NamedBarrier) WaitContext(ctx context.Context) (int, error) {
	return b.Barrier.WaitFunc(ctx, b.action)
}
