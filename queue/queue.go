package queue

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/internal/elems"
	"github.com/xproc-go/xproc/internal/race"
	"github.com/xproc-go/xproc/internal/ring"
	"github.com/xproc-go/xproc/shm"
)

// Errors returned by this package, wrapped in an *Error naming the
// operation and the queue. Compare with errors.Is.
var (
	// ErrFull: TryPut found no room (bytes or messages), or Put waited
	// for room until its context's deadline (that error also matches
	// context.DeadlineExceeded), as Python's put(timeout=t) raises Full.
	ErrFull = errors.New("queue full")
	// ErrEmpty: TryGet found no message, or Get waited for one until its
	// context's deadline (that error also matches
	// context.DeadlineExceeded), as Python's get(timeout=t) raises Empty.
	ErrEmpty = errors.New("queue empty")
	// ErrTooLarge: the message is larger than the queue's maximum. Nothing
	// was put.
	ErrTooLarge = errors.New("message larger than the queue's maximum")
	// ErrShutdown: Put after Shutdown, or Get after Shutdown once the
	// queue is drained (at once after an immediate Shutdown).
	ErrShutdown = errors.New("queue shut down")
	// ErrTaskDone: TaskDone called more times than messages were put
	// (Python's ValueError from task_done).
	ErrTaskDone = errors.New("TaskDone called more times than there were messages")
	// ErrLeaseDone: Ack or Nak of a lease that was already acknowledged
	// or put back.
	ErrLeaseDone = errors.New("lease already acknowledged or put back")
	// ErrCorrupt: the ring's control words or records are not what any
	// correct process writes: an index, count or length out of bounds, a
	// state word of no state. It is shm.ErrCorrupt. (A record's state
	// word overwritten with what reads as a process's identity cannot be
	// told from a record whose producer was killed writing it: it is
	// skipped as such.)
	ErrCorrupt = shm.ErrCorrupt
	// ErrClosed: the handle was closed. It is shm.ErrClosed.
	ErrClosed = shm.ErrClosed
)

// Error records a failed queue operation: Pkg is "queue", Op the operation
// ("put", "recv", ...), Name the queue's name ("" if anonymous), Err the
// cause. It formats as "queue: op name: cause".
type Error = ring.Error

// ShortBufferError is returned when a buffer is smaller than the next
// message, whose length is Need; the message stays. It matches
// io.ErrShortBuffer (Python's BufferTooShort).
type ShortBufferError = ring.ShortBufferError

// Options choose a queue's capacity. The zero value is a 1 MiB ring
// taking messages up to half its size, with no limit on their number.
type Options struct {
	// Size is the ring's size in bytes, rounded up to a power of two from
	// 4 KiB to 2 GiB. 0 means 1 MiB. Each message takes 32 bytes of
	// header plus its length rounded up to 8.
	Size int
	// MaxMessage is the largest message in bytes. 0 means the largest a
	// ring of Size takes: Size/2 - 32.
	MaxMessage int
	// MaxMessages bounds the number of messages in the queue, Python's
	// Queue(maxsize). A message counts from Put until it is removed (Get
	// returns it, or its lease is acknowledged). 0 means no bound beyond
	// Size.
	MaxMessages int
}

// DefaultSize is the ring size when Options.Size is 0.
const DefaultSize = 1 << 20

// Params recorded in the segment header.
const (
	paramSize = iota
	paramMaxMessage
	paramMaxMessages
	paramRingVersion
	paramSalt
)

const ringVersion = 1

func (o Options) config() (ring.Config, error) {
	size := uint64(DefaultSize)
	for _, o := range []struct {
		name string
		v    int
	}{{"Size", o.Size}, {"MaxMessage", o.MaxMessage}, {"MaxMessages", o.MaxMessages}} {
		if o.v < 0 {
			return ring.Config{}, fmt.Errorf("%w: Options.%s %d (want 0 or more)", shm.ErrInvalid, o.name, o.v)
		}
	}
	if uint64(o.Size) > ring.MaxSize {
		return ring.Config{}, fmt.Errorf("%w: Options.Size %d (want 0 to %d)", shm.ErrInvalid, o.Size, uint64(ring.MaxSize))
	}
	if o.Size > 0 {
		size = max(ring.MinSize, uint64(1)<<bits.Len64(uint64(o.Size)-1))
	}
	cfg := ring.Config{Size: size, MaxPayload: uint64(o.MaxMessage), MaxMessages: uint64(o.MaxMessages), Salt: ring.NewSalt()}
	if o.MaxMessage == 0 {
		cfg.MaxPayload = ring.MaxPayloadFor(size)
	} else if most := ring.MaxPayloadFor(size); cfg.MaxPayload > most {
		return ring.Config{}, fmt.Errorf("%w: Options.MaxMessage %d (want 0 to %d for a ring of %d bytes: raise Options.Size)", shm.ErrInvalid, o.MaxMessage, most, size)
	}
	if err := cfg.Check(); err != nil {
		return ring.Config{}, fmt.Errorf("%w: %v", shm.ErrInvalid, err)
	}
	return cfg, nil
}

