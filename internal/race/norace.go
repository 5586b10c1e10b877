//go:build !race

// Package race tells the race detector about the happens-before edges that
// xproc's primitives create. The detector ignores synchronisation through
// atomics on memory it does not manage (an mmap'd segment), so without
// these annotations two goroutines that share Go memory under an
// xsync.Mutex would be reported as racing. Without -race every function
// here is empty and inlined away.
package race

// Enabled reports whether the race detector is on.
const Enabled = false

// Acquire records that the caller has acquired p, a pointer to a
// primitive.
func Acquire(p any) {}

// Release records that the caller releases p; later Acquires of p happen
// after it.
func Release(p any) {}
