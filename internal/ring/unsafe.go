package ring

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// This file holds every unsafe conversion in the package.

// view splits a ring's memory into its control block and its records. mem
// must be 8-byte aligned and longer than the control block.
func view(mem []byte) (*Control, []byte, error) {
	if uintptr(len(mem)) <= unsafe.Sizeof(Control{}) || uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%8 != 0 {
		return nil, nil, fmt.Errorf("ring memory of %d bytes at %p: too short or misaligned", len(mem), unsafe.SliceData(mem))
	}
	return (*Control)(unsafe.Pointer(&mem[0])), mem[ControlSize:], nil
}

// word returns the 8 bytes of buf at i as an atomic word. i must be a
// multiple of 8; the slice expression checks that the word is in buf.
func word(buf []byte, i uint64) *atomic.Uint64 {
	b := buf[i : i+8 : i+8]
	return (*atomic.Uint64)(unsafe.Pointer(unsafe.SliceData(b)))
}

// The control block is exactly ControlSize bytes.
var (
	_ [ControlSize - unsafe.Sizeof(Control{})]byte
	_ [unsafe.Sizeof(Control{}) - ControlSize]byte
)

// release stores v in w with (at least) release ordering: every memory
// access before it is visible to a process that loads v from w before
// anything that process does after the load. It is sync/atomic's Store:
// XCHG on amd64, STLR on arm64. A plain store behind an assembly call (a
// release on amd64, and a barrier to the compiler) measured no faster,
// in one process or between two.
func release(w *atomic.Uint64, v uint64) { w.Store(v) }

// relaxed stores v in w with a plain store: for words written before a
// store that publishes them (a release, or the producers' unlock), and
// for words read only under the producers' lock or as hints. An aligned
// 8-byte store is never torn on the systems Go supports. w's only field
// is its value, at offset 0.
func relaxed(w *atomic.Uint64, v uint64) {
	*(*uint64)(unsafe.Pointer(w)) = v
}
