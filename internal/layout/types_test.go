package layout_test

import (
	"fmt"
	"hash/fnv"
	"hash/maphash"
	"reflect"
	"runtime/cgo"
	"runtime/trace"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/layout"
	xsync "github.com/xproc-go/xproc/sync"
)

type plain struct {
	A int64
	B float32
	C bool
}

type nested struct {
	P     plain
	Grid  [2][3]int16
	Cplx  complex128
	Inner struct {
		U8  uint8
		U64 uint64
	}
}

type withAtomics struct {
	N  atomic.Int64
	U  atomic.Uint32
	B  atomic.Bool
	I  atomic.Int32
	U6 atomic.Uint64
}

type withPrims struct {
	Mu  xsync.Mutex
	RMu xsync.ReentrantMutex
	Sem xsync.Semaphore
	Ev  xsync.Event
	Cv  xsync.Cond
	Bar xsync.Barrier
	N   int64
}

func TestDescribeAccepts(t *testing.T) {
	for _, ty := range []reflect.Type{
		reflect.TypeFor[bool](),
		reflect.TypeFor[int](),
		reflect.TypeFor[int8](),
		reflect.TypeFor[int16](),
		reflect.TypeFor[int32](),
		reflect.TypeFor[int64](),
		reflect.TypeFor[uint](),
		reflect.TypeFor[uint8](),
		reflect.TypeFor[uint16](),
		reflect.TypeFor[uint32](),
		reflect.TypeFor[uint64](),
		reflect.TypeFor[float32](),
		reflect.TypeFor[float64](),
		reflect.TypeFor[complex64](),
		reflect.TypeFor[complex128](),
		reflect.TypeFor[[16]byte](),
		reflect.TypeFor[[3][4]float64](),
		reflect.TypeFor[plain](),
		reflect.TypeFor[nested](),
		reflect.TypeFor[[5]nested](),
		reflect.TypeFor[struct{ X, Y int32 }](),
		reflect.TypeFor[atomic.Int32](),
		reflect.TypeFor[atomic.Int64](),
		reflect.TypeFor[atomic.Uint32](),
		reflect.TypeFor[atomic.Uint64](),
		reflect.TypeFor[atomic.Bool](),
		reflect.TypeFor[withAtomics](),
		reflect.TypeFor[xsync.Mutex](),
		reflect.TypeFor[xsync.ReentrantMutex](),
		reflect.TypeFor[xsync.Semaphore](),
		reflect.TypeFor[xsync.Event](),
		reflect.TypeFor[xsync.Cond](),
		reflect.TypeFor[xsync.Barrier](),
		reflect.TypeFor[withPrims](),
		// A zero-size field inside a type of non-zero size is harmless
		// (atomic.Int64 has two).
		reflect.TypeFor[struct {
			A int64
			_ struct{}
		}](),
	} {
		t.Run(ty.String(), func(t *testing.T) {
			d, err := layout.Describe(ty)
			require.NoError(t, err)
			assert.Equal(t, uint64(ty.Size()), d.Size)
			assert.Equal(t, uint64(ty.Align()), d.Align)
			assert.Equal(t, layout.TypeName(ty), d.Name)
			assert.NotZero(t, d.Fingerprint)

			// The fingerprint is FNV-1a 64 of the canonical string.
			c, err := layout.Canonical(ty)
			require.NoError(t, err)
			h := fnv.New64a()
			h.Write([]byte(c))
			assert.Equal(t, h.Sum64(), d.Fingerprint, "canonical %q", c)
		})
	}
}

type item struct {
	ID   int64
	Name string
}

type rec struct {
	N     int64
	Items [3]item
}

type deep struct {
	A struct {
		B [2]struct {
			C [1]struct {
				D map[int]int
			}
		}
	}
}

type withPointerAtomic struct {
	N int64
	P atomic.Pointer[int]
}

type withValue struct {
	V atomic.Value
}

type withEmbedded struct {
	plain
	error
}

