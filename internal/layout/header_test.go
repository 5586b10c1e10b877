package layout

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/bits"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sentinels are the errors Decode may return; each failure must match
// exactly one of them.
var sentinels = []error{ErrTruncated, ErrBadMagic, ErrVersion, ErrChecksum, ErrCorrupt, ErrBadSize, ErrNotReady}

// assertSentinel checks that err matches want and none of the other
// sentinels.
func assertSentinel(t *testing.T, err, want error) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, want)
	for _, s := range sentinels {
		if s != want {
			assert.NotErrorIs(t, err, s)
		}
	}
}

// testHeader returns a valid, ready header for 10 int64s in a 2x5 shape.
func testHeader() Header {
	h := Header{
		Version:      Version,
		Kind:         KindArray,
		NDim:         2,
		DataOffset:   HeaderSize,
		DataSize:     80,
		ElemSize:     8,
		ElemAlign:    8,
		Len:          10,
		Fingerprint:  0x0123456789abcdef,
		Shape:        [MaxDims]uint64{2, 5},
		Params:       [ParamCount]uint64{1, 2, 3, 4, 5, 6, 7, 8},
		CreatorPid:   4242,
		AttachSlots:  AttachSlots,
		CreatorStart: 987654321,
		CreatorPidNS: 4026531836,
		Created:      1700000000123456789,
		Ready:        1,
	}
	copy(h.Magic[:], Magic)
	h.SetName("int64")
	return h
}

// encode returns a header page holding h (setting h's checksum), and the
// size of a file that holds its data.
func encode(h *Header) ([]byte, int64) {
	b := make([]byte, HeaderSize)
	h.Encode(b)
	return b, int64(h.DataOffset + h.DataSize)
}

func TestHeaderLayout(t *testing.T) {
	// The encoded size, the Go struct's size and the offsets in the
	// field comments all agree: there is no padding, so the struct is
	// the file format.
	assert.Equal(t, encodedSize, binary.Size(Header{}))
	assert.Equal(t, uintptr(encodedSize), reflect.TypeFor[Header]().Size())

	want := []struct {
		field  string
		offset uintptr
		size   uintptr
	}{
		{"Magic", 0, 8},
		{"Version", 8, 4},
		{"Kind", 12, 4},
		{"Flags", 16, 4},
		{"NDim", 20, 4},
		{"DataOffset", 24, 8},
		{"DataSize", 32, 8},
		{"ElemSize", 40, 8},
		{"ElemAlign", 48, 8},
		{"Len", 56, 8},
		{"Fingerprint", 64, 8},
		{"Shape", 72, 8 * MaxDims},
		{"Params", 104, 8 * ParamCount},
		{"CreatorPid", 168, 4},
		{"AttachSlots", 172, 4},
		{"CreatorStart", 176, 8},
		{"Created", 184, 8},
		{"TypeName", 192, TypeNameSize},
		{"CreatorPidNS", 248, 8},
		{"Checksum", 256, 4},
		{"Ready", 260, 4},
	}
	ht := reflect.TypeFor[Header]()
	require.Equal(t, len(want), ht.NumField(), "a field was added or removed: update this test, the comments and LAYOUT.md")
	end := uintptr(0)
	for i, w := range want {
		f := ht.Field(i)
		assert.Equal(t, w.field, f.Name, "field %d", i)
		assert.Equal(t, w.offset, f.Offset, "offset of %s", w.field)
		assert.Equal(t, w.size, f.Type.Size(), "size of %s", w.field)
		assert.Equal(t, end, f.Offset, "padding before %s", w.field)
		end = f.Offset + f.Type.Size()
	}
	assert.Equal(t, uintptr(encodedSize), end)

	checksum, _ := ht.FieldByName("Checksum")
	ready, _ := ht.FieldByName("Ready")
	assert.Equal(t, uintptr(ChecksumOffset), checksum.Offset)
	assert.Equal(t, uintptr(ReadyOffset), ready.Offset)
	assert.Equal(t, ChecksumOffset+4, ReadyOffset)
	assert.Equal(t, ReadyOffset+4, encodedSize)

	assert.Equal(t, 4096, HeaderSize)
	assert.LessOrEqual(t, encodedSize, AttachOffset, "header fields overlap the attach table")
	assert.LessOrEqual(t, AttachOffset+8*AttachSlots, HeaderSize, "attach table overflows the header page")
	assert.Zero(t, AttachOffset%8, "attach entries are 8-byte atomics")
	assert.Zero(t, ReadyOffset%4, "the ready flag is a 4-byte atomic")
	assert.Len(t, Magic, 8)
}

