// Package sync provides synchronisation primitives shared between
// processes: what Python's multiprocessing calls Lock, RLock, Semaphore,
// BoundedSemaphore, Event, Condition and Barrier. Import it under an alias:
//
//	import xsync "github.com/xproc-go/xproc/sync"
//
// # Basics
//
// Every primitive is a small, fixed-size struct with no pointers, so it can
// live in shared memory in two ways:
//
//   - as a field of a struct in a segment that several processes map, for
//     example a value.Value[T] with T = struct{ Mu xsync.Mutex; N int64 }.
//     The zero value is ready; Semaphore and Barrier need Init first, done
//     in the function given to value.CreateFunc, which runs before any
//     other process can open the struct (and copies no lock);
//   - standing alone in a segment of its own, by name: CreateMutex(name)
//     in one process and OpenMutex(name) in the others, each returning a
//     handle with Close and Unlink.
//
// A primitive in ordinary Go memory also works, between goroutines.
//
// Every blocking call has a context form (LockContext, AcquireContext,
// WaitContext, ...) that returns ctx.Err() promptly when ctx ends. The
// forms without a context wait as long as it takes. If what a call waits
// for is already there, it succeeds even when ctx has already ended, so an
// expired context makes a non-blocking attempt.
//
// Waiting is cheap in both directions. The uncontended paths are one
// atomic instruction, without a system call: Mutex.Lock and Unlock cost the
// same as sync.Mutex's. A waiter first spins for up to 20µs (a peer running
// on another core usually answers within that), then sleeps in the kernel
// (a futex shared between processes), and a waker makes a system call only
// if someone sleeps. Of the goroutines of one process that wait on the same
// primitive, only one at a time sleeps in the kernel; the others queue in
// the Go scheduler, so a thousand blocked goroutines do not become a
// thousand OS threads.
//
// Mutex, ReentrantMutex and the named handles that lock (NamedMutex,
// NamedReentrantMutex, NamedCond) are sync.Lockers.
//
// # Arguments and errors
//
// One rule for arguments: a value out of range (a Semaphore value above
// MaxSemaphore or below 0, a Barrier of 0 parties, a negative timeout or
// count) is an error, never a panic. The call changes nothing and returns
// an error wrapping ErrInvalid that names the call, the argument, the
// value given and the values allowed:
//
//	xsync: invalid argument: Semaphore.Init: value -1 (want 0 to 2147483647)
//
// Only misuse that Go's own sync treats as fatal panics, with a message
// starting "xsync:": unlocking a Mutex that is not locked, or a
// ReentrantMutex the caller does not hold (the panic value then wraps
// ErrNotOwner). Cond.Notify with n ≤ 0 wakes nobody, as Python's
// notify(0) does. Errors are sentinels, wrapped, compared with errors.Is;
// a named primitive's errors are the *shm.Error of its segment and match
// shm's sentinels (and io/fs's, for a missing or existing name).
//
// # Process death
//
// A process can be killed at any instruction. No primitive lets that make
// the others wait forever where it can tell, and none takes anything from
// a process that is still there:
//
//   - Mutex and ReentrantMutex record their holder (pid, PID namespace and
//     start time). A holder that died, exec'd another program or closed
//     the segment can never unlock; a waiter then takes the lock over,
//     returning ErrOwnerDead with the lock held. Whether the holder still
//     maps the segment is asked of the kernel (each process holds a lock
//     on a byte of the segment file while it maps it; see LAYOUT.md), so
//     the answer is right across PID namespaces: a live holder in another
//     container sharing /dev/shm is never robbed. A waiter already asleep
//     when its holder is killed is woken through the holder's pidfd and
//     takes over within about a millisecond (median 0.5ms, measured by
//     BenchmarkMutexTakeover); a holder that execs, or one of another PID
//     namespace, whose end no pidfd shows, is asked every 2ms (by one
//     goroutine of the process) whether it still maps the segment: a
//     takeover in about 3ms (median, TestTakeoverIsFast). Behind both,
//     waiters check every 100ms.
//   - Barrier breaks, with ErrBroken for every party, when a known party
//     (a process that opened the barrier, joined it or waited on it) dies
//     or execs while others wait. (A party that closes the segment
//     leaves the barrier's parties: nobody waits for it any more.)
//   - Cond counts waiters per process: a waiter killed while waiting is
//     forgotten once a sleeping waiter notices (within 100ms), and costs
//     at most one spurious wake-up, whatever follows.
//   - Event and Semaphore have no owner: a process that dies before
//     setting or releasing cannot be told from a slow one. Use the context
//     forms with a deadline where that matters. The death of a waiter
//     never harms other waiters.
//   - A waker killed between changing a word and waking the sleepers
//     delays them by at most 100ms: every sleeper re-checks at that
//     interval. (For Cond, a notifier killed half-way delays the waiters
//     it released until the next notification.)
//   - Counts of sleepers left by a process killed while sleeping only cost
//     wakers a needless system call.
//
// # Caveats
//
// All processes must share one kernel (one machine, containers
// included). Liveness is exact where the segment's file system supports
// open-file-description locks (tmpfs, ext4, xfs, btrfs: every local one);
// where it does not, it falls back to /proc, which is reliable only when
// all processes share a PID namespace: an identity carries 8 bits of its
// namespace, so a process of another one is told apart 255 times in 256.
//
// Closing a handle while calls are blocked on it wakes them (within
// 100ms) with ErrClosed; the blocking calls without an error result
// (Mutex.Lock, ReentrantMutex.Lock, Event.Wait, Semaphore.Acquire) panic
// instead. Calls on a named handle after its Close do the same: those with
// an error result return an error wrapping ErrClosed, the others panic
// with one, which recover can catch; calls through the handle's Segment
// fail with ErrClosed too (shm.Segment). Close can be called again. No
// handle hands out a pointer into its segment (NamedCond has no accessor
// for its Mutex or Cond, whose pointers would outlive Close), so only a
// call racing with Close, or one through a pointer taken from a
// value.Value or shm.View (valid until Close, as they say), can fault.
//
// Go's own sync types (sync.Mutex, RWMutex, WaitGroup, Once, Cond) hold
// no pointers but keep their waiters in one process's runtime: they are
// refused in shared memory (ErrUnsupportedType, naming the field), and so
// are types declared from them (type MyMu sync.Mutex) and other
// process-local types (hash/maphash.Seed, runtime/cgo.Handle, uintptr).
// Use these primitives instead.
//
// ReentrantMutex identifies goroutines through the runtime's stack trace
// header, which costs about a microsecond per call.
//
// Only Linux is supported for sharing between processes. Elsewhere the
// primitives work between goroutines, waiting by polling.
package sync
