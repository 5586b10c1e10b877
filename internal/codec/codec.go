// Package codec moves Go values between processes as bytes: a
// fixed-size, pointer-free type (numbers, arrays and structs of them) as
// its own bytes, which mean the same in every process of one machine,
// and any other type through a Codec (encoding/gob unless the caller
// picks another), as Python pickles objects. Queues (package queue),
// worker processes (process) and pools (pool) all encode through it.
package codec

import (
	"bytes"
	"encoding"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/xproc-go/xproc/internal/layout"
)

// Codec turns values into bytes and back: Python's pickling, done by a
// library of the user's choice. Gob (the default) and JSON come with the
// package; a protobuf or msgpack codec is a few lines over its library.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// Gob encodes with encoding/gob, each value on its own (with its type
// description), so that any process can decode it.
var Gob Codec = gobCodec{}

// JSON encodes with encoding/json.
var JSON Codec = jsonCodec{}

type gobCodec struct{}

func (gobCodec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(v)
	return b.Bytes(), err
}

func (gobCodec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Of encodes values and slices of T: as raw bytes if T can live in
// shared memory (layout.Describe accepts it), through the codec
// otherwise.
type Of[T any] struct {
	raw  bool
	size int
	c    Codec
}

// For returns the encoding of T: fixed-size pointer-free types go as
// their raw bytes, exactly (unexported fields, NaNs and all, which a
// codec might drop or refuse), and the others through c (Gob if nil).
func For[T any](c Codec) Of[T] {
	if c == nil {
		c = Gob
	}
	_, err := layout.Describe(reflect.TypeFor[T]())
	var zero T
	return Of[T]{raw: err == nil, size: int(unsafe.Sizeof(zero)), c: c}
}

// Raw reports whether values of T go as their bytes.
func (o Of[T]) Raw() bool { return o.raw }

// Marshal encodes *p: its bytes if T is raw, else through the codec.
func (o Of[T]) Marshal(p *T) ([]byte, error) {
	if o.raw {
		return append([]byte(nil), Bytes(p)...), nil
	}
	return o.c.Marshal(p)
}

// Unmarshal decodes b, which Marshal made, into *p.
func (o Of[T]) Unmarshal(b []byte, p *T) error {
	if o.raw {
		if len(b) != o.size {
			return fmt.Errorf("codec: %d bytes for a value of %d bytes", len(b), o.size)
		}
		copy(Bytes(p), b)
		return nil
	}
	return o.c.Unmarshal(b, p)
}

// AppendSlice appends the encoding of xs to dst.
func (o Of[T]) AppendSlice(dst []byte, xs []T) ([]byte, error) {
	if o.raw {
		if len(xs) == 0 {
			return dst, nil
		}
		return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(&xs[0])), len(xs)*o.size)...), nil
	}
	b, err := o.c.Marshal(&xs)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// DecodeSlice decodes n values from b, which AppendSlice made.
func (o Of[T]) DecodeSlice(b []byte, n int) ([]T, error) {
	if o.raw {
		if len(b) != n*o.size {
			return nil, fmt.Errorf("codec: %d bytes for %d values of %d bytes", len(b), n, o.size)
		}
		xs := make([]T, n)
		if n > 0 {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&xs[0])), len(b)), b)
		}
		return xs, nil
	}
	var xs []T
	if err := o.c.Unmarshal(b, &xs); err != nil {
		return nil, err
	}
	if len(xs) != n {
		return nil, fmt.Errorf("codec: %d values decoded, want %d", len(xs), n)
	}
	return xs, nil
}

// Bytes views the bytes of *p, for a pointer-free T (the caller checks):
// its bytes are all there is to it.
func Bytes[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}

// IsGob reports whether c is gob (nil counts: the default).
func IsGob(c Codec) bool {
	if c == nil {
		return true
	}
	_, ok := c.(gobCodec)
	return ok
}

// GobProblem returns why encoding/gob refuses every value of t, or nil:
// t is a func, a chan or an unsafe.Pointer, or a struct with fields none
// of which gob sends (all unexported, or of those kinds), where t does
// not encode itself (gob.GobEncoder or encoding.BinaryMarshaler, which
// gob uses). It looks at t itself, not into its fields: what gob leaves
// out (unexported fields, and exported ones of func or chan type) it
// leaves out by design, and an error deeper down still shows at the
// first call, as ErrCodec.
func GobProblem(t reflect.Type) error {
	if encodesItself(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return fmt.Errorf("gob cannot encode a %v", t)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			switch f.Type.Kind() {
			case reflect.Func, reflect.Chan:
				continue
			}
			if f.IsExported() {
				return nil
			}
		}
		if t.NumField() > 0 {
			return fmt.Errorf("%v has no field gob sends (none is exported)", t)
		}
	}
	return nil
}

var (
	gobEncoder = reflect.TypeFor[gob.GobEncoder]()
	binaryM    = reflect.TypeFor[encoding.BinaryMarshaler]()
)

// encodesItself reports whether gob encodes t with t's own method.
func encodesItself(t reflect.Type) bool {
	for _, i := range []reflect.Type{gobEncoder, binaryM} {
		if t.Implements(i) || reflect.PointerTo(t).Implements(i) {
			return true
		}
	}
	return false
}