// TestEncodeBytes reads the encoding with plain little-endian loads at the
// documented offsets, as another language would.
func TestEncodeBytes(t *testing.T) {
	h := testHeader()
	b, _ := encode(&h)
	le := binary.LittleEndian
	assert.Equal(t, "XPROCSEG", string(b[0:8]))
	assert.Equal(t, uint32(Version), le.Uint32(b[8:]))
	assert.Equal(t, uint32(KindArray), le.Uint32(b[12:]))
	assert.Equal(t, uint32(0), le.Uint32(b[16:]))
	assert.Equal(t, uint32(2), le.Uint32(b[20:]))
	assert.Equal(t, uint64(HeaderSize), le.Uint64(b[24:]))
	assert.Equal(t, uint64(80), le.Uint64(b[32:]))
	assert.Equal(t, uint64(8), le.Uint64(b[40:]))
	assert.Equal(t, uint64(8), le.Uint64(b[48:]))
	assert.Equal(t, uint64(10), le.Uint64(b[56:]))
	assert.Equal(t, uint64(0x0123456789abcdef), le.Uint64(b[64:]))
	assert.Equal(t, uint64(2), le.Uint64(b[72:]))
	assert.Equal(t, uint64(5), le.Uint64(b[80:]))
	assert.Equal(t, uint64(0), le.Uint64(b[88:]))
	assert.Equal(t, uint64(1), le.Uint64(b[104:]))
	assert.Equal(t, uint64(8), le.Uint64(b[104+7*8:]))
	assert.Equal(t, uint32(4242), le.Uint32(b[168:]))
	assert.Equal(t, uint32(AttachSlots), le.Uint32(b[172:]))
	assert.Equal(t, uint64(987654321), le.Uint64(b[176:]))
	assert.Equal(t, uint64(1700000000123456789), le.Uint64(b[184:]))
	assert.Equal(t, "int64\x00", string(b[192:198]))
	assert.Equal(t, uint64(4026531836), le.Uint64(b[248:]))
	sum := crc32.Checksum(b[:256], crc32.MakeTable(crc32.Castagnoli))
	assert.Equal(t, sum, le.Uint32(b[256:]), "CRC-32C (Castagnoli) of bytes [0, 256)")
	assert.Equal(t, uint32(1), le.Uint32(b[260:]))
	for i, c := range b[encodedSize:] {
		if c != 0 {
			t.Fatalf("byte %d after the header fields is %#x, want 0", encodedSize+i, c)
		}
	}
}

