package layout

import (
	"errors"
	"fmt"
	"go/token"
	"hash/fnv"
	"hash/maphash"
	"reflect"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
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
// values refer to one process's memory and mean nothing in another.
//
// So are pointer-free types whose meaning is tied to one process (see
// processLocal): the types of Go's sync package (Mutex, RWMutex,
// WaitGroup, Once, Cond, Map, Pool), whose waiters live in one process's
// runtime; hash/maphash's Seed (and Hash), which Go documents as local to
// one process; runtime/cgo.Handle, an index into one process's handle
// table; runtime/trace's Task; and types declared from any of these
// (type MyMu sync.Mutex), which reflection sees through to the type they
// were declared as.
//
// uintptr is refused too, deliberately: a uintptr field holds an address
// or a handle (runtime/cgo.Handle is one, and a type declared as
// cgo.Handle looks to reflection like any other uintptr), which means
// nothing in another process, and its size is the machine's. A number
// that must be shared is a uint64 (or uint32); atomic.Uintptr is refused
// with it.
//
// The error names the offending field and says what to use instead.
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
// memory deadlocks or corrupts across processes), a maphash.Seed is
// documented as local to one process, a cgo.Handle indexes one process's
// handle table and a trace.Task one process's execution trace. The value
// says what to use instead.
var processLocal = map[string]string{
	"sync":          "use the xproc/sync (xsync) primitives",
	"internal/sync": "use the xproc/sync (xsync) primitives",
	"hash/maphash":  "a maphash Seed, and a Hash, which holds one, is local to the process that made it (as Go documents); keep it in each process's own memory",
	"runtime/cgo":   "a handle is valid only in the process that made it",
	"runtime/trace": "a task belongs to one process's execution trace",
}

// localTypes are the process-local types that a user's type may be
// declared from (type MyMu sync.Mutex): reflection shows such a type as
// the struct underneath, whose fields are unexported types of the
// original's package, so Describe recognises the declaration by
// convertibility and names the type the user wrote. The value says what
// to use instead. (A type declared from cgo.Handle is a plain uintptr
// to reflection: uintptr is refused for that reason, among others.)
var localTypes = []struct {
	t    reflect.Type
	hint string
}{
	{reflect.TypeFor[sync.Mutex](), "use xsync.Mutex"},
	{reflect.TypeFor[sync.RWMutex](), "use xsync.Mutex (xsync has no reader/writer lock)"},
	{reflect.TypeFor[sync.WaitGroup](), "use xsync.Barrier, or an xsync.Semaphore or xsync.Event"},
	{reflect.TypeFor[sync.Once](), "use an xsync.Mutex with a done flag beside it"},
	{reflect.TypeFor[sync.Cond](), "use xsync.Cond"},
	{reflect.TypeFor[sync.Map](), "it has no shared-memory counterpart"},
	{reflect.TypeFor[sync.Pool](), "it has no shared-memory counterpart"},
	{reflect.TypeFor[maphash.Seed](), processLocal["hash/maphash"]},
	{reflect.TypeFor[maphash.Hash](), processLocal["hash/maphash"]},
	{reflect.TypeFor[trace.Task](), processLocal["runtime/trace"]},
}

// localType returns the process-local type t is (or is declared from),
// and what to use instead, if it is one of localTypes.
func localType(t reflect.Type) (reflect.Type, string, bool) {
	if t.Kind() != reflect.Struct {
		return nil, "", false
	}
	for _, l := range localTypes {
		if t == l.t || t.ConvertibleTo(l.t) {
			return l.t, l.hint, true
		}
	}
	return nil, "", false
}

// uintptrHint says why uintptr is refused and what to use instead.
const uintptrHint = "a uintptr holds an address or a handle (such as runtime/cgo.Handle), which means nothing in another process, and its size is the machine's: use uint64 or uint32"

func describe(sb *strings.Builder, t reflect.Type, path string) error {
	// refuse explains that t, at path, works only within one process:
	// "T works only ..." for the whole type, "field P is T, which works
	// only ..." for a field. is says what T is beyond its name.
	refuse := func(is, hint string) error {
		if path == t.String() {
			return fmt.Errorf("%w: %s%s works only within one process: %s", ErrUnsupportedType, t, is, hint)
		}
		return fmt.Errorf("%w: field %s is %s%s, which works only within one process: %s", ErrUnsupportedType, path, t, is, hint)
	}
	if lt, hint, local := localType(t); local {
		if lt == t {
			return refuse("", hint)
		}
		// A type the user declared from one of them: name both.
		return refuse(" (declared as "+lt.String()+")", hint)
	}
	if hint, local := processLocal[t.PkgPath()]; local && t.Name() != "" {
		if token.IsExported(t.Name()) {
			return refuse("", hint)
		}
		// An unexported type of such a package is reached only through
		// a type declared from one of its types that localTypes does
		// not list.
		return refuse(" (part of a type declared from one of package "+t.PkgPath()+"'s)", hint)
	}
	if t.Kind() == reflect.Uintptr {
		if path == t.String() {
			return fmt.Errorf("%w: %s is a uintptr: %s", ErrUnsupportedType, t, uintptrHint)
		}
		return fmt.Errorf("%w: field %s is a uintptr (%s): %s", ErrUnsupportedType, path, t, uintptrHint)
	}
	if strings.HasPrefix(t.PkgPath(), modulePath) {
		sb.WriteString(strings.TrimPrefix(t.PkgPath(), modulePath) + "." + t.Name() + "=")
	}
	switch k := t.Kind(); k {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
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
		// What the value holds refers to this process's memory (or, for
		// an interface, a type of it) and means nothing in another.
		why := "it refers to this process's memory"
		if k == reflect.String || k == reflect.Slice {
			why += "; use a fixed-size array ([N]byte, [N]T) instead"
		}
		if path == t.String() {
			if t.Name() == what { // string, say: "string is a string" says nothing
				return fmt.Errorf("%w: %s: %s", ErrUnsupportedType, t, why)
			}
			return fmt.Errorf("%w: %s is %s: %s", ErrUnsupportedType, path, WithArticle(what), why)
		}
		return fmt.Errorf("%w: field %s is %s (%s): %s", ErrUnsupportedType, path, WithArticle(what), t, why)
	}
}
