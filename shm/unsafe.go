package shm

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/xproc-go/xproc/internal/layout"
)

// This file holds every unsafe conversion in the package. Each one checks
// size and alignment before it converts.

// attachTable views the attach table of a mapped header page.
func attachTable(mem []byte) []atomic.Uint64 {
	b := mem[layout.AttachOffset : layout.AttachOffset+8*layout.AttachSlots]
	return unsafe.Slice((*atomic.Uint64)(unsafe.Pointer(&b[0])), layout.AttachSlots)
}

// readyWord views the ready flag of a mapped header page.
func readyWord(mem []byte) *atomic.Uint32 {
	b := mem[layout.ReadyOffset : layout.ReadyOffset+4]
	return (*atomic.Uint32)(unsafe.Pointer(&b[0]))
}

// View returns a pointer to the T at offset off of the segment's data. It
// fails unless T can live in shared memory, off is aligned for T and the T
// fits, and with ErrClosed after Close. The pointer is valid until Close.
func View[T any](s *Segment, off uint64) (*T, error) {
	t, err := TypeOf[T]()
	if err != nil {
		return nil, err
	}
	if s.Closed() {
		return nil, &Error{Op: "view", Name: s.name, Err: ErrClosed}
	}
	if off%t.Align != 0 || off > uint64(len(s.data)) || uint64(len(s.data))-off < t.Size {
		return nil, fmt.Errorf("%w: %s at offset %d of %d data bytes", ErrInvalid, t.Name, off, len(s.data))
	}
	return (*T)(unsafe.Pointer(&s.data[off])), nil
}

// Slice returns n Ts starting at offset off of the segment's data, under
// the same checks as View. The slice is valid until Close.
func Slice[T any](s *Segment, off, n uint64) ([]T, error) {
	t, err := TypeOf[T]()
	if err != nil {
		return nil, err
	}
	if s.Closed() {
		return nil, &Error{Op: "slice", Name: s.name, Err: ErrClosed}
	}
	// The offset is checked even for n == 0, as View checks it: a
	// misaligned or out-of-range offset is a caller bug either way.
	size := uint64(len(s.data))
	if off%t.Align != 0 || off > size || (size-off)/t.Size < n {
		return nil, fmt.Errorf("%w: %d × %s at offset %d of %d data bytes", ErrInvalid, n, t.Name, off, size)
	}
	if n == 0 {
		return []T{}, nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&s.data[off])), n), nil
}
