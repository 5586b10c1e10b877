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
