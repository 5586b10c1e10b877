package shm

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/internal/layout"
	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/region"
)

// Kind is the kind of object a segment holds; it is recorded in the header
// so that a Barrier cannot be opened as a Mutex.
type Kind = layout.Kind

// Segment kinds.
const (
	KindRaw            = layout.KindRaw
	KindMutex          = layout.KindMutex
	KindReentrantMutex = layout.KindReentrantMutex
	KindSemaphore      = layout.KindSemaphore
	KindEvent          = layout.KindEvent
	KindCond           = layout.KindCond
	KindBarrier        = layout.KindBarrier
	KindValue          = layout.KindValue
	KindArray          = layout.KindArray
	KindQueue          = layout.KindQueue
	KindPipe           = layout.KindPipe
)

// Type describes the element type of a segment: size, alignment, a
// fingerprint of its layout and a name for humans. Use TypeOf.
type Type = layout.TypeDesc

// TypeOf describes T, or returns an error wrapping ErrUnsupportedType that
// names the field of T that cannot live in shared memory.
func TypeOf[T any]() (Type, error) {
	return layout.Describe(reflect.TypeFor[T]())
}

// MaxParams is the number of kind-specific parameters a header records.
const MaxParams = layout.ParamCount

// Spec says what a segment holds. Create records it in the header; Open
// checks the header against it.
type Spec struct {
	Kind Kind
	// Type is the element type. When opening, a zero Type accepts any.
	Type Type
	// Len is the number of elements (at least 1). When opening, 0 accepts
	// any length.
	Len uint64
	// Shape optionally records up to 4 dimensions whose product is Len.
	Shape []uint64
	// DataSize is the size of the data area; 0 means Len*Type.Size. It may
	// be larger, for objects with bookkeeping beside their elements.
	DataSize uint64
	// Params are kind-specific immutable parameters (capacities, flags).
	Params [MaxParams]uint64
	// Init, if set, initialises the segment's data (through Data, View or
	// Slice) before the segment becomes visible to any other process.
	// Create only.
	Init func(s *Segment) error
}

// Segment is a mapped segment. Its methods are safe for concurrent use.
//
// Memory returned by Data (and any pointer or slice derived from it) is
// valid only until Close; using it afterwards faults. After Close no
// method touches the unmapped memory: Data returns nil, View and Slice
// fail with ErrClosed, Info returns an Info whose Err wraps ErrClosed,
// and the others answer from this process's copy of the header (or, for
// Unlink, act on the name), so code that fetches its memory afresh for
// each use gets an error, not a fault. A call racing with Close is a
// bug: it may fault.
type Segment struct {
	name string
	path string
	hdr  layout.Header
	mem  []byte // whole mapping
	data []byte
	file *os.File // anonymous segments only: to hand to children
	// own is this process's private open file of the segment, kept for
	// the segment's lifetime: it holds the liveness lock (locked) that
	// tells other processes this one maps the segment (owner.Attach).
	own    *os.File
	locked bool
	region *region.Region
	unmap  func() error

	closed    atomic.Bool // set first thing by Close
	closeOnce sync.Once
	closeErr  error
}

// Name returns the segment's name, or "" for an anonymous segment.
func (s *Segment) Name() string { return s.name }

// Path returns the file the segment lives in, or "" if anonymous.
func (s *Segment) Path() string { return s.path }

// Kind returns the kind recorded in the header.
func (s *Segment) Kind() Kind { return s.hdr.Kind }

// Type returns the element type recorded in the header.
func (s *Segment) Type() Type {
	return Type{Size: s.hdr.ElemSize, Align: s.hdr.ElemAlign, Fingerprint: s.hdr.Fingerprint, Name: s.hdr.Name()}
}

// Len returns the number of elements.
func (s *Segment) Len() uint64 { return s.hdr.Len }

// Shape returns the recorded dimensions, or nil.
func (s *Segment) Shape() []uint64 {
	if s.hdr.NDim == 0 {
		return nil
	}
	return append([]uint64(nil), s.hdr.Shape[:s.hdr.NDim]...)
}

// Params returns the kind-specific parameters.
func (s *Segment) Params() [MaxParams]uint64 { return s.hdr.Params }

// Data returns the data area: DataSize bytes starting at the data offset,
// shared with every process that maps the segment. Valid until Close;
// nil after it.
func (s *Segment) Data() []byte {
	if s.closed.Load() {
		return nil
	}
	return s.data
}

// Closed reports whether Close has been called. Handles built on a
// segment check it to turn a use after Close into a clear error or panic
// instead of a fault; a use racing with Close is still a bug.
func (s *Segment) Closed() bool { return s.closed.Load() }

// File returns the open file of an anonymous segment, to be handed to a
// child process (exec.Cmd.ExtraFiles), which maps it with OpenFile. It
// returns nil for named segments, which children open by name. The file
// belongs to the segment; Close closes it (its methods then fail with
// os.ErrClosed).
func (s *Segment) File() *os.File { return s.file }

// Info describes the segment as Stat would. After Close it asks nothing
// of the unmapped memory: it returns what the header said, with InUse
// false, no attached processes, and Err wrapping ErrClosed.
func (s *Segment) Info() Info {
	if s.closed.Load() {
		info := infoFromHeader(s.name, s.path, &s.hdr, int64(len(s.mem)), nil, nil, false)
		info.Err = &Error{Op: "info", Name: s.name, Err: ErrClosed}
		return info
	}
	return infoFromHeader(s.name, s.path, &s.hdr, int64(len(s.mem)), s.region.Attached(), s.region.Alive, true)
}

