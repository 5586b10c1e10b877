// Package array puts a fixed-length array of a type in shared memory, for
// processes to read and update together: what Python's
// multiprocessing.Array and RawArray give, with a Go type parameter, and
// with no lock on the element accesses that need none.
//
// # Basics
//
// One process creates an array by name, zeroed or from a slice; others
// open it by name with the same element type:
//
//	a, err := array.Create[float64]("weights", 1<<20)       // Array('d', 1<<20)
//	a, err := array.CreateFrom("primes", []int32{2, 3, 5, 7}) // Array('i', [2, 3, 5, 7])
//	...
//	a, err := array.Open[float64]("weights", 0) // 0: any length; see Len
//	defer a.Close()
//
// There are three ways to touch the elements:
//
//   - Locked, like Python's synchronized Array: Get, Set, ReadAt and
//     WriteAt (bulk copies of a sub-range, with Go's copy semantics) and
//     Update (any read-modify-write of the whole array) take the array's
//     lock, an xsync.Mutex. Lock and Unlock hold it across several steps
//     (Python's "with a.get_lock():"); as with Python's RLock, the
//     goroutine holding it may call the locked methods, which then do not
//     take it again.
//   - Atomic, for integer and float elements: Add, CompareAndSwap,
//     AtomicLoad and AtomicStore on one element, without the lock, each
//     one atomic instruction (or a compare-and-swap loop for floats and
//     8 or 16-bit integers). They panic on other element types.
//   - Raw: Slice returns the elements themselves as a []T in shared
//     memory (Python's RawArray), for code that runs at the speed of a
//     private slice. Hogwild-style algorithms, where several processes
//     update the same array without locking and accept that an
//     occasional update is lost, use it.
//
// Elements may be of any fixed-size type without pointers: booleans,
// integers, floats, complex numbers, fixed-size arrays and structs of
// these (including xsync primitives; create an array whose elements hold
// a Semaphore or Barrier with CreateFunc, which initialises them before
// any other process can open it). Create and Open check T by
// reflection and refuse a T holding a pointer, slice, map, string,
// channel, function or interface with shm.ErrUnsupportedType, naming the
// field. The header records T's layout and the length: opening with
// another element type fails with shm.ErrTypeMismatch, with another
// length (when Open is given one) with shm.ErrLenMismatch, and opening
// something that is not an array with shm.ErrKind. A length below 1 is
// refused with ErrInvalidLen, one whose size in bytes overflows or exceeds
// MaxBytes with ErrTooLarge (which also matches ErrInvalidLen). Indexing
// out of range panics, like indexing a slice.
//
// CreateShape records a shape of up to MaxDims dimensions for
// multi-dimensional data, stored in row-major order; Shape returns it and
// Index turns a multi-dimensional index into a position.
//
// CreateAnonymous makes an array without a name, for a child process:
// with package process, pass process.Files(a.Segment().File()) to
// process.Start and map it in the worker with
// OpenFile(process.File(0), n); with exec.Cmd, pass a.Segment().File()
// in cmd.ExtraFiles and map it in the child with
// OpenFile(os.NewFile(3, "array"), n). A named array is opened by name.
//
// # Layout
//
// The elements start at the very beginning of the segment's data area
// (the header's DataOffset), back to back, so that other languages see a
// plain C array there (numpy: np.ndarray(shape, dtype, buffer, offset));
// the lock sits after them, at their size in bytes rounded up to a
// multiple of 64, recorded in the header's Params[0] and checked by Open.
// LAYOUT.md in the repository describes the header byte by byte and shows
// how Python reads an array with multiprocessing.shared_memory.
//
// # Caveats
//
// Access through Slice is not synchronised: two processes adding to the
// same element at the same time can lose one of the additions (a test in
// this package counts them), and a reader can see an element of several
// words half-written. Use the atomics for exact counts.
//
// The race detector does not see accesses to shared memory (it watches
// only memory that Go allocated), so it reports no race on it, between
// goroutines or processes.
//
// The slice from Slice is valid only until Close; using it afterwards
// faults. Unlink removes the name only; mappings stay valid until closed.
//
// The function given to Update runs under the lock without owning it as
// Lock does: it must not call the array's locked methods, which would
// wait for it forever (use Lock for such steps). The goroutine that holds
// the lock through Lock is its holder through that handle only: another
// handle of the same segment waits, in this process too. If a process
// dies holding the lock, the next locked call takes it over silently (see
// xsync.Mutex); to be told, lock with LockContext, which returns
// xsync.ErrOwnerDead.
//
// Atomic operations and locked ones do not exclude each other: pick one
// discipline per element.
//
// Elements are stored as Go lays them out, in the machine's byte order
// (little-endian on Linux amd64 and arm64). Types whose size depends on
// the machine (int, uint) are best avoided in arrays shared with other
// languages; uintptr is refused (it holds addresses and handles: store a
// uint64).
//
// Only Linux is supported; elsewhere Create and Open return
// shm.ErrNotSupported.
package array
