// Package elems is the data layout that value.Value and array.Array
// share: Len elements back to back from data offset 0, then the lock, an
// xsync.Mutex, at the offset Params[0] records (LockOffset says where).
// LAYOUT.md ("Value and Array") documents it for other languages.
package elems

import (
	"fmt"

	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
)

// lockSize is the size of an xsync.Mutex.
const lockSize = 8

// LockOffset returns where the lock sits after elemBytes bytes of
// elements in a segment of the given kind.
//
// In an Array it is elemBytes rounded up to a multiple of 64, so that the
// lock never shares a cache line with an element: raw (hogwild) updates
// of the elements and locked operations do not slow each other down.
//
// In a Value it is elemBytes rounded up to a multiple of 8 only: a value
// of up to 56 bytes shares its cache line with its lock (the data area is
// page aligned), so that a locked update moves one line between cores,
// not two. Measured across two processes, lock-increment-unlock with the
// counter on the lock's line runs about 1.2× faster than with the two a
// line apart (bench/mutex-same-line.txt against mutex-line-apart.txt).
func LockOffset(kind shm.Kind, elemBytes uint64) uint64 {
	if kind == shm.KindValue {
		return (elemBytes + 7) &^ 7
	}
	return (elemBytes + 63) &^ 63
}

// Spec describes a segment of kind holding n elements of type t (n*t.Size
// must not overflow; callers check) with the given shape.
func Spec(kind shm.Kind, t shm.Type, n uint64, shape []uint64) shm.Spec {
	off := LockOffset(kind, n*t.Size)
	sp := shm.Spec{Kind: kind, Type: t, Len: n, Shape: shape, DataSize: off + lockSize}
	sp.Params[0] = off
	return sp
}

// Map checks that seg, whose header Open has already validated, has this
// layout, and returns its elements and its lock. Any difference is
// shm.ErrCorrupt.
func Map[T any](seg *shm.Segment) ([]T, *xsync.Mutex, error) {
	n := seg.Len()
	off := LockOffset(seg.Kind(), n*seg.Type().Size) // the header checked the product fits
	params := seg.Params()
	if params[0] != off {
		return nil, nil, fmt.Errorf("%w: lock at offset %d (Params[0]), want %d", shm.ErrCorrupt, params[0], off)
	}
	for i, p := range params[1:] {
		if p != 0 {
			return nil, nil, fmt.Errorf("%w: Params[%d] is %d, want 0", shm.ErrCorrupt, i+1, p)
		}
	}
	if d := uint64(len(seg.Data())); d != off+lockSize {
		return nil, nil, fmt.Errorf("%w: data size %d, want %d", shm.ErrCorrupt, d, off+lockSize)
	}
	s, err := shm.Slice[T](seg, 0, n)
	if err != nil {
		return nil, nil, err
	}
	mu, err := shm.View[xsync.Mutex](seg, off)
	if err != nil {
		return nil, nil, err
	}
	return s[:n:n], mu, nil
}

// UsedAfterClose panics with an error wrapping shm.ErrClosed: method op of
// a handle of package pkg ("value", "array") was called after the handle's
// segment was closed. Callers test seg.Closed() first, inline, and call
// this only then, so that the check costs one load on their fast paths.
func UsedAfterClose(pkg, op string, seg *shm.Segment) {
	name := seg.Name()
	if name == "" {
		name = "(anonymous)"
	}
	panic(fmt.Errorf("%s: %s of %s after Close: %w", pkg, op, name, shm.ErrClosed))
}
