// Package layout defines the on-disk (and in-memory) format of an xproc
// segment: the header page, its validation, and the description of the
// element type stored after it. LAYOUT.md documents the same format byte by
// byte for other languages.
//
// All fields are little-endian and fixed-width; nothing depends on GOARCH.
// The immutable part of the header is covered by a CRC-32C checksum. A
// header read from a file is copied out of the mapping first and only the
// copy is validated and used, so a buggy or hostile process cannot change a
// field between its check and its use.
package layout

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
)

// Format constants.
const (
	// Magic opens every segment file.
	Magic = "XPROCSEG"
	// Version is the layout version this package reads and writes.
	// Version 2 added CreatorPidNS (taking 8 bytes from TypeName), the
	// namespace tag in process identities, the liveness locks and the
	// per-process waiter slots of Cond.
	Version = 2
	// HeaderSize is the size of the header page. Data starts at a multiple
	// of it (or of the system page size, if larger).
	HeaderSize = 4096
	// AttachSlots is the number of entries in the attach table.
	AttachSlots = 448
	// AttachOffset is the byte offset of the attach table.
	AttachOffset = 512
	// MaxDims is the number of shape dimensions the header can record.
	MaxDims = 4
	// TypeNameSize is the size of the type-name field.
	TypeNameSize = 56
	// ParamCount is the number of kind-specific parameters.
	ParamCount = 8
	// MaxDataSize caps the data size of a segment (1 TiB): larger values
	// in a header are corruption, not intent.
	MaxDataSize = 1 << 40
)

// Header is the fixed part of the header page, in file order. Its encoded
// size is ChecksumOffset+8 bytes; the reserved bytes up to AttachOffset
// are zero, and the attach table follows at AttachOffset.
type Header struct {
	Magic        [8]byte            // 0
	Version      uint32             // 8
	Kind         Kind               // 12
	Flags        uint32             // 16: no flags are defined; must be 0
	NDim         uint32             // 20: number of valid Shape entries
	DataOffset   uint64             // 24
	DataSize     uint64             // 32
	ElemSize     uint64             // 40
	ElemAlign    uint64             // 48
	Len          uint64             // 56: number of elements
	Fingerprint  uint64             // 64: hash of the element type's layout
	Shape        [MaxDims]uint64    // 72
	Params       [ParamCount]uint64 // 104: kind-specific, immutable
	CreatorPid   uint32             // 168
	AttachSlots  uint32             // 172
	CreatorStart uint64             // 176: creator start time, ticks since boot
	Created      int64              // 184: creation time, Unix nanoseconds
	TypeName     [TypeNameSize]byte // 192: element type name, NUL padded
	CreatorPidNS uint64             // 248: inode of the creator's PID namespace; 0 if unknown
	Checksum     uint32             // 256: CRC-32C of bytes [0, 256)
	Ready        uint32             // 260: 1 once initialised
}

// Offsets of the fields that are read or written in place.
const (
	ChecksumOffset = 256
	ReadyOffset    = 260
	encodedSize    = 264
)

// Kind is the kind of object a segment holds.
type Kind uint32

// Segment kinds. Numbers are part of the file format and never reused.
const (
	KindRaw            Kind = 1
	KindMutex          Kind = 2
	KindReentrantMutex Kind = 3
	KindSemaphore      Kind = 4
	KindEvent          Kind = 5
	KindCond           Kind = 6
	KindBarrier        Kind = 7
	KindValue          Kind = 8
	KindArray          Kind = 9
	KindQueue          Kind = 10
	KindPipe           Kind = 11
	maxKind                 = KindPipe
)

var kindNames = [...]string{
	KindRaw: "raw", KindMutex: "mutex", KindReentrantMutex: "rmutex",
	KindSemaphore: "semaphore", KindEvent: "event", KindCond: "cond",
	KindBarrier: "barrier", KindValue: "value", KindArray: "array",
	KindQueue: "queue", KindPipe: "pipe",
}

// String returns the kind's name as xproc ls shows it ("mutex",
// "array", ...), or kind(N) for a number no kind has.
func (k Kind) String() string {
	if k >= 1 && k <= maxKind {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint32(k))
}

