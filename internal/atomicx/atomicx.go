// Package atomicx performs lock-free atomic operations on a value of a
// type parameter T whose underlying type is an integer or a float, for
// value.Value and array.Array. The caller computes the Kind of T once
// (KindOf) and passes it to every operation, which switches on it: one
// predictable branch, so that an atomic add on an int64 costs about what
// atomic.AddInt64 does.
//
// Integers of 32 and 64 bits map to sync/atomic directly. Integers of 8
// and 16 bits have no atomic instructions in sync/atomic: they are
// updated by a compare-and-swap loop on the aligned 32-bit word that
// contains them, which leaves the other bytes of the word as they are
// (a concurrent change to them only makes the loop retry). Floats are
// loaded, stored and compared as their bit patterns; Add on a float is a
// compare-and-swap loop.
//
// Every operation needs p aligned to T's size (always true of an element
// of a value or array segment, whose data area is page aligned), and for 8
// and 16-bit kinds the whole 32-bit word around p must be memory the
// caller may access: a segment's data area always ends on a 64-byte
// boundary, so it is.
package atomicx

import (
	"fmt"
	"math"
	"reflect"
	"sync/atomic"
)

// Kind says which atomic operations fit a type.
type Kind uint8

// Kinds. None means that T has no atomic operations.
const (
	None Kind = iota
	Int8
	Int16
	Int32
	Int64
	Float32
	Float64
)

// KindOf returns the kind of T, from its underlying type: Int8 to Int64
// for signed and unsigned integers of that size (int, uint and uintptr
// included), Float32 and Float64 for floats, and None for everything else.
func KindOf[T any]() Kind {
	t := reflect.TypeFor[T]()
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		switch t.Size() {
		case 1:
			return Int8
		case 2:
			return Int16
		case 4:
			return Int32
		case 8:
			return Int64
		}
	case reflect.Float32:
		return Float32
	case reflect.Float64:
		return Float64
	}
	return None
}

// Unsupported is the panic message for an atomic operation op on a T of
// kind None, from package pkg.
func Unsupported[T any](pkg, op string) string {
	return fmt.Sprintf("%s: atomic %s needs an integer or float element type, not %v", pkg, op, reflect.TypeFor[T]())
}

// Add atomically adds delta to *p and returns the new value. It returns
// false (and does nothing) if k is None.
func Add[T any](k Kind, p *T, delta T) (T, bool) {
	switch k {
	case Int64:
		n := atomic.AddUint64(bits64(p), *bits64(&delta))
		return from64[T](n), true
	case Int32:
		n := atomic.AddUint32(bits32(p), *bits32(&delta))
		return from32[T](n), true
	case Float64:
		w, d := bits64(p), *float64p(&delta)
		for {
			old := atomic.LoadUint64(w)
			n := math.Float64bits(math.Float64frombits(old) + d)
			if atomic.CompareAndSwapUint64(w, old, n) {
				return from64[T](n), true
			}
		}
	case Float32:
		w, d := bits32(p), *float32p(&delta)
		for {
			old := atomic.LoadUint32(w)
			n := math.Float32bits(math.Float32frombits(old) + d)
			if atomic.CompareAndSwapUint32(w, old, n) {
				return from32[T](n), true
			}
		}
	case Int8, Int16:
		w, shift, mask := subword(p, k)
		d := uint32(bits8or16(&delta, k)) << shift
		for {
			old := atomic.LoadUint32(w)
			n := old&^mask | (old+d)&mask
			if atomic.CompareAndSwapUint32(w, old, n) {
				return fromSub[T](n>>shift, k), true
			}
		}
	}
	var zero T
	return zero, false
}

// CompareAndSwap atomically replaces *p by new if it holds old (compared
// bit for bit) and reports whether it did. ok is false if k is None.
func CompareAndSwap[T any](k Kind, p *T, old, new T) (swapped, ok bool) {
	switch k {
	case Int64, Float64:
		return atomic.CompareAndSwapUint64(bits64(p), *bits64(&old), *bits64(&new)), true
	case Int32, Float32:
		return atomic.CompareAndSwapUint32(bits32(p), *bits32(&old), *bits32(&new)), true
	case Int8, Int16:
		w, shift, mask := subword(p, k)
		o, n := uint32(bits8or16(&old, k))<<shift, uint32(bits8or16(&new, k))<<shift
		for {
			cur := atomic.LoadUint32(w)
			if cur&mask != o {
				return false, true
			}
			if atomic.CompareAndSwapUint32(w, cur, cur&^mask|n) {
				return true, true
			}
		}
	}
	return false, false
}

// Load atomically loads *p. ok is false if k is None.
func Load[T any](k Kind, p *T) (v T, ok bool) {
	switch k {
	case Int64, Float64:
		return from64[T](atomic.LoadUint64(bits64(p))), true
	case Int32, Float32:
		return from32[T](atomic.LoadUint32(bits32(p))), true
	case Int8, Int16:
		w, shift, _ := subword(p, k)
		return fromSub[T](atomic.LoadUint32(w)>>shift, k), true
	}
	return v, false
}

// Store atomically stores v into *p. It returns false if k is None.
func Store[T any](k Kind, p *T, v T) bool {
	switch k {
	case Int64, Float64:
		atomic.StoreUint64(bits64(p), *bits64(&v))
		return true
	case Int32, Float32:
		atomic.StoreUint32(bits32(p), *bits32(&v))
		return true
	case Int8, Int16:
		w, shift, mask := subword(p, k)
		n := uint32(bits8or16(&v, k)) << shift
		for {
			old := atomic.LoadUint32(w)
			if atomic.CompareAndSwapUint32(w, old, old&^mask|n) {
				return true
			}
		}
	}
	return false
}