func TestEncodeLeavesAttachTable(t *testing.T) {
	b := make([]byte, HeaderSize)
	for i := AttachOffset; i < HeaderSize; i++ {
		b[i] = 0xa5
	}
	h := testHeader()
	h.Encode(b)
	for i := AttachOffset; i < HeaderSize; i++ {
		require.Equal(t, byte(0xa5), b[i], "byte %d", i)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	h := testHeader()
	b, size := encode(&h)
	got, err := Decode(b, size)
	require.NoError(t, err)
	assert.Equal(t, h.Checksum, got.Checksum)
	assert.NotZero(t, got.Checksum)
	assert.Equal(t, h, got)
	assert.Equal(t, "int64", got.Name())

	// A larger file is fine; the data area may be followed by anything.
	_, err = Decode(b, size+12345)
	require.NoError(t, err)

	// The attach table is not validated: it changes all the time.
	for i := AttachOffset; i < HeaderSize; i++ {
		b[i] = 0xff
	}
	_, err = Decode(b, size)
	require.NoError(t, err)

	// A header without a shape, and one that uses all four dimensions.
	for _, shape := range [][]uint64{nil, {10}, {1, 2, 5, 1}} {
		h := testHeader()
		h.NDim = uint32(len(shape))
		h.Shape = [MaxDims]uint64{}
		copy(h.Shape[:], shape)
		b, size := encode(&h)
		got, err := Decode(b, size)
		require.NoError(t, err, "shape %v", shape)
		assert.Equal(t, h, got)
	}
}

func TestDecodeDoesNotModifyInput(t *testing.T) {
	h := testHeader()
	b, size := encode(&h)
	orig := append([]byte(nil), b...)
	_, err := Decode(b, size)
	require.NoError(t, err)
	assert.Equal(t, orig, b)
}

func TestDecodeErrors(t *testing.T) {
	// Each case starts from a valid header. edit changes fields and
	// re-encodes, so that the checksum is valid and only the intended
	// check can fail; raw changes the bytes after encoding.
	type tc struct {
		name string
		edit func(h *Header)
		raw  func(b []byte) []byte
		size func(size int64) int64
		want error
	}
	cases := []tc{
		{name: "empty", raw: func(b []byte) []byte { return nil }, want: ErrTruncated},
		{name: "short buffer", raw: func(b []byte) []byte { return b[:HeaderSize-1] }, want: ErrTruncated},
		{name: "just the fields", raw: func(b []byte) []byte { return b[:encodedSize] }, want: ErrTruncated},
		{name: "short file", size: func(int64) int64 { return HeaderSize - 1 }, want: ErrTruncated},
		{name: "empty file", size: func(int64) int64 { return 0 }, want: ErrTruncated},
		{name: "negative file size", size: func(int64) int64 { return -1 }, want: ErrTruncated},
		{name: "min file size", size: func(int64) int64 { return math.MinInt64 }, want: ErrTruncated},

		{name: "bad magic", raw: func(b []byte) []byte { b[0] = 'Y'; return b }, want: ErrBadMagic},
		{name: "magic last byte", edit: func(h *Header) { h.Magic[7] = 'X' }, want: ErrBadMagic},
		{name: "zero magic", edit: func(h *Header) { h.Magic = [8]byte{} }, want: ErrBadMagic},
		{name: "all zero", raw: func(b []byte) []byte { return make([]byte, HeaderSize) }, want: ErrBadMagic},

		{name: "version 0", edit: func(h *Header) { h.Version = 0 }, want: ErrVersion},
		{name: "version 1", edit: func(h *Header) { h.Version = 1 }, want: ErrVersion},
		{name: "version 3", edit: func(h *Header) { h.Version = 3 }, want: ErrVersion},
		{name: "version max", edit: func(h *Header) { h.Version = math.MaxUint32 }, want: ErrVersion},
		// Version is checked before the checksum: a future version may
		// checksum differently.
		{name: "version 3 raw", raw: func(b []byte) []byte { b[8] = 3; return b }, want: ErrVersion},

		{name: "checksum field", raw: func(b []byte) []byte { b[ChecksumOffset] ^= 1; return b }, want: ErrChecksum},
		{name: "data size byte", raw: func(b []byte) []byte { b[32] ^= 0x40; return b }, want: ErrChecksum},
		{name: "kind byte", raw: func(b []byte) []byte { b[12] = 99; return b }, want: ErrChecksum},
		{name: "type name byte", raw: func(b []byte) []byte { b[255] = 'x'; return b }, want: ErrChecksum},
		{name: "zero checksum", raw: func(b []byte) []byte { clear(b[ChecksumOffset : ChecksumOffset+4]); return b }, want: ErrChecksum},

		{name: "kind 0", edit: func(h *Header) { h.Kind = 0 }, want: ErrCorrupt},
		{name: "kind past last", edit: func(h *Header) { h.Kind = maxKind + 1 }, want: ErrCorrupt},
		{name: "kind max", edit: func(h *Header) { h.Kind = math.MaxUint32 }, want: ErrCorrupt},
		{name: "flags", edit: func(h *Header) { h.Flags = 1 }, want: ErrCorrupt},
		{name: "high flag", edit: func(h *Header) { h.Flags = 1 << 31 }, want: ErrCorrupt},
		{name: "ndim 5", edit: func(h *Header) { h.NDim = 5 }, want: ErrCorrupt},
		{name: "ndim max", edit: func(h *Header) { h.NDim = math.MaxUint32 }, want: ErrCorrupt},
		{name: "attach slots 0", edit: func(h *Header) { h.AttachSlots = 0 }, want: ErrCorrupt},
		{name: "attach slots more", edit: func(h *Header) { h.AttachSlots = AttachSlots + 1 }, want: ErrCorrupt},
		{name: "data offset 0", edit: func(h *Header) { h.DataOffset = 0 }, want: ErrCorrupt},
		{name: "data offset in header", edit: func(h *Header) { h.DataOffset = AttachOffset }, want: ErrCorrupt},
		{name: "data offset unaligned", edit: func(h *Header) { h.DataOffset = HeaderSize + 8 }, want: ErrCorrupt},
		{name: "data offset huge", edit: func(h *Header) { h.DataOffset = MaxDataSize + HeaderSize }, want: ErrCorrupt},
		{name: "data offset wraps", edit: func(h *Header) { h.DataOffset = math.MaxUint64 &^ (HeaderSize - 1) }, want: ErrCorrupt},
		{name: "data size huge", edit: func(h *Header) { h.DataSize = MaxDataSize + 1 }, want: ErrCorrupt},
		{name: "data size wraps", edit: func(h *Header) { h.DataSize = math.MaxUint64 }, want: ErrCorrupt},
		{name: "elem size 0", edit: func(h *Header) { h.ElemSize = 0 }, want: ErrCorrupt},
		{name: "elem align 0", edit: func(h *Header) { h.ElemAlign = 0 }, want: ErrCorrupt},
		{name: "elem align 3", edit: func(h *Header) { h.ElemSize, h.ElemAlign = 6, 3 }, want: ErrCorrupt},
		{name: "elem align above page", edit: func(h *Header) {
			h.ElemSize, h.ElemAlign, h.Len, h.NDim, h.Shape = 8192, 8192, 1, 0, [MaxDims]uint64{}
			h.DataSize = 8192
		}, want: ErrCorrupt},
		{name: "elem size not multiple of align", edit: func(h *Header) { h.ElemSize = 12 }, want: ErrCorrupt},
		{name: "len times elem overflows", edit: func(h *Header) { h.Len, h.NDim, h.Shape = 1<<61, 0, [MaxDims]uint64{} }, want: ErrCorrupt},
		{name: "len times elem wraps to small", edit: func(h *Header) { h.Len, h.NDim, h.Shape = 1<<61+1, 0, [MaxDims]uint64{} }, want: ErrCorrupt},
		{name: "elements exceed data", edit: func(h *Header) { h.DataSize = 79 }, want: ErrCorrupt},
		{name: "shape product short", edit: func(h *Header) { h.Shape[1] = 4 }, want: ErrCorrupt},
		{name: "shape product long", edit: func(h *Header) { h.Shape[0] = 3 }, want: ErrCorrupt},
		{name: "shape with zero", edit: func(h *Header) { h.Shape[0] = 0 }, want: ErrCorrupt},
		{name: "shape overflows", edit: func(h *Header) { h.Shape[0], h.Shape[1] = 1<<32, 1<<32 }, want: ErrCorrupt},
		{name: "shape overflows to len", edit: func(h *Header) {
			// 2^32 · 2^32 · 10 would wrap to 0 without overflow checks.
			h.NDim, h.Shape = 3, [MaxDims]uint64{1 << 32, 1 << 32, 10}
		}, want: ErrCorrupt},
		{name: "unused shape entry", edit: func(h *Header) { h.Shape[2] = 1 }, want: ErrCorrupt},
		{name: "last shape entry", edit: func(h *Header) { h.Shape[3] = 7 }, want: ErrCorrupt},
		{name: "shape without ndim", edit: func(h *Header) { h.NDim = 0 }, want: ErrCorrupt},
		{name: "reserved byte first", raw: func(b []byte) []byte { b[encodedSize] = 1; return b }, want: ErrCorrupt},
		{name: "reserved byte last", raw: func(b []byte) []byte { b[AttachOffset-1] = 0x80; return b }, want: ErrCorrupt},

		{name: "file one byte short", size: func(s int64) int64 { return s - 1 }, want: ErrBadSize},
		{name: "file just the header", size: func(int64) int64 { return HeaderSize }, want: ErrBadSize},
		{name: "data offset beyond file", edit: func(h *Header) { h.DataOffset = 1 << 30 }, want: ErrBadSize},
		{name: "data size beyond file", edit: func(h *Header) { h.DataSize = MaxDataSize }, want: ErrBadSize},

		{name: "not ready", edit: func(h *Header) { h.Ready = 0 }, want: ErrNotReady},
		{name: "ready 2", edit: func(h *Header) { h.Ready = 2 }, want: ErrNotReady},
		{name: "ready raw", raw: func(b []byte) []byte { b[ReadyOffset+3] = 1; return b }, want: ErrNotReady},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := testHeader()
			b, size := encode(&h)
			if c.edit != nil {
				c.edit(&h)
				b = make([]byte, HeaderSize)
				h.Encode(b)
				// The file stays as big as the valid header's.
			}
			if c.raw != nil {
				b = c.raw(b)
			}
			if c.size != nil {
				size = c.size(size)
			}
			_, err := Decode(b, size)
			assertSentinel(t, err, c.want)
			if why, ok := corruptWhy[c.name]; ok {
				assert.Contains(t, err.Error(), why, "the intended check failed")
			} else if c.want == ErrCorrupt {
				t.Errorf("no corruptWhy entry for %q", c.name)
			}
		})
	}
}

