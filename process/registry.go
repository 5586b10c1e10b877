package process

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"runtime/debug"
	"sync"
)

// Func is a function registered to run in worker processes: it takes an
// In and returns an Out. Get one from Register, in a package-level
// variable, so that every process of the program registers it alike.
type Func[In, Out any] struct {
	name string
}

// Name returns the name the function was registered under.
func (f Func[In, Out]) Name() string { return f.name }

// entry is a registered function, with its argument and result encoded:
// what a worker needs to run it knowing only its name.
type entry struct {
	run func(ctx context.Context, arg []byte) (result []byte, err error)
}

var registry = struct {
	sync.Mutex
	m map[string]entry
}{m: make(map[string]entry)}

// Register registers fn under name, for Start (and package pool) to run
// in worker processes, and returns the handle to start it by. Call it from
// package initialisation (a package-level var), as flag definitions and
// database/sql drivers are registered, so that the worker, which is this
// same program started again, registers the same functions before
// process.Init runs. It panics if name is empty or already registered.
//
// Arguments and results travel between processes encoded with
// encoding/gob: In and Out must be types gob can encode (exported fields;
// interfaces registered with gob.Register).
func Register[In, Out any](name string, fn func(context.Context, In) (Out, error)) Func[In, Out] {
	if name == "" {
		panic("process: Register with an empty name")
	}
	if fn == nil {
		panic("process: Register of a nil function for " + name)
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[name]; dup {
		panic("process: Register called twice for " + name)
	}
	registry.m[name] = entry{run: func(ctx context.Context, arg []byte) ([]byte, error) {
		var in In
		if err := decode(arg, &in); err != nil {
			return nil, fmt.Errorf("%w: argument: %w", ErrCodec, err)
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		b, err := encode(&out)
		if err != nil {
			return nil, fmt.Errorf("%w: result: %w", ErrCodec, err)
		}
		return b, nil
	}}
	return Func[In, Out]{name: name}
}

func lookup(name string) (entry, bool) {
	registry.Lock()
	defer registry.Unlock()
	e, ok := registry.m[name]
	return e, ok
}

// encode and decode move arguments and results between processes.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func decode(b []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(b)).Decode(v)
}

// call runs e on arg, turning a panic into a *FuncError with the stack.
func call(ctx context.Context, name string, e entry, arg []byte) (result []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &FuncError{Func: name, Message: fmt.Sprint(r), Panic: true, Stack: string(debug.Stack())}
		}
	}()
	return e.run(ctx, arg)
}
