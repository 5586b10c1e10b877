//go:build race

package race

import (
	"reflect"
	"runtime"
	"sync"
	"unsafe"
)

// Enabled reports whether the race detector is on.
const Enabled = true

// objs maps the address of a primitive (possibly in a segment) to a Go
// heap object the detector can synchronise on.
var objs sync.Map

func obj(p any) unsafe.Pointer {
	addr := reflect.ValueOf(p).Pointer()
	v, ok := objs.Load(addr)
	if !ok {
		v, _ = objs.LoadOrStore(addr, new(byte))
	}
	return unsafe.Pointer(v.(*byte))
}

// Acquire records that the caller has acquired p, a pointer to a
// primitive.
func Acquire(p any) { runtime.RaceAcquire(obj(p)) }

// Release records that the caller releases p; later Acquires of p happen
// after it.
func Release(p any) { runtime.RaceReleaseMerge(obj(p)) }
