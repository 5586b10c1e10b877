package process

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"

	"github.com/xproc-go/xproc/internal/codec"
	"github.com/xproc-go/xproc/internal/registry"
)

// Func is a function registered to run in worker processes: it takes an
// In and returns an Out. Get one from Register, in a package-level
// variable, so that every process of the program registers it alike.
// Compare Funcs by Name: a Func holds its codec, which need not be
// comparable.
type Func[In, Out any] struct {
	name  string
	codec Codec
}

// Name returns the name the function was registered under.
func (f Func[In, Out]) Name() string { return f.name }

// Codec returns the codec of the function's arguments and results: the
// one given to Register with Encoding, or gob.
func (f Func[In, Out]) Codec() Codec {
	if f.codec == nil {
		return codec.Gob
	}
	return f.codec
}

// Codec turns values into bytes and back: Python's pickling, done by a
// library of the user's choice. It is queue.Codec: queue.GobCodec (the
// default), queue.JSONCodec, or a few lines over a protobuf or msgpack
// library.
type Codec = codec.Codec

// RegisterOption configures Register.
type RegisterOption func(*registration)

type registration struct{ codec Codec }

// Encoding has the function's arguments and results encoded with c
// instead of gob, where they cannot travel as raw bytes (see Register):
// in Start, Wait, and every pool call and initializer. Every process of
// the program registers the function alike, so the worker decodes with
// the codec the parent encoded with. Like gob, c must encode a value and
// a slice of values (a pool sends calls in batches, as []In and []Out).
func Encoding(c Codec) RegisterOption { return func(r *registration) { r.codec = c } }

// Register registers fn under name, for Start (and package pool) to run
// in worker processes, and returns the handle to start it by. Call it from
// package initialisation (a package-level var), as flag definitions and
// database/sql drivers are registered, so that the worker, which is this
// same program started again, registers the same functions before
// process.Init runs. It panics if name is empty or already registered, or
// if Init has already run: a function registered later would be unknown
// to the workers.
//
// Arguments and results travel between processes encoded, alike for
// Start and for a pool: fixed-size, pointer-free types (numbers, arrays
// and structs of them, exported fields or not) as their raw bytes,
// exactly, and any other type with encoding/gob (which sends exported
// fields, leaving out the others and those of func or chan type, and
// interfaces registered with gob.Register) or with the codec given by
// Encoding. With gob, Register panics, as it does for a duplicate name,
// on a type gob refuses outright (a func, a chan, a struct with no field
// gob sends): every call would fail.
func Register[In, Out any](name string, fn func(context.Context, In) (Out, error), opts ...RegisterOption) Func[In, Out] {
	if name == "" {
		panic("process: Register with an empty name")
	}
	if fn == nil {
		panic("process: Register of a nil function for " + name)
	}
	var r registration
	for _, opt := range opts {
		opt(&r)
	}
	if codec.IsGob(r.codec) {
		checkGob[In](name, "argument")
		checkGob[Out](name, "result")
	}
	if _, dup := registry.Lookup(name); dup {
		panic("process: Register called twice for " + name)
	}
	if initCalled.Load() {
		panic("process: Register(" + name + ") after process.Init: register worker functions at package initialisation (a package-level var), so that a worker, which is this program started again, has them when Init runs")
	}
	f := Func[In, Out]{name: name, codec: r.codec}
	if !registry.Add(name, entryOf(fn, f.Codec())) {
		panic("process: Register called twice for " + name)
	}
	return f
}

// checkGob panics if values of T, the function name's argument or result
// (what), go by gob (they are not raw bytes) and gob refuses every one of
// them: every call would fail.
func checkGob[T any](name, what string) {
	if codec.For[T](nil).Raw() {
		return
	}
	t := reflect.TypeFor[T]()
	if err := codec.GobProblem(t); err != nil {
		panic(fmt.Sprintf("process: Register(%s): the %s type %v cannot travel: %v (export the fields it needs, or register the function with Encoding and a codec that carries it)", name, what, t, err))
	}
}

// entryOf wraps fn for registry: its one-call and batch forms, encoding
// with c.
func entryOf[In, Out any](fn func(context.Context, In) (Out, error), c Codec) registry.Entry {
	in, out := codec.For[In](c), codec.For[Out](c)
	return registry.Entry{
		Call: func(ctx context.Context, arg []byte) ([]byte, error) {
			var x In
			if err := in.Unmarshal(arg, &x); err != nil {
				return nil, fmt.Errorf("%w: argument: %w", ErrCodec, err)
			}
			y, err := fn(ctx, x)
			if err != nil {
				return nil, err
			}
			b, err := out.Marshal(&y)
			if err != nil {
				return nil, fmt.Errorf("%w: result: %w", ErrCodec, err)
			}
			return b, nil
		},
		Batch: func(ctx context.Context, args []byte, n int) (registry.Results, error) {
			xs, err := in.DecodeSlice(args, n)
			if err != nil {
				return nil, err
			}
			r := &results[Out]{ys: make([]Out, n), codec: out}
			for i := range xs {
				if f := callOne(ctx, fn, &xs[i], &r.ys[i]); f != nil {
					f.Index = i
					r.fails = append(r.fails, *f)
				}
			}
			return r, nil
		},
	}
}

// results are a batch's results, for registry.Results.
type results[Out any] struct {
	ys    []Out
	fails []registry.Failure
	codec codec.Of[Out]
}

func (r *results[Out]) Len() int                     { return len(r.ys) }
func (r *results[Out]) Failures() []registry.Failure { return r.fails }
func (r *results[Out]) Encode(from, to int) ([]byte, error) {
	return r.codec.AppendSlice(nil, r.ys[from:to])
}

// callOne runs fn on *x into *y, turning an error or a panic into a
// failure.
func callOne[In, Out any](ctx context.Context, fn func(context.Context, In) (Out, error), x *In, y *Out) (f *registry.Failure) {
	defer func() {
		if r := recover(); r != nil {
			f = &registry.Failure{Message: fmt.Sprint(r), Panic: true, Stack: string(debug.Stack())}
		}
	}()
	v, err := fn(ctx, *x)
	if err != nil {
		return &registry.Failure{Message: err.Error()}
	}
	*y = v
	return nil
}

func lookup(name string) (registry.Entry, bool) { return registry.Lookup(name) }

// call runs e on arg, turning a panic into a *FuncError with the stack.
func call(ctx context.Context, name string, e registry.Entry, arg []byte) (result []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &FuncError{Func: name, Message: fmt.Sprint(r), Panic: true, Stack: string(debug.Stack())}
		}
	}()
	return e.Call(ctx, arg)
}