// spec describes a queue segment of element type t (bytes for a plain
// queue, T for Of[T]).
func spec(t shm.Type, cfg ring.Config) shm.Spec {
	sp := shm.Spec{Kind: shm.KindQueue, Type: t, Len: 1, DataSize: ring.MemSize(cfg)}
	sp.Params[paramSize] = cfg.Size
	sp.Params[paramMaxMessage] = cfg.MaxPayload
	sp.Params[paramMaxMessages] = cfg.MaxMessages
	sp.Params[paramRingVersion] = ringVersion
	sp.Params[paramSalt] = cfg.Salt
	return sp
}

// Queue is a handle on a queue in shared memory. Its methods are safe for
// concurrent use by goroutines and processes, but none may be used after
// (or during) Close.
type Queue struct {
	seg  *shm.Segment
	r    *ring.Ring
	name string
	// deferred counts the messages PutDeferred put since the last Flush.
	deferred atomic.Int64
	// Flow-control errors, built once so that polling does not allocate.
	errFull, errEmpty error
	// held lists this handle's leases and reservations not yet finished,
	// for Close to give back: the process may keep other handles open, so
	// closing this one is not its death, which the others' scans look for.
	// A list threaded through them: no allocation, O(1) both ways.
	heldMu  sync.Mutex
	held    link // the list's sentinel, once init'ed
	closing bool // Close has taken the list: hold refuses
}

// link threads a Lease or Reservation through its queue's held list.
type link struct {
	prev, next *link
	h          interface{ giveBack() }
}

// hold adds l (of h) to the held list, or reports false once Close has
// begun: the caller then gives it back itself (its Enter keeps the
// mapping until it is done) and fails with ErrClosed.
func (q *Queue) hold(l *link) bool {
	q.heldMu.Lock()
	defer q.heldMu.Unlock()
	if q.closing {
		return false
	}
	if q.held.next == nil {
		q.held.prev, q.held.next = &q.held, &q.held
	}
	l.prev, l.next = q.held.prev, &q.held
	l.prev.next, q.held.prev = l, l
	return true
}

// release takes l off the held list (it was finished).
func (q *Queue) release(l *link) {
	q.heldMu.Lock()
	if l.next != nil {
		l.prev.next, l.next.prev = l.next, l.prev
		l.prev, l.next = nil, nil
	}
	q.heldMu.Unlock()
}

// enter begins an operation that may take a lease or a reservation: Close
// waits for it to end before unmapping, so that what it takes is either on
// the held list when Close takes the list or given back by the operation.
func (q *Queue) enter(op string) error {
	if !q.r.Region().Enter() {
		return &Error{Pkg: "queue", Op: op, Name: q.name, Err: ErrClosed}
	}
	return nil
}

var byteType = func() shm.Type {
	t, err := shm.TypeOf[byte]()
	if err != nil {
		panic(err)
	}
	return t
}()

// Create makes a new named queue. It fails with shm.ErrExist if the name
// is taken, with shm.ErrInvalid for options out of range, and with the
// errors of shm.Create. opts choose the directory and permissions.
func Create(name string, o Options, opts ...shm.Option) (*Queue, error) {
	return create(name, byteType, o, false, opts)
}

// CreateAnonymous makes a queue with no name. Hand q.File() to a child
// process through exec.Cmd.ExtraFiles; the child maps it with OpenFile.
func CreateAnonymous(o Options) (*Queue, error) {
	return create("", byteType, o, true, nil)
}

