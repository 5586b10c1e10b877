// Package queue is a message queue in shared memory for separately
// exec'd processes: what Python's multiprocessing.Queue, JoinableQueue and
// SimpleQueue give, with no broker, no socket and no feeder thread, and
// with messages that survive the death of any process.
//
// # Basics
//
// A Queue carries byte messages from any number of producers to any
// number of consumers, goroutines and processes alike (MPMC). One process
// creates it by name (or anonymously, to hand to a child), the others
// open it:
//
//	q, err := queue.Create("jobs", queue.Options{MaxMessages: 100})
//	defer q.Unlink()
//	err = q.Put(ctx, []byte("work"))
//
//	q, err := queue.Open("jobs")        // in another process
//	msg, err := q.Get(ctx)
//
// Every committed message is delivered whole to exactly one Get, in the
// order of its producer's Puts (and, across producers, in the order their
// Puts claimed room). Messages are 0 to MaxMessage bytes; a larger one is
// refused with ErrTooLarge and nothing changes. TryPut and TryGet do not
// wait (ErrFull, ErrEmpty); Put, Get and the rest wait until their
// context is done. GetInto reuses the caller's buffer and leaves a
// message that does not fit in the queue (a *ShortBufferError, matching
// io.ErrShortBuffer). A producer that sends in bursts can put with
// PutDeferred and wake sleeping consumers once per burst with Flush.
//
// Shutdown(false) stops producers and lets consumers drain what is left,
// then get ErrShutdown; Shutdown(true) discards the rest (Python 3.13).
// TaskDone and Join are JoinableQueue's.
//
// GetLease hands a message to a consumer until it calls Ack (the message
// is gone) or Nak (it goes back, ahead of newer ones). If the consumer
// dies first, the message goes back by itself: delivery is at least once,
// and the lease that receives it again says so (Redelivered,
// NumDelivered, DeadConsumer). Get is a lease acknowledged as its last
// step, once it has copied the message out: a consumer killed inside Get
// before that loses nothing, and no message reaches user code twice. (One
// killed in the instants between that step and Get's return loses the
// message with the rest of its memory, as it would any message it had
// received.) A lease reads its message in place, and Reserve lets a
// producer write one in place (zero copy).
//
// Of[T] is a queue of fixed-size, pointer-free values (an int64, a struct
// of numbers), copied as raw bytes; Coded[T] carries any Go value through
// a Codec (encoding/gob by default, as Python pickles).
//
// # From Python
//
//	multiprocessing                        queue
//	Queue(maxsize)                         Create(name, Options{MaxMessages: maxsize})
//	q.put(x), q.put(x, timeout=t)          Put(ctx, msg)  (deadline in ctx)
//	q.put_nowait(x)                        TryPut(msg)  → ErrFull
//	q.get(), q.get(timeout=t)              Get(ctx)
//	q.get_nowait()                         TryGet()  → ErrEmpty
//	q.qsize(), q.empty(), q.full()         Len(), Len() == 0, Cap() > 0 && Len() >= Cap()
//	JoinableQueue: task_done(), join()     TaskDone(), Join(ctx)
//	q.shutdown(immediate)                  Shutdown(immediate)
//	pickled objects                        WithCodec[T](q, nil).Put / Get
//
// # Design
//
// The messages live in a ring of bytes in the segment (internal/ring has
// the layout, an ASCII diagram and the invariants). A producer takes a
// small lock, writes the record's header and moves the tail (tens of
// nanoseconds), then copies its message without the lock and publishes it
// with one store. A consumer claims the oldest message with one CAS on
// its header, which records the consumer's identity, copies it out and
// marks it done. Blocked calls spin for up to 20µs, then sleep on a futex
// word with a count of sleepers beside it, so that the other side makes a
// system call only when someone sleeps; many goroutines blocked in one
// process cost one OS thread.
//
// Departures from the project design's recommended ring (the one of
// Agrona's ManyToOneRingBuffer, made multi-consumer), each with its
// reason:
//
//   - Producers claim room under a small lock instead of with a CAS on
//     the tail. A producer killed between a CAS on the tail and the store
//     of its record's header would leave a claimed record with no owner
//     recorded, which no process could tell from a slow producer, and
//     consumers would wait behind it for ever. The lock's word holds its
//     owner, so a dead holder is taken over (xsync.Mutex), and the header
//     is written before the tail moves. Measured, it leaves a put at about
//     25 ns in one process, and one producer process feeding one consumer
//     process at 18 M messages/s of 64 bytes (the README's Speed table),
//     above the 10 M/s target.
//   - Consumers do not read the tail to find a message: a record's state
//     word, when READY, carries a tag of its position mixed with a random
//     salt of the queue, which only that record's commit can have
//     written. Reading the tail on every Get moved the producers' cache
//     line to the consumer for every message: 3.4 M messages/s.
//   - Consumers, not producers, free room, in batches over the records
//     they have just read (still in their cache); the producers' lazy
//     walk over the consumed records fetched each from the consumer's
//     core. Together with the item above: 3.4 → 18 M messages/s.
//
// # Process death
//
// A producer killed before its message is committed leaves nothing: the
// room it claimed is skipped once its death is noticed. A consumer
// killed holding a message (inside Get, or before Ack) gives it back.
// Both are noticed by a scan of the ring, at most every 100ms in all:
// any call blocked waiting runs it, and so do a TryGet or TryPut that
// find nothing (or no room) while messages are held, and a consumer every
// 1024 messages it removes; Recover runs it at once. A queue only ever
// put to, with nobody waiting or polling, is not scanned. Close gives back at once the leases and
// reservations taken through the handle it closes.
//
// # Caveats
//
// A lease holds its room in the ring until Ack or Nak: the head of the
// ring cannot move past it, so a long-held lease at the head eventually
// fills the ring behind it (JetStream's MaxAckPending plays the same
// role). Size the ring for the messages in flight.
//
// A reservation holds back the messages put after it until it is
// committed; a producer stopped (SIGSTOP, a debugger) inside Reserve or
// Put holds up consumers as long, since it is not dead.
//
// The counters behind Len, Cap and Join are updated beside the ring, not
// in the same atomic step: a process killed in the few instructions
// between the two can leave Len one too low (a bounded queue then takes
// one message more than its bound) but never makes a call wait for ever.
// TaskDone is Python's: a consumer that dies between Get and TaskDone
// leaves Join waiting; use leases where that matters.
//
// Data returned by a lease or a reservation is valid only until Ack, Nak,
// Commit or Abort, and until Close.
package queue
