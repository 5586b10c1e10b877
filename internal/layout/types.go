package layout

import (
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"strconv"
	"strings"
)

// ErrUnsupportedType is returned for element types that cannot live in
// shared memory.
var ErrUnsupportedType = errors.New("type cannot be stored in shared memory")

// TypeDesc describes an element type as recorded in a segment header.
type TypeDesc struct {
	Size        uint64
	Align       uint64
	Fingerprint uint64
	Name        string
}

// Describe checks that t can live in shared memory and returns its
// description. Allowed are booleans, integers, floats, complex numbers,
// fixed-size arrays and structs of these. Pointers, unsafe.Pointer, slices,
// maps, strings, channels, functions and interfaces are refused: their
// values refer to one process's memory and mean nothing in another. So
// are the types of Go's sync package (Mutex, RWMutex, WaitGroup, Once)
// and runtime/cgo.Handle, which hold no pointers but whose meaning is tied
// to one process (use the xproc/sync primitives instead). The error names
// the offending field.
//
// The fingerprint hashes the type's layout (kinds, sizes, alignments and
// field offsets, but not field names), so that a process opening a segment
// with a type of different layout is refused. Types of the xproc module
// itself are also identified by name, so that an xsync.Mutex field can not
// be opened as a plain uint64.
func Describe(t reflect.Type) (TypeDesc, error) {
	if t == nil {
		return TypeDesc{}, fmt.Errorf("%w: nil type", ErrUnsupportedType)
	}
	var sb strings.Builder
	if err := describe(&sb, t, t.String()); err != nil {
		return TypeDesc{}, err
	}
	if t.Size() == 0 {
		return TypeDesc{}, fmt.Errorf("%w: %s has size zero", ErrUnsupportedType, t)
	}
	h := fnv.New64a()
	h.Write([]byte(sb.String()))
	return TypeDesc{
		Size:        uint64(t.Size()),
		Align:       uint64(t.Align()),
		Fingerprint: h.Sum64(),
		Name:        TypeName(t),
	}, nil
}

// Canonical returns the canonical layout string that Describe hashes. It
// is exported for tests and for LAYOUT.md's worked examples.
func Canonical(t reflect.Type) (string, error) {
	var sb strings.Builder
	err := describe(&sb, t, t.String())
	return sb.String(), err
}

const modulePath = "github.com/xproc-go/xproc/"

// processLocal lists the packages whose pointer-free types still mean
// something only inside one process: Go's sync types keep their waiters
// in the runtime of the process that blocked (a sync.Mutex in shared
// memory deadlocks or corrupts across processes), and a cgo.Handle
// indexes one process's handle table. The value says what to use instead.
var processLocal = map[string]string{
	"sync":          "use the xproc/sync (xsync) primitive of that name",
	"internal/sync": "use the xproc/sync (xsync) primitives",
	"runtime/cgo":   "a handle is valid only in the process that made it",
}

func describe(sb *strings.Builder, t reflect.Type, path string) error {
	if hint, local := processLocal[t.PkgPath()]; local && t.Name() != "" {
		if path == t.String() {
			return fmt.Errorf("%w: %s works only within one process: %s", ErrUnsupportedType, t, hint)
		}
		return fmt.Errorf("%w: field %s is %s, which works only within one process: %s", ErrUnsupportedType, path, t, hint)
	}
	if strings.HasPrefix(t.PkgPath(), modulePath) {
		sb.WriteString(strings.TrimPrefix(t.PkgPath(), modulePath) + "." + t.Name() + "=")
	}
	switch k := t.Kind(); k {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		sb.WriteString(k.String())
		return nil
	case reflect.Array:
		sb.WriteString("[" + strconv.Itoa(t.Len()) + "]")
		return describe(sb, t.Elem(), path+"[]")
	case reflect.Struct:
		sb.WriteString("struct{")
		for i := range t.NumField() {
			f := t.Field(i)
			sb.WriteString(strconv.FormatUint(uint64(f.Offset), 10) + ":")
			if err := describe(sb, f.Type, path+"."+f.Name); err != nil {
				return err
			}
			sb.WriteByte(';')
		}
		sb.WriteString("}" + strconv.FormatUint(uint64(t.Size()), 10) + "/" + strconv.Itoa(t.Align()))
		return nil
	default:
		what := k.String()
		if k == reflect.Pointer || k == reflect.UnsafePointer {
			what = "pointer"
		}
		if path == t.String() {
			return fmt.Errorf("%w: %s is %s", ErrUnsupportedType, path, WithArticle(what))
		}
		return fmt.Errorf("%w: field %s is %s (%s)", ErrUnsupportedType, path, WithArticle(what), t)
	}
}
