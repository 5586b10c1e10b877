package queue

import (
	"context"
	"fmt"
	"os"
	"unsafe"

	"github.com/xproc-go/xproc/internal/codec"
	"github.com/xproc-go/xproc/internal/ring"
	"github.com/xproc-go/xproc/shm"
)

// Of is a queue of fixed-size values of a pointer-free type T (numbers,
// arrays, structs of these): each message is the bytes of one T, copied
// in and out with no encoding. The queue records T's layout, so opening
// it with another type fails with shm.ErrTypeMismatch, as for
// value.Value. Queue returns the byte queue underneath, for Len,
// Shutdown, Join and the rest.
type Of[T any] struct {
	q *Queue
}

func typeOf[T any](op, name string) (shm.Type, error) {
	t, err := shm.TypeOf[T]()
	if err != nil {
		return t, &Error{Pkg: "queue", Op: op, Name: name, Err: err}
	}
	return t, nil
}

// CreateOf makes a new named queue of T. o.MaxMessage is ignored: every
// message is one T. It fails as Create does, and with
// shm.ErrUnsupportedType (naming the field) if T cannot live in shared
// memory.
func CreateOf[T any](name string, o Options, opts ...shm.Option) (*Of[T], error) {
	return createOf[T](name, o, false, opts)
}

// CreateAnonymousOf makes a queue of T with no name (see CreateAnonymous).
func CreateAnonymousOf[T any](o Options) (*Of[T], error) {
	return createOf[T]("", o, true, nil)
}

func createOf[T any](name string, o Options, anon bool, opts []shm.Option) (*Of[T], error) {
	t, err := typeOf[T]("create", name)
	if err != nil {
		return nil, err
	}
	o.MaxMessage = int(t.Size)
	q, err := create(name, t, o, anon, opts)
	if err != nil {
		return nil, err
	}
	return &Of[T]{q: q}, nil
}

// OpenOf maps the named queue of T. It fails as Open does, and with
// shm.ErrTypeMismatch if the queue holds another type (or bytes).
func OpenOf[T any](name string, opts ...shm.Option) (*Of[T], error) {
	t, err := typeOf[T]("open", name)
	if err != nil {
		return nil, err
	}
	seg, err := shm.Open(name, shm.Spec{Kind: shm.KindQueue, Type: t, Len: 1}, opts...)
	if err != nil {
		return nil, err
	}
	q, err := wrap(seg, "open", name)
	if err != nil {
		return nil, err
	}
	return &Of[T]{q: q}, nil
}

// OpenFileOf maps a queue of T from an inherited file (see OpenFile).
func OpenFileOf[T any](f *os.File) (*Of[T], error) {
	t, err := typeOf[T]("open", f.Name())
	if err != nil {
		return nil, err
	}
	seg, err := shm.OpenFile(f, shm.Spec{Kind: shm.KindQueue, Type: t, Len: 1})
	if err != nil {
		return nil, err
	}
	q, err := wrap(seg, "open", "")
	if err != nil {
		return nil, err
	}
	return &Of[T]{q: q}, nil
}

// Queue returns the byte queue underneath.
func (q *Of[T]) Queue() *Queue { return q.q }

// Close closes the queue (see Queue.Close).
func (q *Of[T]) Close() error { return q.q.Close() }

// Put appends v, waiting for room until ctx is done (see Queue.Put).
func (q *Of[T]) Put(ctx context.Context, v T) error {
	return q.q.put(ctx, bytesOf(&v), true)
}

// TryPut is Put without waiting: ErrFull if there is no room.
func (q *Of[T]) TryPut(v T) error {
	return q.q.put(context.Background(), bytesOf(&v), false)
}

// Get removes and returns the oldest value, waiting until ctx is done
// (see Queue.Get). A message of another size (put through the byte
// queue) is removed and reported as a *DecodeError.
func (q *Of[T]) Get(ctx context.Context) (T, error) { return q.get(ctx, true) }