func TestDescribeRefuses(t *testing.T) {
	for _, c := range []struct {
		ty   reflect.Type
		want string // in the error message
	}{
		{reflect.TypeFor[*int](), "*int is a pointer"},
		{reflect.TypeFor[unsafe.Pointer](), "unsafe.Pointer is a pointer"},
		{reflect.TypeFor[[]int](), "[]int is a slice"},
		{reflect.TypeFor[map[string]int](), "is a map"},
		{reflect.TypeFor[string](), "string: it refers to this process's memory; use a fixed-size array"},
		{reflect.TypeFor[chan int](), "chan int is a chan"},
		{reflect.TypeFor[func()](), "func() is a func"},
		{reflect.TypeFor[any](), "interface {} is an interface"},
		{reflect.TypeFor[error](), "error is an interface"},
		{reflect.TypeFor[struct{}](), "struct {} has size zero"},
		{reflect.TypeFor[[0]int64](), "[0]int64 has size zero"},
		{reflect.TypeFor[[4]string](), "field [4]string[] is a string"},
		{reflect.TypeFor[[0]string](), "field [0]string[] is a string"},
		{reflect.TypeFor[struct{ P *int }](), "field struct { P *int }.P is a pointer (*int)"},
		{reflect.TypeFor[struct{ U unsafe.Pointer }](), ".U is a pointer (unsafe.Pointer)"},
		{reflect.TypeFor[struct{ S []byte }](), ".S is a slice ([]uint8)"},
		{reflect.TypeFor[struct{ C chan int }](), ".C is a chan (chan int)"},
		{reflect.TypeFor[struct{ F func() }](), ".F is a func (func())"},
		{reflect.TypeFor[rec](), "field layout_test.rec.Items[].Name is a string (string)"},
		{reflect.TypeFor[[2]rec](), "field [2]layout_test.rec[].Items[].Name is a string"},
		{reflect.TypeFor[deep](), "field layout_test.deep.A.B[].C[].D is a map"},
		// atomic.Pointer holds an unsafe.Pointer, atomic.Value an any.
		{reflect.TypeFor[withPointerAtomic](), "field layout_test.withPointerAtomic.P."},
		{reflect.TypeFor[withValue](), "field layout_test.withValue.V.v is an interface"},
		{reflect.TypeFor[withEmbedded](), "field layout_test.withEmbedded.error is an interface"},
	} {
		t.Run(c.ty.String(), func(t *testing.T) {
			_, err := layout.Describe(c.ty)
			require.Error(t, err)
			assert.ErrorIs(t, err, layout.ErrUnsupportedType)
			assert.Contains(t, err.Error(), c.want)

			_, err = layout.Canonical(c.ty)
			if c.ty.Size() != 0 || c.ty.Kind() != reflect.Struct && c.ty.Kind() != reflect.Array {
				assert.ErrorIs(t, err, layout.ErrUnsupportedType, "Canonical refuses what Describe refuses, except size zero")
			}
		})
	}

	_, err := layout.Describe(nil)
	assert.ErrorIs(t, err, layout.ErrUnsupportedType)
}

// TestDescribeNamesFieldPath is the example from the docs: the error
// names the path to the field, through arrays ("[]").
func TestDescribeNamesFieldPath(t *testing.T) {
	_, err := layout.Describe(reflect.TypeFor[rec]())
	require.ErrorIs(t, err, layout.ErrUnsupportedType)
	assert.Contains(t, err.Error(), "field ")
	assert.Contains(t, err.Error(), "rec.Items[].Name")
}

func fingerprint(t *testing.T, ty reflect.Type) uint64 {
	t.Helper()
	d, err := layout.Describe(ty)
	require.NoError(t, err)
	return d.Fingerprint
}

func TestFingerprintIgnoresNames(t *testing.T) {
	for _, pair := range [][2]reflect.Type{
		{reflect.TypeFor[struct {
			A int64
			B float32
		}](), reflect.TypeFor[struct {
			X int64
			Y float32
		}]()},
		{reflect.TypeFor[struct{ P [2]struct{ U, V uint8 } }](), reflect.TypeFor[struct{ Q [2]struct{ S, T uint8 } }]()},
		{reflect.TypeFor[struct {
			a int32
			_ int32
		}](), reflect.TypeFor[struct{ B, C int32 }]()},
		// Named types outside the module are identified by layout only.
		// (Not atomic.Int64: its zero-size align64 field has alignment 8,
		// which the canonical string records.)
		{reflect.TypeFor[atomic.Int32](), reflect.TypeFor[struct {
			_ struct{}
			V int32
		}]()},
	} {
		assert.Equal(t, fingerprint(t, pair[0]), fingerprint(t, pair[1]), "%v vs %v", pair[0], pair[1])
	}
}

