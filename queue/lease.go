package queue

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/ring"
	"github.com/xproc-go/xproc/shm"
)

// Lease is a message handed to one consumer until it acknowledges it
// (Ack: the message is gone) or puts it back (Nak: the next consumer gets
// it). If the consumer's process dies first, the message goes back to the
// queue by itself within about 100ms of another process waiting on the
// queue or polling it (see "Process death" in the package documentation;
// at-least-once delivery), with Redelivered, NumDelivered and
// DeadConsumer saying so; if the consumer closes the Queue it took the
// lease through, Close gives it back at once. This is the contract of
// NATS JetStream's acknowledged consumers.
//
// Data is the message in place, in the queue's shared memory: no copy.
// It is valid until Ack, Nak or the queue's Close; copy what must outlive
// them. A lease is for one goroutine at a time.
type Lease struct {
	q    *Queue
	s    ring.Slot
	done atomic.Bool
	link link
}

// GetLease takes the oldest message as a lease, waiting for one until ctx
// is done. Messages put back (Nak, or a dead consumer's once the scan has
// found it: within about 100ms of the death, not at once) are handed out
// before newer ones. It fails as Get does.
func (q *Queue) GetLease(ctx context.Context) (*Lease, error) {
	return q.getLease(ctx, true)
}

// TryGetLease is GetLease without waiting: ErrEmpty if there is none.
func (q *Queue) TryGetLease() (*Lease, error) {
	return q.getLease(context.Background(), false)
}

func (q *Queue) getLease(ctx context.Context, block bool) (*Lease, error) {
	if err := q.enter("get"); err != nil {
		return nil, err
	}
	defer q.r.Region().Leave()
	var s ring.Slot
	err := q.r.Claim(ctx, nil, block, &s)
	if err != nil {
		return nil, q.err("get", err)
	}
	l := &Lease{q: q, s: s}
	l.link.h = l
	if !q.hold(&l.link) {
		l.giveBack()
		return nil, &Error{Pkg: "queue", Op: "get", Name: q.name, Err: ErrClosed}
	}
	return l, nil
}

// Data returns the message, in place. It is valid until Ack or Nak. After
// the queue's Close it panics with an error wrapping ErrClosed (the
// memory is gone), as Queue.Len does.
func (l *Lease) Data() []byte {
	l.q.live("Lease.Data")
	return l.s.Data
}

// Seq returns the message's sequence number: 1 for the first message ever
// put in the queue, 2 for the next, and so on (JetStream's stream
// sequence). Messages of one producer have increasing numbers.
func (l *Lease) Seq() uint64 { return l.s.Hdr.Seq }

// NumDelivered returns how many times the message was handed out, this
// time included (JetStream's NumDelivered).
func (l *Lease) NumDelivered() int { return l.s.Hdr.Deliveries() }

// Redelivered reports whether the message was handed out before: put
// back with Nak, or held by a consumer that died.
func (l *Lease) Redelivered() bool { return l.s.Hdr.Flags()&ring.FlagReturned != 0 }

// DeadConsumer returns the pid of the consumer process that died (or
// closed the queue) holding the message, the last time that happened, or
// 0 if it never did.
func (l *Lease) DeadConsumer() int { return l.s.Hdr.DiedOwner().Pid() }

// Ack removes the message from the queue for good. It fails with
// ErrLeaseDone if the lease was already acknowledged or put back, and
// with ErrClosed after the queue's Close.
func (l *Lease) Ack() error {
	if err := l.finish("ack"); err != nil {
		return err
	}
	return l.q.err("ack", l.q.r.Release(&l.s))
}

// Nak puts the message back: the next GetLease or Get, in any process,
// takes it (before newer messages). It fails as Ack does.
func (l *Lease) Nak() error {
	if err := l.finish("nak"); err != nil {
		return err
	}
	return l.q.err("nak", l.q.r.Return(&l.s, 0))
}

func (l *Lease) finish(op string) error {
	if err := l.q.closed(op); err != nil {
		return err
	}
	if !l.done.CompareAndSwap(false, true) {
		return &Error{Pkg: "queue", Op: op, Name: l.q.name, Err: ErrLeaseDone}
	}
	l.q.release(&l.link)
	return nil
}

// giveBack returns the message at the queue's Close, as the scans return
// a dead consumer's.
func (l *Lease) giveBack() {
	if l.done.CompareAndSwap(false, true) {
		l.q.r.Return(&l.s, owner.Self())
	}
}

// Reservation is room for one message, reserved in the queue so that the
// producer writes the message in place (zero copy) and then commits it.
// Until Commit no consumer sees it; a producer killed before Commit
// leaves no trace (the room is skipped once its death is noticed, within
// about 100ms of a consumer waiting), and consumers never see a partial
// message. A reservation holds back the messages put after it until it
// is committed or aborted: commit promptly.
type Reservation struct {
	q    *Queue
	s    ring.Slot
	done atomic.Bool
	link link
}

// Reserve reserves room for a message of n bytes, waiting for room until
// ctx is done. It fails as Put does.
func (q *Queue) Reserve(ctx context.Context, n int) (*Reservation, error) {
	if err := q.enter("reserve"); err != nil {
		return nil, err
	}
	defer q.r.Region().Leave()
	if n < 0 {
		return nil, &Error{Pkg: "queue", Op: "reserve", Name: q.name, Err: fmt.Errorf("%w: n %d (want 0 to %d)", shm.ErrInvalid, n, q.MaxMessage())}
	}
	var s ring.Slot
	err := q.r.Reserve(ctx, n, 0, 0, true, &s)
	if err != nil {
		return nil, q.putErr(n, err)
	}
	res := &Reservation{q: q, s: s}
	res.link.h = res
	if !q.hold(&res.link) {
		res.giveBack()
		return nil, &Error{Pkg: "queue", Op: "reserve", Name: q.name, Err: ErrClosed}
	}
	return res, nil
}

// Bytes returns the message's n bytes in place, to be written. Their
// initial content is unspecified. Valid until Commit, Abort or the
// queue's Close (which aborts it); after Close it panics with an error
// wrapping ErrClosed.
func (r *Reservation) Bytes() []byte {
	r.q.live("Reservation.Bytes")
	return r.s.Data
}

// Commit puts the message in the queue. It fails with ErrLeaseDone after
// Commit or Abort, and ErrClosed after the queue's Close.
func (r *Reservation) Commit() error {
	if err := r.finish("commit"); err != nil {
		return err
	}
	r.q.r.Commit(&r.s)
	return nil
}

// Abort gives the room back without putting a message. It fails as
// Commit does.
func (r *Reservation) Abort() error {
	if err := r.finish("abort"); err != nil {
		return err
	}
	r.q.r.Abort(&r.s)
	return nil
}

func (r *Reservation) finish(op string) error {
	if err := r.q.closed(op); err != nil {
		return err
	}
	if !r.done.CompareAndSwap(false, true) {
		return &Error{Pkg: "queue", Op: op, Name: r.q.name, Err: ErrLeaseDone}
	}
	r.q.release(&r.link)
	return nil
}

// giveBack aborts the reservation at the queue's Close.
func (r *Reservation) giveBack() {
	if r.done.CompareAndSwap(false, true) {
		r.q.r.Abort(&r.s)
	}
}