func create(name string, t shm.Type, o Options, anon bool, opts []shm.Option) (*Queue, error) {
	cfg, err := o.config()
	if err != nil {
		return nil, &Error{Pkg: "queue", Op: "create", Name: name, Err: err}
	}
	var seg *shm.Segment
	if anon {
		seg, err = shm.CreateAnonymous(spec(t, cfg))
	} else {
		seg, err = shm.Create(name, spec(t, cfg), opts...)
	}
	if err != nil {
		return nil, err
	}
	return wrap(seg, "create", name)
}

// Open maps the named queue. It fails with shm.ErrNotExist if there is
// none, shm.ErrKind if the segment holds something else (a pipe, say),
// shm.ErrCorrupt if the queue's parameters are inconsistent, and with the
// other errors of shm.Open.
func Open(name string, opts ...shm.Option) (*Queue, error) {
	seg, err := shm.Open(name, shm.Spec{Kind: shm.KindQueue}, opts...)
	if err != nil {
		return nil, err
	}
	return wrap(seg, "open", name)
}

// OpenFile maps a queue from an open segment file, typically one made by
// CreateAnonymous and inherited: process.File(0) in a worker started with
// process.Files(q.File()), or os.NewFile(3, "queue") for the first of
// exec.Cmd.ExtraFiles. The caller keeps f.
func OpenFile(f *os.File) (*Queue, error) {
	seg, err := shm.OpenFile(f, shm.Spec{Kind: shm.KindQueue})
	if err != nil {
		return nil, err
	}
	return wrap(seg, "open", "")
}

// wrap checks the queue-specific header fields of seg and builds the
// handle, closing seg on failure.
func wrap(seg *shm.Segment, op, name string) (*Queue, error) {
	q, err := build(seg, name)
	if err != nil {
		seg.Close()
		return nil, &Error{Pkg: "queue", Op: op, Name: name, Err: err}
	}
	return q, nil
}

func build(seg *shm.Segment, name string) (*Queue, error) {
	p := seg.Params()
	cfg := ring.Config{Size: p[paramSize], MaxPayload: p[paramMaxMessage], MaxMessages: p[paramMaxMessages], Salt: p[paramSalt]}
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", shm.ErrCorrupt, err)
	}
	if p[paramRingVersion] != ringVersion {
		return nil, fmt.Errorf("%w: ring version %d (this build reads %d)", shm.ErrVersion, p[paramRingVersion], ringVersion)
	}
	for i, v := range p[paramSalt+1:] {
		if v != 0 {
			return nil, fmt.Errorf("%w: Params[%d] is %d, want 0", shm.ErrCorrupt, paramSalt+1+i, v)
		}
	}
	if t := seg.Type(); t.Size > cfg.MaxPayload || (t.Size != 1 && t.Size != cfg.MaxPayload) {
		return nil, fmt.Errorf("%w: element type of %d bytes, maximum message %d", shm.ErrCorrupt, t.Size, cfg.MaxPayload)
	}
	r, err := ring.New(seg.Data(), cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", shm.ErrCorrupt, err)
	}
	q := &Queue{seg: seg, r: r, name: name}
	q.errFull = &Error{Pkg: "queue", Op: "put", Name: name, Err: ErrFull}
	q.errEmpty = &Error{Pkg: "queue", Op: "get", Name: name, Err: ErrEmpty}
	return q, nil
}

// Name returns the queue's name, "" if anonymous.
func (q *Queue) Name() string { return q.name }

// Segment returns the segment the queue lives in.
func (q *Queue) Segment() *shm.Segment { return q.seg }

// File returns the file of an anonymous queue, to hand to a child
// process; nil for a named queue.
func (q *Queue) File() *os.File { return q.seg.File() }

// Close unmaps the queue. Calls blocked in this process return ErrClosed.
// The leases taken through q and not yet finished go back to the queue, as
// if their consumer had died (DeadConsumer is this process), and its
// reservations not yet committed are aborted; their methods then fail
// with ErrClosed. The queue itself stays until Unlink. Close is
// idempotent.
func (q *Queue) Close() error {
	q.heldMu.Lock()
	var held []*link
	if !q.closing && q.held.next != nil {
		for l := q.held.next; l != &q.held; l = l.next {
			held = append(held, l)
		}
	}
	q.closing = true
	q.heldMu.Unlock()
	for _, l := range held {
		l.h.giveBack()
	}
	return q.seg.Close()
}

// Unlink removes the queue's name; processes that have it open keep
// using it.
func (q *Queue) Unlink() error { return q.seg.Unlink() }