// Close unmaps the segment. Operations sleeping on primitives inside it
// are woken and fail with a closed error; Close waits for them to leave
// before unmapping. The segment itself stays until Unlink.
func (s *Segment) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.region.Close()
		err := s.unmap()
		// Only now, unmapped, does this process stop counting as
		// attached: closing own releases its liveness lock.
		if s.own != nil {
			if cerr := s.own.Close(); err == nil {
				err = cerr
			}
		}
		if s.file != nil {
			if cerr := s.file.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			s.closeErr = &Error{Op: "close", Name: s.name, Err: err}
		}
	})
	return s.closeErr
}

// Unlink removes the segment's name. Existing mappings stay valid; the
// memory is freed when the last one is closed. Unlinking an anonymous
// segment is a no-op.
func (s *Segment) Unlink() error {
	if s.path == "" {
		return nil
	}
	if err := os.Remove(s.path); err != nil {
		return &Error{Op: "unlink", Name: s.name, Err: osErr(err)}
	}
	return nil
}

// header builds the header for spec, checking it.
func (spec *Spec) header() (layout.Header, error) {
	var h layout.Header
	if spec.Kind < KindRaw || spec.Kind > KindPipe {
		return h, fmt.Errorf("%w: kind %d (want %d to %d)", ErrInvalid, uint32(spec.Kind), uint32(KindRaw), uint32(KindPipe))
	}
	t := spec.Type
	// Alignment is capped as layout.Decode caps it (at the header page
	// size), so that Create never writes a header that Open refuses.
	if t.Size == 0 || t.Align == 0 || t.Align > layout.HeaderSize || t.Align&(t.Align-1) != 0 || t.Size%t.Align != 0 {
		return h, fmt.Errorf("%w: element size %d, alignment %d", ErrInvalid, t.Size, t.Align)
	}
	if spec.Len == 0 {
		return h, fmt.Errorf("%w: length 0 (want at least 1)", ErrInvalid)
	}
	hi, need := bits.Mul64(spec.Len, t.Size)
	if hi != 0 || need > layout.MaxDataSize {
		return h, fmt.Errorf("%w: %d elements of %d bytes is too large", ErrInvalid, spec.Len, t.Size)
	}
	size := spec.DataSize
	if size == 0 {
		size = need
	}
	if size < need || size > layout.MaxDataSize {
		return h, fmt.Errorf("%w: data size %d for %d bytes of elements", ErrInvalid, size, need)
	}
	if len(spec.Shape) > layout.MaxDims {
		return h, fmt.Errorf("%w: %d dimensions (at most %d)", ErrInvalid, len(spec.Shape), layout.MaxDims)
	}
	n := uint64(1)
	for _, d := range spec.Shape {
		hi, n = bits.Mul64(n, d)
		if hi != 0 {
			break
		}
	}
	if len(spec.Shape) > 0 && (hi != 0 || n != spec.Len) {
		return h, fmt.Errorf("%w: shape %v does not hold %d elements", ErrInvalid, spec.Shape, spec.Len)
	}
	id := owner.Self()
	start, _ := owner.StartTime(id.Pid())
	h = layout.Header{
		Version:      layout.Version,
		Kind:         spec.Kind,
		NDim:         uint32(len(spec.Shape)),
		DataOffset:   dataOffset(),
		DataSize:     size,
		ElemSize:     t.Size,
		ElemAlign:    t.Align,
		Len:          spec.Len,
		Fingerprint:  t.Fingerprint,
		Params:       spec.Params,
		CreatorPid:   uint32(id.Pid()),
		AttachSlots:  layout.AttachSlots,
		CreatorStart: start,
		CreatorPidNS: owner.PidNS(),
		Created:      time.Now().UnixNano(),
	}
	copy(h.Magic[:], layout.Magic)
	copy(h.Shape[:], spec.Shape)
	h.SetName(t.Name)
	return h, nil
}

// dataOffset is the header page rounded up to the system page size, so
// that the data area is page aligned on every machine.
func dataOffset() uint64 {
	page := uint64(os.Getpagesize())
	off := uint64(layout.HeaderSize)
	if page > off {
		off = (page + off - 1) / off * off
	}
	return off
}

// check compares a decoded header with what the caller expects.
func (spec *Spec) check(h *layout.Header) error {
	if h.Kind != spec.Kind {
		return fmt.Errorf("%w: holds %s, want %s", ErrKind, layout.KindNoun(h.Kind), layout.KindNoun(spec.Kind))
	}
	t := spec.Type
	if t.Size != 0 && (h.ElemSize != t.Size || h.ElemAlign != t.Align || h.Fingerprint != t.Fingerprint) {
		return fmt.Errorf("%w: holds %s (%d bytes, fingerprint %#016x), want %s (%d bytes, fingerprint %#016x)",
			ErrTypeMismatch, h.Name(), h.ElemSize, h.Fingerprint, t.Name, t.Size, t.Fingerprint)
	}
	if spec.Len != 0 && h.Len != spec.Len {
		return fmt.Errorf("%w: holds %d, want %d", ErrLenMismatch, h.Len, spec.Len)
	}
	return nil
}

// osErr maps "exists" and "does not exist" to this package's sentinels,
// keeping the underlying error in the message and in the chain (for
// errors.Is with syscall errors and errors.As with *fs.PathError).
func osErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrExist), errors.Is(err, ErrNotExist):
		return err // mapped already
	case errors.Is(err, os.ErrExist):
		return fmt.Errorf("%w (%w)", ErrExist, err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w (%w)", ErrNotExist, err)
	}
	return err
}