// corruptWhy says which validation check each ErrCorrupt case of
// TestDecodeErrors must trip, so that a case cannot pass by tripping
// another.
var corruptWhy = map[string]string{
	"kind 0":                          "unknown kind 0",
	"kind past last":                  "unknown kind 12",
	"kind max":                        "unknown kind 4294967295",
	"flags":                           "unknown flags 0x1",
	"high flag":                       "unknown flags 0x80000000",
	"ndim 5":                          "5 dimensions",
	"ndim max":                        "4294967295 dimensions",
	"attach slots 0":                  "0 attach slots",
	"attach slots more":               "449 attach slots",
	"data offset 0":                   "data offset 0 not a multiple",
	"data offset in header":           "data offset 512 not a multiple",
	"data offset unaligned":           "data offset 4104 not a multiple",
	"data offset huge":                "too large",
	"data offset wraps":               "too large",
	"data size huge":                  "too large",
	"data size wraps":                 "too large",
	"elem size 0":                     "element size 0, alignment 8",
	"elem align 0":                    "element size 8, alignment 0",
	"elem align 3":                    "element size 6, alignment 3",
	"elem align above page":           "element size 8192, alignment 8192",
	"elem size not multiple of align": "element size 12, alignment 8",
	"len times elem overflows":        "2305843009213693952 elements of 8 bytes exceed",
	"len times elem wraps to small":   "2305843009213693953 elements of 8 bytes exceed",
	"elements exceed data":            "10 elements of 8 bytes exceed data size 79",
	"shape product short":             "shape [2 4] does not hold 10",
	"shape product long":              "shape [3 5] does not hold 10",
	"shape with zero":                 "shape [0 5] does not hold 10",
	"shape overflows":                 "overflows",
	"shape overflows to len":          "overflows",
	"unused shape entry":              "unused shape entries",
	"last shape entry":                "unused shape entries",
	"shape without ndim":              "unused shape entries",
	"reserved byte first":             "reserved header bytes",
	"reserved byte last":              "reserved header bytes",
}