// putErr is err for a put of n bytes: ErrTooLarge says how large.
func (q *Queue) putErr(n int, err error) error {
	if err == ring.ErrTooLarge {
		return &Error{Pkg: "queue", Op: "put", Name: q.name, Err: fmt.Errorf("%w: %d bytes (at most %d bytes)", ErrTooLarge, n, q.r.MaxPayload())}
	}
	return q.err("put", err)
}

// err wraps a ring error for op, translating the ring's sentinels.
func (q *Queue) err(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case err == ring.ErrFull:
		if op == "put" {
			return q.errFull
		}
		err = ErrFull
	case err == ring.ErrEmpty:
		if op == "get" {
			return q.errEmpty
		}
		err = ErrEmpty
	case errors.Is(err, ring.ErrTooLarge):
		err = fmt.Errorf("%w (at most %d bytes)", ErrTooLarge, q.r.MaxPayload())
	case errors.Is(err, ring.ErrShutdown):
		err = ErrShutdown
	case errors.Is(err, ring.ErrClosed):
		err = ErrClosed
	case errors.Is(err, ring.ErrCorrupt):
		err = fmt.Errorf("%w: %v", ErrCorrupt, err)
	case errors.Is(err, context.DeadlineExceeded) && op == "put":
		err = fmt.Errorf("%w until the deadline: %w", ErrFull, err)
	case errors.Is(err, context.DeadlineExceeded) && op == "get":
		err = fmt.Errorf("%w until the deadline: %w", ErrEmpty, err)
	}
	return &Error{Pkg: "queue", Op: op, Name: q.name, Err: err}
}

func (q *Queue) closed(op string) error {
	if q.seg.Closed() {
		return &Error{Pkg: "queue", Op: op, Name: q.name, Err: ErrClosed}
	}
	return nil
}

// Put appends msg (0 to MaxMessage bytes, copied) to the queue, waiting
// for room until ctx is done. It returns nil once the message is in the
// queue: a process killed after that does not take it away. It fails with
// ErrTooLarge (nothing changed), ErrShutdown, ErrClosed or an error
// wrapping ctx.Err() (a deadline also matching ErrFull).
func (q *Queue) Put(ctx context.Context, msg []byte) error {
	return q.put(ctx, msg, true)
}

// TryPut is Put without waiting: ErrFull if there is no room.
func (q *Queue) TryPut(msg []byte) error {
	return q.put(context.Background(), msg, false)
}

// PutDeferred is Put without waking a consumer asleep waiting for a
// message: the wake-ups of a run of PutDeferred calls are made together
// by the next Flush, one system call instead of one per message, for a
// producer that sends in bursts (a pool's parent sending one call per
// message: about 1.35x the calls per second). The messages are in the
// queue when PutDeferred returns; consumers that are awake take them at
// once. Call Flush before the producer waits for anything else or goes
// idle: until then a sleeping consumer may not see the messages for up to
// 100ms (sleepers look that often). If the queue is full, PutDeferred
// flushes before it waits for room. Errors as Put.
func (q *Queue) PutDeferred(ctx context.Context, msg []byte) error {
	if err := q.closed("put"); err != nil {
		return err
	}
	var s ring.Slot
	err := q.r.Reserve(ctx, len(msg), 0, 0, false, &s)
	if err == ring.ErrFull {
		q.Flush()
		err = q.r.Reserve(ctx, len(msg), 0, 0, true, &s)
	}
	if err != nil {
		return q.putErr(len(msg), err)
	}
	copy(s.Data, msg)
	q.r.CommitDeferred(&s)
	q.deferred.Add(1)
	return nil
}

// Flush wakes the consumers asleep waiting for the messages PutDeferred
// put since the last Flush (as many as there are messages, at most). It
// costs one atomic operation when there were none, and does nothing after
// Close.
func (q *Queue) Flush() {
	if q.deferred.Load() == 0 || q.seg.Closed() {
		return
	}
	if n := q.deferred.Swap(0); n > 0 {
		q.r.WakeData(int(min(n, 1<<30)))
	}
}

func (q *Queue) put(ctx context.Context, msg []byte, block bool) error {
	if err := q.closed("put"); err != nil {
		return err
	}
	var s ring.Slot
	err := q.r.Reserve(ctx, len(msg), 0, 0, block, &s)
	if err != nil {
		return q.putErr(len(msg), err)
	}
	copy(s.Data, msg)
	q.r.Commit(&s)
	return nil
}

