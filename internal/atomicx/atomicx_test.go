package atomicx

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type myFloat float64

func TestKindOf(t *testing.T) {
	assert.Equal(t, Int8, KindOf[int8]())
	assert.Equal(t, Int8, KindOf[byte]())
	assert.Equal(t, Int16, KindOf[uint16]())
	assert.Equal(t, Int32, KindOf[int32]())
	assert.Equal(t, Int64, KindOf[uint64]())
	if unsafe.Sizeof(0) == 8 {
		assert.Equal(t, Int64, KindOf[int]())
		assert.Equal(t, Int64, KindOf[uintptr]())
	} else {
		assert.Equal(t, Int32, KindOf[int]())
	}
	assert.Equal(t, Float32, KindOf[float32]())
	assert.Equal(t, Float64, KindOf[myFloat]())
	assert.Equal(t, None, KindOf[bool]())
	assert.Equal(t, None, KindOf[complex64]())
	assert.Equal(t, None, KindOf[[2]int32]())
	assert.Equal(t, None, KindOf[struct{ X int64 }]())
	assert.Contains(t, Unsupported[struct{ X int64 }]("value", "Add"), "value: atomic Add needs an integer or float element type, not struct { X int64 }")
}

// ops runs every operation on *p and checks the results against plain
// arithmetic.
func ops[T int8 | uint8 | int16 | uint16 | int32 | uint32 | int64 | uint64 | float32 | myFloat](t *testing.T, p *T, a, b T) {
	t.Helper()
	k := KindOf[T]()
	require.True(t, Store(k, p, a))
	v, ok := Load(k, p)
	require.True(t, ok)
	assert.Equal(t, a, v)
	n, ok := Add(k, p, b)
	require.True(t, ok)
	assert.Equal(t, a+b, n)
	assert.Equal(t, a+b, *p)
	sw, ok := CompareAndSwap(k, p, a, b)
	assert.True(t, ok)
	assert.False(t, sw, "CAS with a stale old value")
	sw, _ = CompareAndSwap(k, p, a+b, b)
	assert.True(t, sw)
	assert.Equal(t, b, *p)
}

func TestOps(t *testing.T) {
	// Each value sits among sentinels, at every offset within its word,
	// to prove that sub-word operations leave the neighbours alone.
	var buf [4]uint64
	for off := uintptr(0); off < 16; off++ {
		for i := range buf {
			buf[i] = math.MaxUint64
		}
		base := unsafe.Pointer(&buf[1])
		at := func(size uintptr) unsafe.Pointer {
			return unsafe.Add(base, off/size*size)
		}
		ops(t, (*int8)(at(1)), -100, -100) // wraps, like Go's int8
		ops(t, (*uint8)(at(1)), 200, 100)
		ops(t, (*int16)(at(2)), 30000, 10000)
		ops(t, (*uint16)(at(2)), 7, 65535)
		ops(t, (*int32)(at(4)), math.MaxInt32, 1)
		ops(t, (*uint32)(at(4)), 1, 2)
		ops(t, (*int64)(at(8)), -1<<62, -1<<62)
		ops(t, (*uint64)(at(8)), 1<<63, 1<<63+5)
		ops(t, (*float32)(at(4)), 1.5, -0.25)
		ops(t, (*myFloat)(at(8)), 1e300, 1e300)
		assert.Equal(t, uint64(math.MaxUint64), buf[0], "word before")
		assert.Equal(t, uint64(math.MaxUint64), buf[3], "word after")
	}
}

func TestNone(t *testing.T) {
	var s struct{ A, B int32 }
	_, ok := Add(None, &s, s)
	assert.False(t, ok)
	_, ok = CompareAndSwap(None, &s, s, s)
	assert.False(t, ok)
	_, ok = Load(None, &s)
	assert.False(t, ok)
	assert.False(t, Store(None, &s, s))
}

func TestFloatCompareIsBitwise(t *testing.T) {
	x := math.Copysign(0, -1)
	sw, _ := CompareAndSwap(Float64, &x, 0, 1)
	assert.False(t, sw, "-0 is not +0, bit for bit")
	nan := math.NaN()
	sw, _ = CompareAndSwap(Float64, &nan, nan, 1)
	assert.True(t, sw, "a NaN matches its own bits")
}

// TestSubwordConcurrent has goroutines add to neighbouring bytes and
// halves of one word: no update may be lost.
func TestSubwordConcurrent(t *testing.T) {
	var w struct {
		_ [0]uint64
		B [4]uint8
		H [2]uint16
	}
	const n = 20000
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range n / 4 {
				Add(Int8, &w.B[i], 1)
			}
		}()
		go func() {
			defer wg.Done()
			for range n / 2 {
				Add(Int16, &w.H[i%2], 1)
			}
		}()
	}
	wg.Wait()
	for i := range 4 {
		v, _ := Load(Int8, &w.B[i])
		assert.Equal(t, uint8(n/4%256), v)
	}
	for i := range 2 {
		v, _ := Load(Int16, &w.H[i])
		assert.Equal(t, uint16(n), v)
	}
}

func BenchmarkAdd(b *testing.B) {
	b.Run("atomicx-int64", func(b *testing.B) {
		var x int64
		for b.Loop() {
			Add(Int64, &x, 1)
		}
	})
	b.Run("atomic.AddInt64", func(b *testing.B) {
		var x int64
		for b.Loop() {
			atomic.AddInt64(&x, 1)
		}
	})
}