// TestDecodeOrder checks which error wins when a header has several
// problems: the order is documented in LAYOUT.md.
func TestDecodeOrder(t *testing.T) {
	h := testHeader()
	h.Magic[0] = 'Y'
	h.Version = 9
	h.Ready = 0
	b, _ := encode(&h)
	// The magic is checked first, even in a file too short for a header.
	_, err := Decode(b[:100], 100)
	assertSentinel(t, err, ErrBadMagic)
	_, err = Decode(b, HeaderSize)
	assertSentinel(t, err, ErrBadMagic)
	good := testHeader()
	gb, _ := encode(&good)
	_, err = Decode(gb[:100], 100)
	assertSentinel(t, err, ErrTruncated)
	_, err = Decode(gb[:3], 3)
	assertSentinel(t, err, ErrTruncated)

	h = testHeader()
	h.Version, h.Kind, h.Ready = 9, 0, 0
	b, _ = encode(&h)
	b[100] ^= 1
	_, err = Decode(b, HeaderSize)
	assertSentinel(t, err, ErrVersion)

	h = testHeader()
	h.Kind, h.Ready = 0, 0
	b, _ = encode(&h)
	b[100] ^= 1
	_, err = Decode(b, HeaderSize)
	assertSentinel(t, err, ErrChecksum)

	h = testHeader()
	h.Kind, h.Ready = 0, 0
	b, _ = encode(&h)
	_, err = Decode(b, HeaderSize)
	assertSentinel(t, err, ErrCorrupt)

	h = testHeader()
	h.Ready = 0
	b, _ = encode(&h)
	_, err = Decode(b, HeaderSize)
	assertSentinel(t, err, ErrBadSize)
}