func TestFingerprintDiffers(t *testing.T) {
	types := []reflect.Type{
		// Kinds.
		reflect.TypeFor[int32](),
		reflect.TypeFor[uint32](),
		reflect.TypeFor[float32](),
		reflect.TypeFor[int64](),
		reflect.TypeFor[uint64](),
		reflect.TypeFor[float64](),
		reflect.TypeFor[complex64](),
		reflect.TypeFor[bool](),
		reflect.TypeFor[int8](),
		reflect.TypeFor[uint8](),
		// Array lengths.
		reflect.TypeFor[[3]int32](),
		reflect.TypeFor[[4]int32](),
		reflect.TypeFor[[2][2]int32](),
		reflect.TypeFor[[4][1]int32](),
		reflect.TypeFor[struct{ A [2]int64 }](),
		reflect.TypeFor[struct{ A [3]int64 }](),
		// Field kinds.
		reflect.TypeFor[struct{ A, B int32 }](),
		reflect.TypeFor[struct {
			A int32
			B uint32
		}](),
		reflect.TypeFor[struct {
			A int32
			B float32
		}](),
		// Offsets: the same field kinds, one moved by explicit padding.
		reflect.TypeFor[struct {
			A int8
			B int16
		}](),
		reflect.TypeFor[struct {
			A int8
			_ [1]int8
			B int16
		}](),
		reflect.TypeFor[struct {
			A int8
			_ [3]int8
			B int16
		}](),
		// Sizes: a trailing zero-size field adds padding.
		reflect.TypeFor[struct {
			A int64
			Z struct{}
		}](),
		reflect.TypeFor[struct {
			Z struct{}
			A int64
		}](),
		// Nesting.
		reflect.TypeFor[struct{ A struct{ B int32 } }](),
		reflect.TypeFor[struct{ A [1]int32 }](),
		reflect.TypeFor[struct{ A int32 }](),
		// Field order.
		reflect.TypeFor[struct {
			A int32
			B int64
		}](),
		reflect.TypeFor[struct {
			B int64
			A int32
		}](),
		// A lock is not an integer, and not an atomic integer.
		reflect.TypeFor[struct{ M xsync.Mutex }](),
		reflect.TypeFor[struct{ M uint64 }](),
		reflect.TypeFor[struct{ M atomic.Uint64 }](),
		reflect.TypeFor[xsync.Mutex](),
		reflect.TypeFor[xsync.Event](),
		reflect.TypeFor[xsync.Semaphore](),
		reflect.TypeFor[xsync.Cond](),
		reflect.TypeFor[struct {
			M xsync.Mutex
			N int64
		}](),
		reflect.TypeFor[struct{ M, N int64 }](),
		reflect.TypeFor[struct {
			M atomic.Uint64
			N int64
		}](),
	}
	seen := map[uint64]reflect.Type{}
	for _, ty := range types {
		fp := fingerprint(t, ty)
		if prev, dup := seen[fp]; dup {
			c1, _ := layout.Canonical(prev)
			c2, _ := layout.Canonical(ty)
			t.Errorf("%v and %v have the same fingerprint %#x:\n%s\n%s", prev, ty, fp, c1, c2)
		}
		seen[fp] = ty
	}

	// The xsync.Mutex/uint64 pair, as the docs promise.
	assert.NotEqual(t, fingerprint(t, reflect.TypeFor[struct{ M xsync.Mutex }]()),
		fingerprint(t, reflect.TypeFor[struct{ M uint64 }]()))
}

// Example of the canonical string and fingerprint that LAYOUT.md shows;
// if this changes, every existing segment of such a type stops opening.
type point struct {
	X, Y  float64
	N     int32
	Flags [3]uint8
	Inner struct {
		A int16
		B bool
	}
}