// Get removes the oldest message and returns it, waiting for one until
// ctx is done. It is a lease acknowledged once the message is copied out,
// Get's last step: if the process is killed inside Get before that, the
// message goes back to the queue for another consumer. It fails with ErrShutdown (shut down and drained), ErrClosed,
// ErrCorrupt or an error wrapping ctx.Err() (a deadline also matching
// ErrEmpty).
func (q *Queue) Get(ctx context.Context) ([]byte, error) {
	return q.get(ctx, true)
}

// TryGet is Get without waiting: ErrEmpty if there is no message.
func (q *Queue) TryGet() ([]byte, error) {
	return q.get(context.Background(), false)
}

func (q *Queue) get(ctx context.Context, block bool) ([]byte, error) {
	if err := q.closed("get"); err != nil {
		return nil, err
	}
	var s ring.Slot
	err := q.r.Claim(ctx, nil, block, &s)
	if err != nil {
		return nil, q.err("get", err)
	}
	out := make([]byte, len(s.Data))
	copy(out, s.Data)
	if err := q.r.Release(&s); err != nil {
		return nil, q.err("get", err)
	}
	return out, nil
}

// GetInto is Get into buf, which it reuses: it returns the message's
// length. If buf is too small it returns a *ShortBufferError (matching
// io.ErrShortBuffer) with the message's length, and the message stays in
// the queue.
func (q *Queue) GetInto(ctx context.Context, buf []byte) (int, error) {
	return q.getInto(ctx, buf, true)
}

// TryGetInto is GetInto without waiting: ErrEmpty if there is no message.
func (q *Queue) TryGetInto(buf []byte) (int, error) {
	return q.getInto(context.Background(), buf, false)
}

func (q *Queue) getInto(ctx context.Context, buf []byte, block bool) (int, error) {
	if err := q.closed("get"); err != nil {
		return 0, err
	}
	fits := func(h ring.Header) error {
		if h.Len() > len(buf) {
			return &ring.ShortBufferError{Need: h.Len()}
		}
		return nil
	}
	var s ring.Slot
	err := q.r.Claim(ctx, fits, block, &s)
	if err != nil {
		return 0, q.err("get", err)
	}
	n := copy(buf, s.Data)
	if err := q.r.Release(&s); err != nil {
		return 0, q.err("get", err)
	}
	return n, nil
}

// Len returns the number of messages put and not yet removed, leased
// ones included: Python's qsize. Like qsize it is a snapshot that other
// processes may change at once. After Close it panics with an error
// wrapping ErrClosed, as IsShutdown and Stats do.
func (q *Queue) Len() int {
	q.live("Len")
	return q.r.Len()
}

// live panics with an error wrapping ErrClosed if q is closed, for the
// methods that read the queue's memory and return no error (as Value's
// and Array's do).
func (q *Queue) live(op string) {
	if q.seg.Closed() {
		elems.UsedAfterClose("queue", op, q.seg)
	}
}

// Cap returns the bound on the number of messages (Options.MaxMessages),
// or 0 if only the ring's size bounds it.
func (q *Queue) Cap() int { return int(q.r.MaxMessages()) }

// Size returns the ring's size in bytes.
func (q *Queue) Size() int { return int(q.r.Size()) }

// MaxMessage returns the largest message in bytes.
func (q *Queue) MaxMessage() int { return int(q.r.MaxPayload()) }

// Shutdown stops the queue, as Python 3.13's Queue.shutdown: Put fails
// with ErrShutdown from now on, in every process; consumers take what is
// left and then get ErrShutdown. With immediate, what is left is
// discarded (counted as done for Join) and consumers get ErrShutdown at
// once. Blocked callers are woken. Shutdown is permanent.
func (q *Queue) Shutdown(immediate bool) error {
	if err := q.closed("shutdown"); err != nil {
		return err
	}
	f := uint64(ring.NoPut)
	if immediate {
		f |= ring.NoGet
	}
	q.r.SetFlags(f)
	if immediate {
		q.discard()
	}
	q.wakeJoin()
	return nil
}

// discard drops every message still in a queue shut down immediately.
func (q *Queue) discard() {
	c := q.r.Control()
	for {
		var s ring.Slot
		if err := q.r.Drain(&s); err != nil {
			return
		}
		// Count first: a process killed between the two lets Join
		// return one message early, never hang.
		c.Discarded.Add(1)
		q.r.Release(&s)
	}
}