// Errors for headers that cannot be trusted. Each is distinct so that a
// caller (or a test) can tell what is wrong with a file.
var (
	ErrTruncated = errors.New("file too short for a segment header")
	ErrBadMagic  = errors.New("bad magic: not an xproc segment")
	ErrVersion   = errors.New("unsupported layout version")
	ErrChecksum  = errors.New("header checksum mismatch")
	ErrCorrupt   = errors.New("inconsistent header fields")
	ErrBadSize   = errors.New("header sizes exceed the file")
	ErrNotReady  = errors.New("segment not initialised")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode writes h to b (at least HeaderSize bytes), computing the
// checksum. Ready is written as given; the attach table is left alone.
func (h *Header) Encode(b []byte) {
	h.Checksum = 0
	buf := make([]byte, 0, encodedSize)
	buf, err := binary.Append(buf, binary.LittleEndian, h)
	if err != nil || len(buf) != encodedSize {
		panic("layout: header encoding is broken")
	}
	h.Checksum = crc32.Checksum(buf[:ChecksumOffset], castagnoli)
	binary.LittleEndian.PutUint32(buf[ChecksumOffset:], h.Checksum)
	copy(b, buf)
}

// Decode parses and validates a header from b, the first bytes of a file
// of fileSize bytes. b must be a private copy (see the package comment).
func Decode(b []byte, fileSize int64) (Header, error) {
	var h Header
	// Magic first, so that any file that is not a segment, short or not,
	// is reported as such.
	if len(b) >= len(Magic) && !bytes.Equal(b[:len(Magic)], []byte(Magic)) {
		return h, ErrBadMagic
	}
	if len(b) < HeaderSize || fileSize < HeaderSize {
		return h, ErrTruncated
	}
	if _, err := binary.Decode(b[:encodedSize], binary.LittleEndian, &h); err != nil {
		return h, ErrTruncated
	}
	if h.Version != Version {
		return h, fmt.Errorf("%w: %d (this build reads %d)", ErrVersion, h.Version, Version)
	}
	if sum := crc32.Checksum(b[:ChecksumOffset], castagnoli); sum != h.Checksum {
		return h, fmt.Errorf("%w: stored %#08x, computed %#08x", ErrChecksum, h.Checksum, sum)
	}
	if err := h.validate(b); err != nil {
		return h, err
	}
	if uint64(fileSize) < h.DataOffset+h.DataSize {
		return h, fmt.Errorf("%w: data ends at %d, file has %d bytes",
			ErrBadSize, h.DataOffset+h.DataSize, fileSize)
	}
	if h.Ready != 1 {
		return h, ErrNotReady
	}
	return h, nil
}

// validate checks the fields that a correct writer could not have produced
// differently. It runs after the checksum, so failures here mean a writer
// of another implementation got the format wrong, or a deliberate forgery.
func (h *Header) validate(b []byte) error {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	switch {
	case h.Kind < 1 || h.Kind > maxKind:
		return corrupt("unknown kind %d", uint32(h.Kind))
	case h.Flags != 0:
		return corrupt("unknown flags %#x", h.Flags)
	case h.NDim > MaxDims:
		return corrupt("%d dimensions (at most %d)", h.NDim, MaxDims)
	case h.AttachSlots != AttachSlots:
		return corrupt("%d attach slots (want %d)", h.AttachSlots, AttachSlots)
	case h.DataOffset < HeaderSize || h.DataOffset%HeaderSize != 0:
		return corrupt("data offset %d not a multiple of %d", h.DataOffset, HeaderSize)
	case h.DataOffset > MaxDataSize || h.DataSize > MaxDataSize:
		return corrupt("data offset %d or size %d too large", h.DataOffset, h.DataSize)
	case h.ElemSize == 0 || h.ElemAlign == 0 || h.ElemAlign > HeaderSize ||
		h.ElemAlign&(h.ElemAlign-1) != 0 || h.ElemSize%h.ElemAlign != 0:
		return corrupt("element size %d, alignment %d", h.ElemSize, h.ElemAlign)
	}
	if h.Len == 0 {
		return corrupt("zero elements")
	}
	hi, need := bits.Mul64(h.Len, h.ElemSize)
	if hi != 0 || need > h.DataSize {
		return corrupt("%d elements of %d bytes exceed data size %d", h.Len, h.ElemSize, h.DataSize)
	}
	if h.NDim > 0 {
		n := uint64(1)
		for _, d := range h.Shape[:h.NDim] {
			hi, n = bits.Mul64(n, d)
			if hi != 0 {
				return corrupt("shape %v overflows", h.Shape[:h.NDim])
			}
		}
		if n != h.Len {
			return corrupt("shape %v does not hold %d elements", h.Shape[:h.NDim], h.Len)
		}
	}
	for _, d := range h.Shape[h.NDim:] {
		if d != 0 {
			return corrupt("unused shape entries are not zero")
		}
	}
	for _, c := range b[encodedSize:AttachOffset] {
		if c != 0 {
			return corrupt("reserved header bytes are not zero")
		}
	}
	return nil
}

// DataEnd returns the file size a header with this data size needs.
func DataEnd(dataOffset, dataSize uint64) (uint64, bool) {
	end, carry := bits.Add64(dataOffset, dataSize, 0)
	return end, carry == 0 && end <= math.MaxInt64
}

// Name returns the type name recorded in the header.
func (h *Header) Name() string {
	n := bytes.IndexByte(h.TypeName[:], 0)
	if n < 0 {
		n = len(h.TypeName)
	}
	return string(h.TypeName[:n])
}

// SetName records name, truncated to fit.
func (h *Header) SetName(name string) {
	h.TypeName = [TypeNameSize]byte{}
	copy(h.TypeName[:TypeNameSize-1], name)
}