// The type above as a type outside this module would declare it: with an
// anonymous struct, so that no module-internal type name enters the
// canonical string (see TestCanonicalModuleTypes).
type pointOutside = struct {
	X, Y  float64
	N     int32
	Flags [3]uint8
	Inner struct {
		A int16
		B bool
	}
}

const (
	goldenCanonical   = "struct{0:float64;8:float64;16:int32;20:[3]uint8;24:struct{0:int16;2:bool;}4/2;}32/8"
	goldenFingerprint = 0x0f6a9fd7c47fd581
)

func TestCanonicalGolden(t *testing.T) {
	ty := reflect.TypeFor[pointOutside]()
	c, err := layout.Canonical(ty)
	require.NoError(t, err)
	assert.Equal(t, goldenCanonical, c)
	d, err := layout.Describe(ty)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("%#016x", uint64(goldenFingerprint)), fmt.Sprintf("%#016x", d.Fingerprint))
	assert.Equal(t, uint64(32), d.Size)
	assert.Equal(t, uint64(8), d.Align)

	// Stable: the same string every time.
	for range 3 {
		again, err := layout.Canonical(ty)
		require.NoError(t, err)
		assert.Equal(t, c, again)
	}

	for ty, want := range map[reflect.Type]string{
		reflect.TypeFor[int64]():            "int64",
		reflect.TypeFor[bool]():             "bool",
		reflect.TypeFor[complex128]():       "complex128",
		reflect.TypeFor[[2][3]uint16]():     "[2][3]uint16",
		reflect.TypeFor[atomic.Uint32]():    "struct{0:struct{}0/1;0:uint32;}4/4",
		reflect.TypeFor[struct{ B bool }](): "struct{0:bool;}1/1",
	} {
		got, err := layout.Canonical(ty)
		require.NoError(t, err)
		assert.Equal(t, want, got, "%v", ty)
	}
}

// TestCanonicalModuleTypes: types declared in the xproc module (here, in
// this test package) are identified by package and name, so that an
// xsync.Mutex is not taken for another 8-byte struct.
func TestCanonicalModuleTypes(t *testing.T) {
	c, err := layout.Canonical(reflect.TypeFor[point]())
	require.NoError(t, err)
	assert.Equal(t, "internal/layout_test.point="+goldenCanonical, c)

	c, err = layout.Canonical(reflect.TypeFor[xsync.Mutex]())
	require.NoError(t, err)
	assert.Regexp(t, `^sync\.Mutex=struct\{0:.*\}8/8$`, c)

	c, err = layout.Canonical(reflect.TypeFor[struct{ M xsync.Mutex }]())
	require.NoError(t, err)
	assert.Regexp(t, `^struct\{0:sync\.Mutex=struct\{.*\}8/8;\}8/8$`, c)
}

// Types declared from process-local ones: reflection sees only the
// struct (or uintptr) underneath.
type (
	myMu     sync.Mutex
	myMuToo  myMu
	myRW     sync.RWMutex
	myOnce   sync.Once
	myWG     sync.WaitGroup
	mySeed   maphash.Seed
	myHandle cgo.Handle
	myTask   trace.Task
)

