// Package value puts one typed value in shared memory, for processes to
// read and update together: what Python's multiprocessing.Value and
// RawValue give, with a Go type parameter instead of a type code.
//
// # Basics
//
// One process creates a Value by name with its initial value, others open
// it by name with the same type:
//
//	v, err := value.Create[float64]("temperature", 20.5) // Value('d', 20.5)
//	...
//	v, err := value.Open[float64]("temperature")
//	defer v.Close()
//
// Load, Store and Update take the Value's lock (an xsync.Mutex beside the
// value), so every process sees whole values and Update is an atomic
// read-modify-write, like Python's synchronized wrapper:
//
//	v.Update(func(p *float64) { *p += 1.5 })
//
// Lock and Unlock hold that lock across several steps: Python's
// "with v.get_lock():". As in Python, whose Value lock is an RLock, the
// goroutine holding it may call Load, Store and Update, which then do not
// take it again, so the direct translation works:
//
//	v.Lock() // with v.get_lock():
//	v.Store(v.Load() * 2) //     v.value *= 2
//	v.Unlock()
//
// Ptr returns a pointer to the value itself for raw access without the
// lock (Python's RawValue, or Value(lock=False)).
//
// T can be any fixed-size type without pointers: booleans, integers,
// floats, complex numbers, fixed-size arrays and structs of these,
// including the primitives of package sync (import it as xsync), so that
//
//	type job struct {
//		Mu    xsync.Mutex
//		Count int64
//		Done  xsync.Event
//	}
//
// is a valid Value whose fields several processes lock and wait on.
// Create such a T with CreateFunc, which initialises it in place (Init a
// Semaphore or Barrier field there) before any other process can open
// it, and copies no lock, so go vet stays quiet:
//
//	v, err := value.CreateFunc[job]("job", nil) // or with an init function
//
// Create and Open check T by reflection
// and refuse a T holding a pointer, slice, map, string, channel, function
// or interface with shm.ErrUnsupportedType, naming the field. The segment
// header records T's size, alignment and a fingerprint of its layout:
// opening it with a type of another layout fails with
// shm.ErrTypeMismatch, opening something that is not a Value with
// shm.ErrKind.
//
// CreateAnonymous makes a Value without a name, for a child process:
// with package process, pass process.Files(v.Segment().File()) to
// process.Start and map it in the worker with OpenFile(process.File(0));
// with exec.Cmd, pass v.Segment().File() in cmd.ExtraFiles and map it in
// the child with OpenFile(os.NewFile(3, "value")).
//
// # Atomics
//
// For a T whose underlying type is an integer or a float, Add,
// CompareAndSwap, AtomicLoad and AtomicStore work without the lock, at the
// cost of one atomic instruction: Value[int64].Add costs what
// atomic.AddInt64 does. Integers of every size are supported; those of 8
// and 16 bits are updated by a compare-and-swap loop on the 32-bit word
// around them, and Add on floats is a compare-and-swap loop. On any other
// T these methods panic: that is a programming error, found the first time
// the code runs.
//
// Atomic operations and the locked ones (Load, Store, Update) do not
// exclude each other: pick one discipline for a value.
//
// # Layout
//
// The value sits at the very start of the segment's data area (the
// header's DataOffset), so other languages find it there; the lock sits
// right after it, at T's size rounded up to a multiple of 8 bytes,
// recorded in the header's Params[0] and checked by Open. A value of up to
// 56 bytes thus shares one cache line with its lock, and a locked update
// moves one line between the cores, not two. LAYOUT.md in the repository
// describes the header byte by byte and shows how Python reads a Value
// with multiprocessing.shared_memory.
//
// # Caveats
//
// Access through Ptr is not synchronised: two processes incrementing
// *v.Ptr() at once lose increments (a test in this package shows it),
// and a reader may see a multi-word T half-written. Use Update or the
// atomics for counters.
//
// The race detector does not see accesses to shared memory (it watches
// only memory that Go allocated), so it reports no race on it, between
// goroutines or processes.
//
// The pointer from Ptr is valid only until Close; using it afterwards
// faults. Unlink removes the name only; mappings stay valid until closed.
//
// The function given to Update runs under the lock without owning it as
// Lock does: it must not call Load, Store or Update on the same Value,
// which would wait for it forever (use Lock for such steps). The
// goroutine that holds the lock through Lock is its holder through that
// handle only: another handle of the same segment waits, in this process
// too. If a process dies holding the lock, the next Load, Store, Update
// or Lock takes it over silently (see xsync.Mutex) and may see a
// half-written value; to be told, lock with LockContext, which returns
// xsync.ErrOwnerDead.
//
// T is stored as Go lays it out in memory, which is the machine's (Linux
// on amd64 and arm64 is little-endian) and which the fingerprint pins
// down. Types whose size depends on the machine (int, uint) are best
// avoided in values shared with other languages; uintptr is refused (it
// holds addresses and handles: store a uint64).
//
// Only Linux is supported; elsewhere Create and Open return
// shm.ErrNotSupported.
package value