func TestKindString(t *testing.T) {
	want := map[Kind]string{
		KindRaw: "raw", KindMutex: "mutex", KindReentrantMutex: "rmutex",
		KindSemaphore: "semaphore", KindEvent: "event", KindCond: "cond",
		KindBarrier: "barrier", KindValue: "value", KindArray: "array",
		KindQueue: "queue", KindPipe: "pipe",
	}
	for k := Kind(1); k <= maxKind; k++ {
		assert.Equal(t, want[k], k.String(), "kind %d", uint32(k))
	}
	assert.Equal(t, "kind(0)", Kind(0).String())
	assert.Equal(t, "kind(12)", Kind(12).String())
	assert.Equal(t, "kind(4294967295)", Kind(math.MaxUint32).String())
	// The numbers are the file format.
	assert.Equal(t, Kind(1), KindRaw)
	assert.Equal(t, Kind(11), KindPipe)
}

func TestName(t *testing.T) {
	var h Header
	assert.Equal(t, "", h.Name())
	h.SetName("main.Point")
	assert.Equal(t, "main.Point", h.Name())
	long := strings.Repeat("y", 100)
	h.SetName(long)
	assert.Equal(t, long[:TypeNameSize-1], h.Name(), "truncated, keeping a NUL")
	assert.Zero(t, h.TypeName[TypeNameSize-1])
	h.SetName("short")
	assert.Equal(t, "short", h.Name(), "SetName clears the previous name")
	// A name written by another tool without a NUL uses the whole field.
	for i := range h.TypeName {
		h.TypeName[i] = 'z'
	}
	assert.Len(t, h.Name(), TypeNameSize)
}

func TestDataEnd(t *testing.T) {
	end, ok := DataEnd(4096, 80)
	assert.True(t, ok)
	assert.Equal(t, uint64(4176), end)
	_, ok = DataEnd(math.MaxUint64, 1)
	assert.False(t, ok, "wraps")
	_, ok = DataEnd(math.MaxInt64, 1)
	assert.False(t, ok, "beyond an int64 file size")
	end, ok = DataEnd(math.MaxInt64-1, 1)
	assert.True(t, ok)
	assert.Equal(t, uint64(math.MaxInt64), end)
}

// withChecksum returns b padded with zeros to a header page, with a
// valid checksum, so that fuzzing reaches the checks behind it.
func withChecksum(b []byte) []byte {
	c := make([]byte, max(len(b), HeaderSize))
	copy(c, b)
	binary.LittleEndian.PutUint32(c[ChecksumOffset:], crc32.Checksum(c[:ChecksumOffset], castagnoli))
	return c
}