// IsShutdown reports whether Shutdown was called (in any process).
func (q *Queue) IsShutdown() bool {
	q.live("IsShutdown")
	return q.r.Control().Flags.Load() != 0
}

// unfinished returns the number of messages put and not yet marked done.
func (q *Queue) unfinished() int64 {
	c := q.r.Control()
	done := c.TaskDone.Load() + c.Discarded.Load()
	return int64(c.Put.Load() - c.Void.Load() - done)
}

// TaskDone marks one message taken from the queue as processed, Python's
// JoinableQueue.task_done. It fails with ErrTaskDone if every message put
// is already marked done. A consumer that dies between Get and TaskDone
// leaves its message unfinished, as in Python: use leases where that
// matters.
func (q *Queue) TaskDone() error {
	if err := q.closed("task done"); err != nil {
		return err
	}
	c := q.r.Control()
	for {
		v := c.TaskDone.Load()
		if q.unfinished() <= 0 {
			return &Error{Pkg: "queue", Op: "task done", Name: q.name, Err: ErrTaskDone}
		}
		if race.Enabled {
			race.Release(&c.JoinSeq) // TaskDone happens before the Join it ends
		}
		if c.TaskDone.CompareAndSwap(v, v+1) {
			break
		}
	}
	if q.unfinished() <= 0 {
		q.wakeJoin()
	}
	return nil
}

func (q *Queue) wakeJoin() {
	c := q.r.Control()
	if c.JoinWaiters.Load() != 0 {
		c.JoinSeq.Add(1)
		q.r.WakeWord(&c.JoinSeq)
	}
}

// Join waits until every message put has been marked done with TaskDone
// (or discarded by an immediate Shutdown), Python's JoinableQueue.join.
// It fails with ErrClosed or an error wrapping ctx.Err().
func (q *Queue) Join(ctx context.Context) error {
	if err := q.closed("join"); err != nil {
		return err
	}
	c := q.r.Control()
	err := q.r.Wait(ctx, &c.JoinSeq, &c.JoinWaiters, func() bool {
		if c.Flags.Load()&ring.NoGet != 0 {
			q.discard() // messages committed after an immediate Shutdown
		}
		return q.unfinished() <= 0
	})
	if race.Enabled && err == nil {
		race.Acquire(&c.JoinSeq)
	}
	return q.err("join", err)
}

// Recover returns the messages held by consumers that died to the queue
// and drops the half-written messages of producers that died, now rather
// than at the next scan (blocked calls scan every 100ms, and busy
// consumers about as often). It returns how many messages it returned.
func (q *Queue) Recover(ctx context.Context) (int, error) {
	if err := q.closed("recover"); err != nil {
		return 0, err
	}
	_, n, err := q.r.Recover(ctx)
	return n, q.err("recover", err)
}

// Stats is a snapshot of a queue, for monitoring (xproc inspect).
type Stats struct {
	Messages    int // put and not yet removed (Len)
	Ready       int // waiting for a consumer
	Leased      int // held by consumers
	Writing     int // being written by producers
	Redelivered int // ready again after a Nak or a consumer's death
	UsedBytes   int // bytes of ring between head and tail
	Size        int // ring bytes
	MaxMessage  int
	MaxMessages int
	Put         uint64 // messages ever put (the last sequence number)
	Unfinished  int    // put and not yet marked done (Join)
	Shutdown    bool
	Immediate   bool
}

// Stats reads the queue's state without stopping it.
func (q *Queue) Stats() Stats {
	q.live("Stats")
	s := q.r.Stats()
	return Stats{
		Messages: int(s.Messages), Ready: s.Ready, Leased: s.Leased, Writing: s.Writing,
		Redelivered: s.Returned, UsedBytes: int(s.Tail - s.Head),
		Size: q.Size(), MaxMessage: q.MaxMessage(), MaxMessages: q.Cap(),
		Put: s.Put, Unfinished: int(max(q.unfinished(), 0)),
		Shutdown: s.Flags&ring.NoPut != 0, Immediate: s.Flags&ring.NoGet != 0,
	}
}

// SetSpin sets how long blocked calls on this handle spin before they
// sleep (default 20µs on a multi-core machine; 0 sleeps at once).
func (q *Queue) SetSpin(d time.Duration) { q.r.Spin = d }
