package atomicx

import "unsafe"

// This file holds every unsafe conversion in the package. Callers reach
// them only through a switch on a Kind computed by KindOf, so the size of
// T is the size each conversion assumes.

func bits64[T any](p *T) *uint64    { return (*uint64)(unsafe.Pointer(p)) }
func bits32[T any](p *T) *uint32    { return (*uint32)(unsafe.Pointer(p)) }
func float64p[T any](p *T) *float64 { return (*float64)(unsafe.Pointer(p)) }
func float32p[T any](p *T) *float32 { return (*float32)(unsafe.Pointer(p)) }
func from64[T any](v uint64) T      { return *(*T)(unsafe.Pointer(&v)) }
func from32[T any](v uint32) T      { return *(*T)(unsafe.Pointer(&v)) }

// bits8or16 returns the bits of the 8 or 16-bit *p, zero-extended.
func bits8or16[T any](p *T, k Kind) uint16 {
	if k == Int8 {
		return uint16(*(*uint8)(unsafe.Pointer(p)))
	}
	return *(*uint16)(unsafe.Pointer(p))
}

// fromSub converts the low 8 or 16 bits of v to a T.
func fromSub[T any](v uint32, k Kind) T {
	var t T
	if k == Int8 {
		*(*uint8)(unsafe.Pointer(&t)) = uint8(v)
	} else {
		*(*uint16)(unsafe.Pointer(&t)) = uint16(v)
	}
	return t
}

// bigEndian is true on big-endian machines.
var bigEndian = func() bool {
	x := uint32(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}()

// subword returns the aligned 32-bit word that contains the 8 or 16-bit
// value at p, the shift of the value within the word and the mask of its
// bits.
func subword[T any](p *T, k Kind) (w *uint32, shift, mask uint32) {
	off := uintptr(unsafe.Pointer(p)) & 3
	size := uintptr(1)
	mask = 0xff
	if k == Int16 {
		size, mask = 2, 0xffff
	}
	shift = uint32(off * 8)
	if bigEndian {
		shift = uint32((4 - off - size) * 8)
	}
	return (*uint32)(unsafe.Add(unsafe.Pointer(p), -int(off))), shift, mask << shift
}