// FuzzDecode feeds Decode arbitrary bytes and file sizes. The seeds are
// the header fields only (up to the attach table, which Decode ignores):
// whole pages make the fuzzer spend its time minimising 4 KiB inputs. Each
// input is decoded as given (mostly ErrTruncated), padded to a page, and
// padded with a repaired checksum, which is what lets random mutations
// reach the field checks at all.
func FuzzDecode(f *testing.F) {
	vh := testHeader()
	valid, size := encode(&vh)
	f.Add(valid[:AttachOffset], size)
	f.Add(valid[:encodedSize], size)
	f.Add(valid[:encodedSize], int64(HeaderSize))
	f.Add(valid[:encodedSize], int64(-1))
	f.Add(valid[:encodedSize], int64(math.MaxInt64))
	f.Add([]byte(Magic), size)
	f.Add([]byte{}, int64(0))
	for _, edit := range []func(h *Header){
		func(h *Header) { h.Ready = 0 },
		func(h *Header) { h.Kind = 0 },
		func(h *Header) { h.Version = 3 },
		func(h *Header) { h.NDim = 7 },
		func(h *Header) { h.Len = 1 << 61 },
		// Len·ElemSize wraps to 8, which fits: only the overflow check
		// refuses it.
		func(h *Header) { h.Len, h.NDim, h.Shape = 1<<61+1, 0, [MaxDims]uint64{} },
		func(h *Header) { h.DataOffset, h.DataSize = MaxDataSize, MaxDataSize },
		func(h *Header) { h.Shape[3] = 1 },
		func(h *Header) { h.ElemAlign = 3 },
		func(h *Header) { h.NDim, h.Shape = 0, [MaxDims]uint64{} },
		func(h *Header) { h.NDim, h.Shape = 4, [MaxDims]uint64{1, 2, 1, 5} },
	} {
		h := testHeader()
		edit(&h)
		b, _ := encode(&h)
		f.Add(b[:encodedSize], size)
	}
	bad := append([]byte(nil), valid[:encodedSize]...)
	bad[40] ^= 0xff
	f.Add(bad, size)

	f.Fuzz(func(t *testing.T, b []byte, fileSize int64) {
		checkDecode(t, b, fileSize)
		if len(b) < HeaderSize {
			page := make([]byte, HeaderSize)
			copy(page, b)
			checkDecode(t, page, fileSize)
		}
		checkDecode(t, withChecksum(b), fileSize)
	})
}

// checkDecode runs Decode and checks the promises a successful decode
// makes to the code that then maps the file.
func checkDecode(t *testing.T, b []byte, fileSize int64) {
	orig := append([]byte(nil), b...)
	h, err := Decode(b, fileSize)
	if string(orig) != string(b) {
		t.Fatal("Decode modified its input")
	}
	if err != nil {
		n := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %q matches %d sentinels, want exactly 1", err, n)
		}
		return
	}
	if h.DataOffset%HeaderSize != 0 || h.DataOffset < HeaderSize {
		t.Fatalf("data offset %d", h.DataOffset)
	}
	end, ok := DataEnd(h.DataOffset, h.DataSize)
	if !ok || fileSize < 0 || end > uint64(fileSize) {
		t.Fatalf("data [%d, +%d) does not fit a file of %d bytes", h.DataOffset, h.DataSize, fileSize)
	}
	hi, need := bits.Mul64(h.Len, h.ElemSize)
	if hi != 0 || need > h.DataSize {
		t.Fatalf("%d elements of %d bytes exceed %d", h.Len, h.ElemSize, h.DataSize)
	}
	if h.ElemSize == 0 || h.ElemAlign == 0 || h.ElemSize%h.ElemAlign != 0 {
		t.Fatalf("element size %d, alignment %d", h.ElemSize, h.ElemAlign)
	}
	if h.Kind < KindRaw || h.Kind > maxKind || h.Kind.String() == "" {
		t.Fatalf("kind %d", h.Kind)
	}
	if h.Ready != 1 || h.Flags != 0 || h.NDim > MaxDims || h.AttachSlots != AttachSlots {
		t.Fatalf("ready %d, flags %d, ndim %d, slots %d", h.Ready, h.Flags, h.NDim, h.AttachSlots)
	}
	if h.NDim > 0 {
		n := uint64(1)
		for _, d := range h.Shape[:h.NDim] {
			n *= d
		}
		if n != h.Len {
			t.Fatalf("shape %v for %d elements", h.Shape[:h.NDim], h.Len)
		}
	}
	_ = h.Name()
	re := make([]byte, HeaderSize)
	h2 := h
	h2.Encode(re)
	if string(re[:encodedSize]) != string(b[:encodedSize]) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", re[:encodedSize], b[:encodedSize])
	}
	if h2 != h {
		t.Fatal("re-encoding changed the header")
	}
}