// TryGet is Get without waiting: ErrEmpty if there is none.
func (q *Of[T]) TryGet() (T, error) { return q.get(context.Background(), false) }

func (q *Of[T]) get(ctx context.Context, block bool) (T, error) {
	var v T
	if err := q.q.closed("get"); err != nil {
		return v, err
	}
	var s ring.Slot
	err := q.q.r.Claim(ctx, nil, block, &s)
	if err != nil {
		return v, q.q.err("get", err)
	}
	copy(bytesOf(&v), s.Data)
	n, seq := len(s.Data), s.Hdr.Seq
	if err := q.q.r.Release(&s); err != nil {
		return v, q.q.err("get", err)
	}
	if size := int(unsafe.Sizeof(v)); n != size {
		var zero T
		return zero, &Error{Pkg: "queue", Op: "get", Name: q.q.name, Err: &DecodeError{Seq: seq, Err: fmt.Errorf("message of %d bytes, %T has %d", n, v, size)}}
	}
	return v, nil
}

// bytesOf views the bytes of *p. T is pointer-free (checked when the
// queue was made or opened), so its bytes are all there is to it.
func bytesOf[T any](p *T) []byte { return codec.Bytes(p) }

// Codec turns values into messages and back: Python's pickling, done by
// a library of the user's choice. GobCodec (the default) and JSONCodec
// come with the package; a protobuf or msgpack codec is a few lines over
// its library. Package pool and process encode with the same codecs.
type Codec = codec.Codec

// GobCodec encodes with encoding/gob, each message on its own (with its
// type description), so that any process can decode any message.
var GobCodec Codec = codec.Gob

// JSONCodec encodes with encoding/json.
var JSONCodec Codec = codec.JSON

// DecodeError reports a message that could not be turned into a value.
// The message was removed; no other was touched.
type DecodeError struct {
	Seq uint64 // the message's sequence number (0 if unknown)
	Err error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decoding message %d: %v", e.Seq, e.Err)
}

// Unwrap returns the codec's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// EncodeError reports a value the codec could not encode. Nothing was
// put.
type EncodeError struct{ Err error }

func (e *EncodeError) Error() string { return "encoding: " + e.Err.Error() }

// Unwrap returns the codec's error.
func (e *EncodeError) Unwrap() error { return e.Err }

// Coded is a queue of any Go values (structs, maps, slices, ...) carried
// as messages encoded by a Codec: what Python's Queue does with pickle.
type Coded[T any] struct {
	q     *Queue
	codec Codec
}

// WithCodec views q as a queue of T encoded with c (GobCodec if nil).
// Every process using the queue must use the same codec and compatible
// types.
func WithCodec[T any](q *Queue, c Codec) *Coded[T] {
	if c == nil {
		c = GobCodec
	}
	return &Coded[T]{q: q, codec: c}
}

// Queue returns the byte queue underneath.
func (q *Coded[T]) Queue() *Queue { return q.q }

// Put encodes v and appends it (see Queue.Put). An encoding error is an
// *EncodeError and the queue is unchanged.
func (q *Coded[T]) Put(ctx context.Context, v T) error {
	b, err := q.codec.Marshal(&v)
	if err != nil {
		return &Error{Pkg: "queue", Op: "put", Name: q.q.name, Err: &EncodeError{Err: err}}
	}
	return q.q.Put(ctx, b)
}

// Get removes the oldest message and decodes it (see Queue.Get). A
// message that does not decode is removed and reported as a
// *DecodeError naming its sequence number.
func (q *Coded[T]) Get(ctx context.Context) (T, error) {
	var v T
	l, err := q.q.GetLease(ctx)
	if err != nil {
		return v, err
	}
	derr := q.codec.Unmarshal(l.Data(), &v)
	seq := l.Seq()
	if err := l.Ack(); err != nil {
		return v, err
	}
	if derr != nil {
		return v, &Error{Pkg: "queue", Op: "get", Name: q.q.name, Err: &DecodeError{Seq: seq, Err: derr}}
	}
	return v, nil
}