// TestProcessLocalTypes: pointer-free types whose meaning is tied to one
// process are refused, naming the field (or the type the user wrote)
// and what to use instead.
func TestProcessLocalTypes(t *testing.T) {
	type withMutex struct {
		N  int64
		Mu sync.Mutex
	}
	type nested struct {
		A [2]struct{ Once sync.Once }
	}
	type withMyMu struct {
		N  int64
		Mu myMu
	}
	type withSeed struct {
		N    int64
		Seed maphash.Seed
	}
	type withMySeeds struct {
		S [2]mySeed
	}
	type withHandle struct {
		H myHandle
	}
	type withPtr struct {
		A [3]uintptr
	}
	for _, c := range []struct {
		t    reflect.Type
		want string
	}{
		{reflect.TypeFor[sync.Mutex](), "sync.Mutex works only within one process: use xsync.Mutex"},
		{reflect.TypeFor[withMutex](), "field layout_test.withMutex.Mu is sync.Mutex, which works only within one process: use xsync.Mutex"},
		{reflect.TypeFor[sync.RWMutex](), "sync.RWMutex works only within one process: use xsync.Mutex"},
		{reflect.TypeFor[sync.WaitGroup](), "sync.WaitGroup works only within one process: use xsync.Barrier"},
		{reflect.TypeFor[nested](), "field layout_test.nested.A[].Once is sync.Once, which works only within one process: use an xsync.Mutex with a done flag"},
		{reflect.TypeFor[[4]sync.Mutex](), "field [4]sync.Mutex[] is sync.Mutex"},
		{reflect.TypeFor[cgo.Handle](), "cgo.Handle works only within one process"},
		{reflect.TypeFor[maphash.Seed](), "maphash.Seed works only within one process"},
		{reflect.TypeFor[maphash.Hash](), "maphash.Hash works only within one process"},
		{reflect.TypeFor[withSeed](), "field layout_test.withSeed.Seed is maphash.Seed, which works only within one process"},
		{reflect.TypeFor[trace.Task](), "trace.Task works only within one process"},
		// Declared from them: the type the user wrote is named, and what
		// it is underneath, never the runtime's unexported fields.
		{reflect.TypeFor[myMu](), "layout_test.myMu (declared as sync.Mutex) works only within one process: use xsync.Mutex"},
		{reflect.TypeFor[myMuToo](), "layout_test.myMuToo (declared as sync.Mutex) works only within one process: use xsync.Mutex"},
		{reflect.TypeFor[withMyMu](), "field layout_test.withMyMu.Mu is layout_test.myMu (declared as sync.Mutex), which works only within one process: use xsync.Mutex"},
		{reflect.TypeFor[myRW](), "layout_test.myRW (declared as sync.RWMutex)"},
		{reflect.TypeFor[myOnce](), "layout_test.myOnce (declared as sync.Once)"},
		{reflect.TypeFor[myWG](), "layout_test.myWG (declared as sync.WaitGroup)"},
		{reflect.TypeFor[mySeed](), "layout_test.mySeed (declared as maphash.Seed) works only within one process"},
		{reflect.TypeFor[withMySeeds](), "field layout_test.withMySeeds.S[] is layout_test.mySeed (declared as maphash.Seed)"},
		{reflect.TypeFor[myTask](), "layout_test.myTask (declared as trace.Task)"},
	} {
		_, err := layout.Describe(c.t)
		assert.ErrorIs(t, err, layout.ErrUnsupportedType, "%v", c.t)
		assert.ErrorContains(t, err, c.want)
		assert.NotContains(t, fmt.Sprint(err), "noCopy")
		assert.NotContains(t, fmt.Sprint(err), "primitive of that name", "xsync has no primitive of every name")
	}
	// uintptr is refused on purpose: an address or a handle, whose type
	// reflection cannot tell from a number (a type declared as
	// cgo.Handle is one), with the machine's size.
	for _, c := range []struct {
		t    reflect.Type
		want string
	}{
		{reflect.TypeFor[uintptr](), "uintptr is a uintptr: a uintptr holds an address or a handle"},
		{reflect.TypeFor[myHandle](), "layout_test.myHandle is a uintptr: a uintptr holds an address or a handle (such as runtime/cgo.Handle)"},
		{reflect.TypeFor[withHandle](), "field layout_test.withHandle.H is a uintptr (layout_test.myHandle)"},
		{reflect.TypeFor[withPtr](), "field layout_test.withPtr.A[] is a uintptr (uintptr)"},
		{reflect.TypeFor[atomic.Uintptr](), "field atomic.Uintptr.v is a uintptr"},
	} {
		_, err := layout.Describe(c.t)
		assert.ErrorIs(t, err, layout.ErrUnsupportedType, "%v", c.t)
		assert.ErrorContains(t, err, c.want)
		assert.ErrorContains(t, err, "use uint64")
	}
	// sync/atomic types are fine: plain words, meaningful anywhere; so is
	// a struct of the same shape as a process-local one.
	_, err := layout.Describe(reflect.TypeFor[struct {
		A atomic.Int64
		B atomic.Uint32
		C atomic.Bool
		s uint64
	}]())
	assert.NoError(t, err)
}
