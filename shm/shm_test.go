//go:build linux

package shm_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
)

func TestMain(m *testing.M) { testproc.Main(m) }

// allErrors are the package's sentinels: an error must match the one a
// test expects and none of the others.
var allErrors = []error{
	shm.ErrInvalidName, shm.ErrInvalid, shm.ErrExist, shm.ErrNotExist,
	shm.ErrKind, shm.ErrTypeMismatch, shm.ErrLenMismatch, shm.ErrClosed,
	shm.ErrNotSupported, shm.ErrLiveness, shm.ErrTruncated, shm.ErrBadMagic, shm.ErrVersion,
	shm.ErrChecksum, shm.ErrCorrupt, shm.ErrBadSize, shm.ErrNotReady,
	shm.ErrUnsupportedType,
}

// requireShmErr checks that err is an *shm.Error for op and name that
// matches want and none of the other sentinels (none at all if want is
// nil).
func requireShmErr(t *testing.T, err error, op, name string, want error) {
	t.Helper()
	require.Error(t, err)
	var se *shm.Error
	require.ErrorAs(t, err, &se, "%v", err)
	assert.Equal(t, op, se.Op, "%v", err)
	assert.Equal(t, name, se.Name, "%v", err)
	if want != nil {
		assert.ErrorIs(t, err, want)
	}
	for _, other := range allErrors {
		if other != want {
			assert.NotErrorIs(t, err, other)
		}
	}
	assert.Equal(t, 1, strings.Count(err.Error(), "shm: "), "wrapped once: %v", err)
}

// noSegment checks that a failed call returned no segment (without
// assert.Nil, which would print the whole mapping if it did).
func noSegment(t *testing.T, seg *shm.Segment) {
	t.Helper()
	if seg != nil {
		t.Errorf("got a segment (%s, %v) with the error", seg.Path(), seg.Kind())
		seg.Close()
	}
}

func typeOf[T any](t testing.TB) shm.Type {
	t.Helper()
	ty, err := shm.TypeOf[T]()
	require.NoError(t, err)
	return ty
}

// int64s returns the spec of an array of n int64s.
func int64s(t testing.TB, n uint64) shm.Spec {
	return shm.Spec{Kind: shm.KindArray, Type: typeOf[int64](t), Len: n}
}

func mustSlice(t testing.TB, seg *shm.Segment) []int64 {
	t.Helper()
	s, err := shm.Slice[int64](seg, 0, seg.Len())
	require.NoError(t, err)
	return s
}

// Child roles. Each returns an error (exit status 1, shown by the
// parent's Wait) when something is not as the parent arranged.
func init() {
	// Creates name with n int64s, i*7+1, and checks that the parent
	// negated them.
	testproc.Register("shm-create-write", func(args []string) error {
		n, _ := strconv.ParseUint(args[1], 10, 64)
		ty, _ := shm.TypeOf[int64]()
		seg, err := shm.Create(args[0], shm.Spec{Kind: shm.KindArray, Type: ty, Len: n})
		if err != nil {
			return err
		}
		defer seg.Close()
		s, err := shm.Slice[int64](seg, 0, n)
		if err != nil {
			return err
		}
		for i := range s {
			s[i] = int64(i*7 + 1)
		}
		testproc.Say("created")
		if err := testproc.Await("check"); err != nil {
			return err
		}
		for i, v := range s {
			if v != -int64(i*7+1) {
				return fmt.Errorf("element %d is %d, want %d", i, v, -(i*7 + 1))
			}
		}
		return nil
	})
	// shm-create-wait creates name (8 int64s), says "created", and on
	// "exit" closes it (leaving its name) and exits.
	testproc.Register("shm-create-wait", func(args []string) error {
		ty, _ := shm.TypeOf[int64]()
		seg, err := shm.Create(args[0], shm.Spec{Kind: shm.KindArray, Type: ty, Len: 8})
		if err != nil {
			return err
		}
		defer seg.Close()
		testproc.Say("created")
		return testproc.Await("exit")
	})
	// Opens name (8 int64s), checks 100+i and writes 200+i.
	testproc.Register("shm-open-check", func(args []string) error {
		ty, _ := shm.TypeOf[int64]()
		seg, err := shm.Open(args[0], shm.Spec{Kind: shm.KindArray, Type: ty, Len: 8})
		if err != nil {
			return err
		}
		defer seg.Close()
		s, err := shm.Slice[int64](seg, 0, 8)
		if err != nil {
			return err
		}
		for i := range s {
			if s[i] != int64(100+i) {
				return fmt.Errorf("element %d is %d, want %d", i, s[i], 100+i)
			}
			s[i] = int64(200 + i)
		}
		return nil
	})
	// Maps the anonymous segment inherited as fd 3, checks i*i, writes
	// -i, and stays attached until told to exit.
	testproc.Register("shm-anon", func(args []string) error {
		n, _ := strconv.ParseUint(args[0], 10, 64)
		ty, _ := shm.TypeOf[int64]()
		f := os.NewFile(3, "seg")
		seg, err := shm.OpenFile(f, shm.Spec{Kind: shm.KindArray, Type: ty, Len: n})
		if err != nil {
			return err
		}
		f.Close() // the mapping does not need the descriptor
		defer seg.Close()
		s, err := shm.Slice[int64](seg, 0, n)
		if err != nil {
			return err
		}
		for i := range s {
			if s[i] != int64(i*i) {
				return fmt.Errorf("element %d is %d, want %d", i, s[i], i*i)
			}
			s[i] = -int64(i)
		}
		testproc.Say("written")
		return testproc.Await("exit")
	})
	// Opens name, waits for the parent to unlink it, then checks that
	// the name is gone but the mapping still shares memory.
	testproc.Register("shm-unlink", func(args []string) error {
		ty, _ := shm.TypeOf[int64]()
		spec := shm.Spec{Kind: shm.KindArray, Type: ty, Len: 2}
		seg, err := shm.Open(args[0], spec)
		if err != nil {
			return err
		}
		defer seg.Close()
		s, err := shm.Slice[int64](seg, 0, 2)
		if err != nil {
			return err
		}
		testproc.Say("opened")
		if err := testproc.Await("unlinked"); err != nil {
			return err
		}
		if _, err := shm.Open(args[0], spec); !errors.Is(err, shm.ErrNotExist) {
			return fmt.Errorf("open after unlink: %v, want ErrNotExist", err)
		}
		if s[0] != 42 {
			return fmt.Errorf("element 0 is %d, want 42", s[0])
		}
		s[1] = 43
		testproc.Say("written")
		return nil
	})
	// Opens name and stays attached until told to close, then until
	// told to exit.
	testproc.Register("shm-attach", func(args []string) error {
		seg, err := shm.Open(args[0], shm.Spec{Kind: shm.KindArray})
		if err != nil {
			return err
		}
		testproc.Say("attached")
		if err := testproc.Await("close"); err != nil {
			return err
		}
		if err := seg.Close(); err != nil {
			return err
		}
		testproc.Say("closed")
		return testproc.Await("exit")
	})
}

// nameOfLen returns a unique valid name of exactly n bytes (n at least
// the length of testproc.Name's), removed when the test ends.
func nameOfLen(t *testing.T, n int) string {
	name := (testproc.Name(t) + strings.Repeat("x", n))[:n]
	t.Cleanup(func() {
		if err := shm.Remove(name); err != nil && !errors.Is(err, shm.ErrNotExist) {
			t.Errorf("removing %s: %v", name, err)
		}
	})
	return name
}

func TestInvalidNames(t *testing.T) {
	spec := int64s(t, 1)
	for _, name := range []string{
		"",
		"a/b",
		"/abs",
		"dir/",
		"..",
		".",
		".hidden",
		"-",
		"-rf",
		"../escape",
		"a\x00b",
		"\x00",
		"a b",
		" ",
		"a\tb",
		"a\nb",
		"a*b",
		"a\\b",
		"ümlaut",
		strings.Repeat("a", shm.MaxNameLen+1),
		strings.Repeat("a", 1000),
	} {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			assert.ErrorIs(t, shm.ValidName(name), shm.ErrInvalidName)

			seg, err := shm.Create(name, spec)
			noSegment(t, seg)
			requireShmErr(t, err, "create", name, shm.ErrInvalidName)

			seg, err = shm.Open(name, spec)
			noSegment(t, seg)
			requireShmErr(t, err, "open", name, shm.ErrInvalidName)

			requireShmErr(t, shm.Remove(name), "unlink", name, shm.ErrInvalidName)

			_, err = shm.Stat(name)
			requireShmErr(t, err, "stat", name, shm.ErrInvalidName)

			p, err := shm.Path(name)
			assert.Empty(t, p)
			requireShmErr(t, err, "path", name, shm.ErrInvalidName)
		})
	}
	// Nothing was created anywhere near the segment directory.
	_, err := os.Stat(filepath.Join(filepath.Dir(shm.DefaultDir()), "escape"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestLongestName(t *testing.T) {
	name := nameOfLen(t, shm.MaxNameLen)
	require.Len(t, name, 200)
	require.NoError(t, shm.ValidName(name))
	p, err := shm.Path(name)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(shm.DefaultDir(), name), p)

	seg, err := shm.Create(name, int64s(t, 1))
	require.NoError(t, err)
	defer seg.Close()
	assert.Equal(t, name, seg.Name())
	assert.Equal(t, p, seg.Path())
	seg2, err := shm.Open(name, int64s(t, 1))
	require.NoError(t, err)
	require.NoError(t, seg2.Close())
	info, err := shm.Stat(name)
	require.NoError(t, err)
	assert.Equal(t, name, info.Name)
	require.NoError(t, shm.Remove(name))

	for _, ok := range []string{"a", "A-Z_a-z.0-9", "x.", "a..b", "a-", "_"} {
		assert.NoError(t, shm.ValidName(ok), ok)
	}
}

func TestCreateExisting(t *testing.T) {
	name := testproc.Name(t)
	seg, err := shm.Create(name, shm.Spec{
		Kind: shm.KindArray, Type: typeOf[int64](t), Len: 4,
		Init: func(s *shm.Segment) error {
			v, err := shm.Slice[int64](s, 0, 4)
			copy(v, []int64{1, 2, 3, 4})
			return err
		},
	})
	require.NoError(t, err)
	defer seg.Close()
	before, err := os.ReadFile(seg.Path())
	require.NoError(t, err)

	for _, spec := range []shm.Spec{int64s(t, 4), int64s(t, 100), {Kind: shm.KindMutex, Type: typeOf[uint64](t), Len: 1}} {
		again, err := shm.Create(name, spec)
		noSegment(t, again)
		requireShmErr(t, err, "create", name, shm.ErrExist)
	}

	// The existing segment is untouched: same bytes, still opens, and no
	// temporary file was left beside it.
	after, err := os.ReadFile(seg.Path())
	require.NoError(t, err)
	assert.Equal(t, before, after)
	seg2, err := shm.Open(name, shm.Spec{Kind: shm.KindArray})
	require.NoError(t, err)
	defer seg2.Close()
	assert.Equal(t, uint64(4), seg2.Len())
	assert.Equal(t, []int64{1, 2, 3, 4}, mustSlice(t, seg2))
	ents, err := os.ReadDir(shm.DefaultDir())
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), "."), "left behind: %s", e.Name())
	}
}

func TestCreateInitFails(t *testing.T) {
	name := testproc.Name(t)
	boom := errors.New("boom")
	var sawData int
	seg, err := shm.Create(name, shm.Spec{
		Kind: shm.KindRaw, Type: typeOf[int64](t), Len: 3,
		Init: func(s *shm.Segment) error {
			sawData = len(s.Data())
			return boom
		},
	})
	noSegment(t, seg)
	requireShmErr(t, err, "create", name, nil)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 24, sawData)
	_, err = shm.Open(name, shm.Spec{Kind: shm.KindRaw})
	requireShmErr(t, err, "open", name, shm.ErrNotExist)
}

func TestNotExist(t *testing.T) {
	name := testproc.Name(t)
	seg, err := shm.Open(name, int64s(t, 1))
	noSegment(t, seg)
	requireShmErr(t, err, "open", name, shm.ErrNotExist)
	assert.Contains(t, err.Error(), "no such file", "the os error is in the message")

	requireShmErr(t, shm.Remove(name), "unlink", name, shm.ErrNotExist)
	_, err = shm.Stat(name)
	requireShmErr(t, err, "stat", name, shm.ErrNotExist)

	seg, err = shm.Create(name, int64s(t, 1))
	require.NoError(t, err)
	defer seg.Close()
	require.NoError(t, seg.Unlink())
	requireShmErr(t, seg.Unlink(), "unlink", name, shm.ErrNotExist)
	requireShmErr(t, shm.Remove(name), "unlink", name, shm.ErrNotExist)

	_, err = shm.Open(name, int64s(t, 1), shm.Dir(filepath.Join(t.TempDir(), "missing")))
	requireShmErr(t, err, "open", name, shm.ErrNotExist)
}

type pair struct{ A, B int32 }

func TestOpenMismatch(t *testing.T) {
	name := testproc.Name(t)
	seg, err := shm.Create(name, shm.Spec{Kind: shm.KindArray, Type: typeOf[int64](t), Len: 6, Shape: []uint64{2, 3}})
	require.NoError(t, err)
	defer seg.Close()

	for _, c := range []struct {
		what string
		spec shm.Spec
		want error
	}{
		{"kind", shm.Spec{Kind: shm.KindValue, Type: typeOf[int64](t), Len: 6}, shm.ErrKind},
		{"kind mutex", shm.Spec{Kind: shm.KindMutex}, shm.ErrKind},
		{"kind checked first", shm.Spec{Kind: shm.KindRaw, Type: typeOf[int32](t), Len: 1}, shm.ErrKind},
		{"type uint64", shm.Spec{Kind: shm.KindArray, Type: typeOf[uint64](t)}, shm.ErrTypeMismatch},
		{"type float64", shm.Spec{Kind: shm.KindArray, Type: typeOf[float64](t), Len: 6}, shm.ErrTypeMismatch},
		{"type int32", shm.Spec{Kind: shm.KindArray, Type: typeOf[int32](t), Len: 12}, shm.ErrTypeMismatch},
		{"type same size", shm.Spec{Kind: shm.KindArray, Type: typeOf[pair](t)}, shm.ErrTypeMismatch},
		{"type struct of int64", shm.Spec{Kind: shm.KindArray, Type: typeOf[struct{ V int64 }](t)}, shm.ErrTypeMismatch},
		{"type before len", shm.Spec{Kind: shm.KindArray, Type: typeOf[uint64](t), Len: 5}, shm.ErrTypeMismatch},
		{"len", shm.Spec{Kind: shm.KindArray, Type: typeOf[int64](t), Len: 5}, shm.ErrLenMismatch},
		{"len more", shm.Spec{Kind: shm.KindArray, Len: 7}, shm.ErrLenMismatch},
	} {
		t.Run(c.what, func(t *testing.T) {
			s, err := shm.Open(name, c.spec)
			noSegment(t, s)
			requireShmErr(t, err, "open", name, c.want)
		})
	}

	// Zero Type and Len accept anything; the segment reports what it is.
	s, err := shm.Open(name, shm.Spec{Kind: shm.KindArray})
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, shm.KindArray, s.Kind())
	assert.Equal(t, typeOf[int64](t), s.Type())
	assert.Equal(t, uint64(6), s.Len())
	assert.Equal(t, []uint64{2, 3}, s.Shape())
}

func TestCreateInvalidSpec(t *testing.T) {
	i64 := typeOf[int64](t)
	for _, c := range []struct {
		what string
		spec shm.Spec
	}{
		{"len 0", shm.Spec{Kind: shm.KindArray, Type: i64}},
		{"len overflows", shm.Spec{Kind: shm.KindArray, Type: i64, Len: 1 << 62}},
		{"len max", shm.Spec{Kind: shm.KindArray, Type: i64, Len: math.MaxUint64}},
		{"too large", shm.Spec{Kind: shm.KindArray, Type: i64, Len: 1 << 38}},
		{"shape short", shm.Spec{Kind: shm.KindArray, Type: i64, Len: 5, Shape: []uint64{2, 3}}},
		{"shape long", shm.Spec{Kind: shm.KindArray, Type: i64, Len: 5, Shape: []uint64{6}}},
		{"shape zero", shm.Spec{Kind: shm.KindArray, Type: i64, Len: 5, Shape: []uint64{0, 5}}},
		{"shape overflows", shm.Spec{Kind: shm.KindArray, Type: i64, Len: 1, Shape: []uint64{1 << 32, 1 << 32, 1}}},
		{"five dims", shm.Spec{Kind: shm.KindArray, Type: i64, Len: 5, Shape: []uint64{1, 1, 1, 1, 5}}},
		{"kind 0", shm.Spec{Type: i64, Len: 1}},
		{"kind past last", shm.Spec{Kind: shm.KindPipe + 1, Type: i64, Len: 1}},
		{"zero type", shm.Spec{Kind: shm.KindRaw, Len: 1}},
		{"align 0", shm.Spec{Kind: shm.KindRaw, Type: shm.Type{Size: 8}, Len: 1}},
		{"align 3", shm.Spec{Kind: shm.KindRaw, Type: shm.Type{Size: 6, Align: 3}, Len: 1}},
		{"size not multiple of align", shm.Spec{Kind: shm.KindRaw, Type: shm.Type{Size: 12, Align: 8}, Len: 1}},
		// Open refuses alignments above the header page (ErrCorrupt), so
		// Create must not write them.
		{"align above page", shm.Spec{Kind: shm.KindRaw, Type: shm.Type{Size: 8192, Align: 8192}, Len: 1}},
		{"data size too small", shm.Spec{Kind: shm.KindRaw, Type: i64, Len: 2, DataSize: 15}},
		{"data size too large", shm.Spec{Kind: shm.KindRaw, Type: i64, Len: 2, DataSize: 1 << 41}},
	} {
		t.Run(c.what, func(t *testing.T) {
			name := testproc.Name(t)
			seg, err := shm.Create(name, c.spec)
			noSegment(t, seg)
			requireShmErr(t, err, "create", name, shm.ErrInvalid)
			_, err = shm.Stat(name)
			assert.ErrorIs(t, err, shm.ErrNotExist, "nothing created")

			seg, err = shm.CreateAnonymous(c.spec)
			noSegment(t, seg)
			requireShmErr(t, err, "create", "", shm.ErrInvalid)
		})
	}
}

// image returns the bytes of a valid segment file holding 4 int64s, with
// an empty attach table.
func image(t *testing.T) []byte {
	t.Helper()
	seg, err := shm.CreateAnonymous(shm.Spec{Kind: shm.KindArray, Type: typeOf[int64](t), Len: 4})
	require.NoError(t, err)
	defer seg.Close()
	fi, err := seg.File().Stat()
	require.NoError(t, err)
	b := make([]byte, fi.Size())
	_, err = seg.File().ReadAt(b, 0)
	require.NoError(t, err)
	clear(b[512:4096])
	return b
}

// The documented offsets (LAYOUT.md), used to damage files on purpose.
const (
	offVersion  = 8
	offKind     = 12
	offFlags    = 16
	offElemSize = 40
	offChecksum = 256
	offReady    = 260
)

var le = binary.LittleEndian

// fixChecksum recomputes the header checksum as LAYOUT.md describes it.
func fixChecksum(b []byte) []byte {
	le.PutUint32(b[offChecksum:], crc32.Checksum(b[:offChecksum], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func writeSegFile(t *testing.T, path string, b []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

func TestCorruptFiles(t *testing.T) {
	img := image(t)
	require.Len(t, img, 4096+32)
	target := testproc.Name(t)
	seg, err := shm.Create(target, int64s(t, 4))
	require.NoError(t, err)
	require.NoError(t, seg.Close())
	targetPath := filepath.Join(shm.DefaultDir(), target)

	// The files that do not start with the magic: Remove refuses them.
	notSegments := map[string]bool{"bad magic": true, "not a segment": true, "empty file": true,
		"symlink": true, "dangling symlink": true, "directory": true, "fifo": true}
	for _, c := range []struct {
		what string
		make func(path string)
		want error
		msg  string // in Open's error
	}{
		{"bad magic", func(p string) {
			b := slices.Clone(img)
			b[0] = 'Y'
			writeSegFile(t, p, b)
		}, shm.ErrBadMagic, ""},
		{"not a segment", func(p string) {
			writeSegFile(t, p, []byte(strings.Repeat("hello, world\n", 1000)))
		}, shm.ErrBadMagic, ""},
		{"unknown version", func(p string) {
			b := slices.Clone(img)
			le.PutUint32(b[offVersion:], 3)
			writeSegFile(t, p, fixChecksum(b))
		}, shm.ErrVersion, "3"},
		{"layout version 1", func(p string) {
			b := slices.Clone(img)
			le.PutUint32(b[offVersion:], 1)
			writeSegFile(t, p, fixChecksum(b))
		}, shm.ErrVersion, "1"},
		{"bad checksum", func(p string) {
			b := slices.Clone(img)
			b[offElemSize] = 4
			writeSegFile(t, p, b)
		}, shm.ErrChecksum, ""},
		{"short file", func(p string) { writeSegFile(t, p, img[:4000]) }, shm.ErrTruncated, ""},
		{"magic only", func(p string) { writeSegFile(t, p, img[:8]) }, shm.ErrTruncated, ""},
		{"empty file", func(p string) { writeSegFile(t, p, nil) }, shm.ErrTruncated, ""},
		{"data truncated", func(p string) { writeSegFile(t, p, img[:len(img)-1]) }, shm.ErrBadSize, ""},
		{"header only", func(p string) { writeSegFile(t, p, img[:4096]) }, shm.ErrBadSize, ""},
		{"flags", func(p string) {
			b := slices.Clone(img)
			le.PutUint32(b[offFlags:], 1)
			writeSegFile(t, p, fixChecksum(b))
		}, shm.ErrCorrupt, "flags"},
		{"unknown kind", func(p string) {
			b := slices.Clone(img)
			le.PutUint32(b[offKind:], 99)
			writeSegFile(t, p, fixChecksum(b))
		}, shm.ErrCorrupt, "kind"},
		{"reserved", func(p string) {
			b := slices.Clone(img)
			b[400] = 1
			writeSegFile(t, p, b)
		}, shm.ErrCorrupt, "reserved"},
		{"not ready", func(p string) {
			b := slices.Clone(img)
			le.PutUint32(b[offReady:], 0)
			writeSegFile(t, p, b)
		}, shm.ErrNotReady, ""},
		{"symlink", func(p string) {
			require.NoError(t, os.Symlink(targetPath, p))
		}, shm.ErrBadMagic, "symbolic link"},
		{"dangling symlink", func(p string) {
			require.NoError(t, os.Symlink(targetPath+"-missing", p))
		}, shm.ErrBadMagic, "symbolic link"},
		{"directory", func(p string) {
			require.NoError(t, os.Mkdir(p, 0o700))
		}, shm.ErrBadMagic, "directory"},
		{"fifo", func(p string) {
			// Opening a FIFO for reading blocks until a writer comes:
			// Open and Stat must not.
			require.NoError(t, syscall.Mkfifo(p, 0o600))
		}, shm.ErrBadMagic, "not a regular file"},
	} {
		t.Run(c.what, func(t *testing.T) {
			name := testproc.Name(t)
			path := filepath.Join(shm.DefaultDir(), name)
			c.make(path)

			for _, spec := range []shm.Spec{int64s(t, 4), {Kind: shm.KindArray}, {Kind: shm.KindMutex}} {
				seg, err := shm.Open(name, spec)
				noSegment(t, seg)
				requireShmErr(t, err, "open", name, c.want)
				assert.Contains(t, err.Error(), c.msg)
			}
			_, err := shm.Stat(name)
			requireShmErr(t, err, "stat", name, c.want)

			// A bad file is never replaced by Create...
			_, err = shm.Create(name, int64s(t, 4))
			requireShmErr(t, err, "create", name, shm.ErrExist)
			// ...and Remove takes it only if it starts with the magic (a
			// damaged segment): other files are left alone.
			if notSegments[c.what] {
				requireShmErr(t, shm.Remove(name), "unlink", name, shm.ErrBadMagic)
				_, err := os.Lstat(path)
				require.NoError(t, err, "left alone")
			} else {
				require.NoError(t, shm.Remove(name))
			}
		})
	}

	// The symlinks' target was not touched.
	s, err := shm.Open(target, int64s(t, 4))
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

func TestOpenFileErrors(t *testing.T) {
	f, err := os.CreateTemp(shm.DefaultDir(), "xproc-openfile-")
	require.NoError(t, err)
	defer os.Remove(f.Name())
	defer f.Close()
	_, err = f.Write(make([]byte, 5000))
	require.NoError(t, err)
	seg, err := shm.OpenFile(f, int64s(t, 1))
	noSegment(t, seg)
	requireShmErr(t, err, "open", f.Name(), shm.ErrBadMagic)

	img := image(t)
	_, err = f.WriteAt(img[:4096], 0)
	require.NoError(t, err)
	_, err = shm.OpenFile(f, int64s(t, 1))
	requireShmErr(t, err, "open", f.Name(), shm.ErrLenMismatch)
	require.NoError(t, f.Truncate(4096+31))
	_, err = shm.OpenFile(f, int64s(t, 4))
	requireShmErr(t, err, "open", f.Name(), shm.ErrBadSize)
	require.NoError(t, f.Truncate(int64(len(img))))
	seg, err = shm.OpenFile(f, int64s(t, 4))
	require.NoError(t, err)
	assert.Equal(t, "", seg.Name(), "OpenFile gives no name")
	require.NoError(t, seg.Close())
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	opt := shm.Dir(dir)
	img := image(t)

	good, err := shm.Create("good", shm.Spec{Kind: shm.KindValue, Type: typeOf[pair](t), Len: 1}, opt)
	require.NoError(t, err)
	defer good.Close()
	second, err := shm.Create("a-second", int64s(t, 3), opt)
	require.NoError(t, err)
	defer second.Close()

	bad := slices.Clone(img)
	bad[offElemSize] = 4
	writeSegFile(t, filepath.Join(dir, "bad"), bad)
	notReady := slices.Clone(img)
	le.PutUint32(notReady[offReady:], 0)
	writeSegFile(t, filepath.Join(dir, "not-ready"), notReady)
	// Skipped: no magic, too short, hidden or invalid names, not regular.
	writeSegFile(t, filepath.Join(dir, "text"), []byte(strings.Repeat("not a segment\n", 1000)))
	writeSegFile(t, filepath.Join(dir, "tiny"), []byte("hi"))
	writeSegFile(t, filepath.Join(dir, "empty"), nil)
	writeSegFile(t, filepath.Join(dir, ".hidden"), img)
	writeSegFile(t, filepath.Join(dir, "bad name"), img)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "adir"), 0o700))
	require.NoError(t, os.Symlink(filepath.Join(dir, "good"), filepath.Join(dir, "link")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600))

	infos, err := shm.List(opt)
	require.NoError(t, err)
	var names []string
	byName := map[string]shm.Info{}
	for _, i := range infos {
		names = append(names, i.Name)
		byName[i.Name] = i
	}
	assert.Equal(t, []string{"a-second", "bad", "good", "not-ready"}, names, "sorted, non-segments skipped")

	g := byName["good"]
	assert.NoError(t, g.Err)
	assert.Equal(t, filepath.Join(dir, "good"), g.Path)
	assert.Equal(t, shm.KindValue, g.Kind)
	assert.Equal(t, "shm_test.pair", g.Type)
	assert.Equal(t, uint64(8), g.ElemSize)
	assert.Equal(t, uint64(1), g.Len)
	assert.Equal(t, os.Getpid(), g.Creator)
	assert.True(t, g.CreatorAlive)
	assert.Equal(t, []int{os.Getpid()}, g.Attached)

	assert.ErrorIs(t, byName["bad"].Err, shm.ErrChecksum)
	assert.NotErrorIs(t, byName["bad"].Err, shm.ErrBadMagic)
	assert.Equal(t, filepath.Join(dir, "bad"), byName["bad"].Path)
	assert.ErrorIs(t, byName["not-ready"].Err, shm.ErrNotReady)

	// A missing directory is named as the segment directory, and matches
	// fs.ErrNotExist, but no segment is said not to exist.
	_, err = shm.List(shm.Dir(filepath.Join(dir, "missing")))
	requireShmErr(t, err, "list", filepath.Join(dir, "missing"), nil)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.Equal(t, "shm: list "+filepath.Join(dir, "missing")+": segment directory: no such file or directory", err.Error())
}

func TestStatAndInfo(t *testing.T) {
	name := testproc.Name(t)
	before := time.Now()
	seg, err := shm.Create(name, shm.Spec{
		Kind: shm.KindArray, Type: typeOf[int64](t), Len: 6, Shape: []uint64{2, 3},
		DataSize: 100, Params: [shm.MaxParams]uint64{7},
	})
	require.NoError(t, err)
	after := time.Now()
	defer seg.Close()

	info, err := shm.Stat(name)
	require.NoError(t, err)
	assert.Equal(t, name, info.Name)
	assert.Equal(t, filepath.Join(shm.DefaultDir(), name), info.Path)
	assert.Equal(t, shm.KindArray, info.Kind)
	assert.Equal(t, "int64", info.Type)
	assert.Equal(t, uint64(8), info.ElemSize)
	assert.Equal(t, uint64(6), info.Len)
	assert.Equal(t, []uint64{2, 3}, info.Shape)
	assert.Equal(t, uint64(100), info.DataSize)
	assert.Equal(t, int64(4096+100), info.FileSize)
	assert.False(t, info.Created.Before(before), "created %v, before %v", info.Created, before)
	assert.False(t, info.Created.After(after), "created %v, after %v", info.Created, after)
	assert.Equal(t, os.Getpid(), info.Creator)
	assert.True(t, info.CreatorAlive)
	assert.Equal(t, []int{os.Getpid()}, info.Attached)
	assert.Empty(t, info.Dead)
	assert.NoError(t, info.Err)
	assert.Equal(t, [shm.MaxParams]uint64{7}, seg.Params())

	// Segment.Info agrees (it reads the live attach table).
	si := seg.Info()
	assert.Equal(t, info.Attached, si.Attached)
	assert.Equal(t, info.Kind, si.Kind)
	assert.Equal(t, info.Type, si.Type)
	assert.Equal(t, info.Created, si.Created)
	assert.Equal(t, info.FileSize, si.FileSize)
}

// TestAttachedProcesses: the attach table shows every process that has
// the segment mapped, and which of them died without closing it.
func TestAttachedProcesses(t *testing.T) {
	name := testproc.Name(t)
	seg, err := shm.Create(name, int64s(t, 2))
	require.NoError(t, err)
	defer seg.Close()
	me := os.Getpid()

	stat := func() shm.Info {
		t.Helper()
		info, err := shm.Stat(name)
		require.NoError(t, err)
		return info
	}

	polite := testproc.Start(t, "shm-attach", name)
	polite.Expect("attached")
	info := stat()
	assert.ElementsMatch(t, []int{me, polite.Pid()}, info.Attached)
	assert.Empty(t, info.Dead)
	assert.ElementsMatch(t, info.Attached, seg.Info().Attached)

	killed := testproc.Start(t, "shm-attach", name)
	killed.Expect("attached")
	assert.ElementsMatch(t, []int{me, polite.Pid(), killed.Pid()}, stat().Attached)

	// SIGKILL: the child cannot detach. Unreaped, it is a zombie.
	killed.Kill()
	info = stat()
	assert.ElementsMatch(t, []int{me, polite.Pid(), killed.Pid()}, info.Attached)
	assert.Equal(t, []int{killed.Pid()}, info.Dead)
	assert.Equal(t, []int{killed.Pid()}, seg.Info().Dead)
	killed.WaitKilled()
	info = stat()
	assert.Equal(t, []int{killed.Pid()}, info.Dead, "reaped: still dead")
	assert.True(t, info.CreatorAlive)

	// Close detaches.
	polite.Send("close")
	polite.Expect("closed")
	info = stat()
	assert.ElementsMatch(t, []int{me, killed.Pid()}, info.Attached)
	assert.Equal(t, []int{killed.Pid()}, info.Dead)
	polite.Send("exit")
	polite.Wait()
}

// TestNamedSegmentFromChild: a segment a child creates and writes is
// seen by the parent, and the parent's writes by the child.
func TestNamedSegmentFromChild(t *testing.T) {
	name := testproc.Name(t)
	c := testproc.Start(t, "shm-create-write", name, "8")
	c.Expect("created")

	seg, err := shm.Open(name, int64s(t, 8))
	require.NoError(t, err)
	defer seg.Close()
	info := seg.Info()
	assert.Equal(t, c.Pid(), info.Creator)
	assert.True(t, info.CreatorAlive)
	assert.ElementsMatch(t, []int{c.Pid(), os.Getpid()}, info.Attached)
	s := mustSlice(t, seg)
	for i := range s {
		require.Equal(t, int64(i*7+1), s[i], "element %d", i)
		s[i] = -s[i]
	}
	c.Send("check")
	c.Wait()

	info, err = shm.Stat(name)
	require.NoError(t, err)
	assert.Equal(t, c.Pid(), info.Creator)
	assert.False(t, info.CreatorAlive, "the creator exited")
	assert.Equal(t, []int{os.Getpid()}, info.Attached, "the creator closed it")
	assert.Empty(t, info.Dead)
}

// TestNamedSegmentToChild: a segment the parent creates and writes is
// seen by a child, and the child's writes by the parent.
func TestNamedSegmentToChild(t *testing.T) {
	name := testproc.Name(t)
	seg, err := shm.Create(name, shm.Spec{
		Kind: shm.KindArray, Type: typeOf[int64](t), Len: 8,
		Init: func(s *shm.Segment) error {
			v, err := shm.Slice[int64](s, 0, 8)
			for i := range v {
				v[i] = int64(100 + i)
			}
			return err
		},
	})
	require.NoError(t, err)
	defer seg.Close()
	testproc.Start(t, "shm-open-check", name).Wait()
	for i, v := range mustSlice(t, seg) {
		assert.Equal(t, int64(200+i), v, "element %d", i)
	}
}

func TestAnonymousSegmentInChild(t *testing.T) {
	const n = 16
	seg, err := shm.CreateAnonymous(int64s(t, n))
	require.NoError(t, err)
	defer seg.Close()
	assert.Equal(t, "", seg.Name())
	assert.Equal(t, "", seg.Path())
	assert.NoError(t, seg.Unlink(), "a no-op")
	require.NotNil(t, seg.File())
	s := mustSlice(t, seg)
	for i := range s {
		s[i] = int64(i * i)
	}

	c := testproc.StartCmd(t, "shm-anon", func(cmd *exec.Cmd) {
		cmd.ExtraFiles = []*os.File{seg.File()}
	}, strconv.Itoa(n))
	c.Expect("written")
	for i := range s {
		assert.Equal(t, -int64(i), s[i], "element %d", i)
	}
	info := seg.Info()
	assert.Equal(t, "", info.Name)
	assert.ElementsMatch(t, []int{os.Getpid(), c.Pid()}, info.Attached)
	c.Send("exit")
	c.Wait()
	assert.Equal(t, []int{os.Getpid()}, seg.Info().Attached)
}

// TestUnlinkWhileMapped: unlinking removes the name only; a child that
// has the segment mapped keeps sharing memory with the parent.
func TestUnlinkWhileMapped(t *testing.T) {
	name := testproc.Name(t)
	seg, err := shm.Create(name, int64s(t, 2))
	require.NoError(t, err)
	defer seg.Close()
	c := testproc.Start(t, "shm-unlink", name)
	c.Expect("opened")
	require.NoError(t, seg.Unlink())
	_, err = shm.Stat(name)
	requireShmErr(t, err, "stat", name, shm.ErrNotExist)
	s := mustSlice(t, seg)
	s[0] = 42
	c.Send("unlinked")
	c.Expect("written")
	assert.Equal(t, int64(43), s[1])
	c.Wait()

	// The name is free again.
	seg2, err := shm.Create(name, int64s(t, 2))
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 0}, mustSlice(t, seg2), "a new segment, not the unlinked one")
	require.NoError(t, seg2.Close())
}

func TestCloseIdempotent(t *testing.T) {
	seg, err := shm.Create(testproc.Name(t), int64s(t, 1))
	require.NoError(t, err)
	require.NoError(t, seg.Close())
	require.NoError(t, seg.Close())
	require.NoError(t, seg.Unlink(), "unlink after close works: it is about the name")

	// Memory fetched after Close is refused, not handed out unmapped.
	assert.True(t, seg.Closed())
	assert.Nil(t, seg.Data())
	_, err = shm.View[int64](seg, 0)
	assert.ErrorIs(t, err, shm.ErrClosed)
	_, err = shm.Slice[int64](seg, 0, 1)
	assert.ErrorIs(t, err, shm.ErrClosed)

	anon, err := shm.CreateAnonymous(int64s(t, 1))
	require.NoError(t, err)
	f := anon.File()
	require.NoError(t, anon.Close())
	require.NoError(t, anon.Close())
	assert.ErrorIs(t, f.Close(), os.ErrClosed, "Close closed the file")

	// Closing detaches: a new mapping finds only itself.
	name := testproc.Name(t)
	a, err := shm.Create(name, int64s(t, 1))
	require.NoError(t, err)
	b, err := shm.Open(name, int64s(t, 1))
	require.NoError(t, err)
	require.Len(t, a.Info().Attached, 2)
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	assert.Equal(t, []int{os.Getpid()}, a.Info().Attached)
	require.NoError(t, a.Close())
}

func TestDataSize(t *testing.T) {
	for _, c := range []struct {
		spec shm.Spec
		want int
	}{
		{int64s(t, 1), 8},
		{int64s(t, 5), 40},
		{shm.Spec{Kind: shm.KindRaw, Type: typeOf[[3]byte](t), Len: 7}, 21},
		{shm.Spec{Kind: shm.KindRaw, Type: typeOf[int64](t), Len: 2, DataSize: 100}, 100},
		{shm.Spec{Kind: shm.KindRaw, Type: typeOf[int64](t), Len: 2, DataSize: 16}, 16},
		{int64s(t, 1000), 8000},
	} {
		seg, err := shm.CreateAnonymous(c.spec)
		require.NoError(t, err)
		assert.Len(t, seg.Data(), c.want)
		assert.Equal(t, c.want, cap(seg.Data()), "no access past the data area")
		ty := c.spec.Type
		if c.spec.DataSize == 0 {
			assert.Equal(t, int(c.spec.Len*ty.Size), len(seg.Data()))
		}
		fi, err := seg.File().Stat()
		require.NoError(t, err)
		assert.Equal(t, int64(4096+c.want), fi.Size())
		require.NoError(t, seg.Close())
	}
}

func TestViewAndSlice(t *testing.T) {
	seg, err := shm.CreateAnonymous(int64s(t, 5)) // 40 data bytes
	require.NoError(t, err)
	defer seg.Close()

	p, err := shm.View[int64](seg, 32)
	require.NoError(t, err)
	*p = 99
	q, err := shm.View[int32](seg, 36)
	require.NoError(t, err)
	*q = -1
	b, err := shm.View[byte](seg, 39)
	require.NoError(t, err)
	assert.Equal(t, byte(0xff), *b)
	s, err := shm.Slice[int64](seg, 0, 5)
	require.NoError(t, err)
	assert.Equal(t, int64(99|-1<<32), s[4])
	assert.Equal(t, byte(99), seg.Data()[32])
	arr, err := shm.View[[5]int64](seg, 0)
	require.NoError(t, err)
	assert.Equal(t, s[4], arr[4])
	empty, err := shm.Slice[int64](seg, 40, 0)
	require.NoError(t, err)
	assert.Empty(t, empty)
	halves, err := shm.Slice[int32](seg, 4, 9)
	require.NoError(t, err)
	assert.Len(t, halves, 9)

	for what, err := range map[string]error{
		"view misaligned":         viewErr[int64](seg, 4),
		"view misaligned int32":   viewErr[int32](seg, 2),
		"view at end":             viewErr[int64](seg, 40),
		"view past end":           viewErr[int64](seg, 48),
		"view straddles end":      viewErr[[2]int64](seg, 32),
		"view too big":            viewErr[[6]int64](seg, 0),
		"view huge offset":        viewErr[int64](seg, math.MaxUint64-7),
		"view byte at end":        viewErr[byte](seg, 40),
		"slice too many":          sliceErr[int64](seg, 0, 6),
		"slice from offset":       sliceErr[int64](seg, 8, 5),
		"slice misaligned":        sliceErr[int64](seg, 4, 1),
		"slice huge n":            sliceErr[int64](seg, 0, math.MaxUint64),
		"slice huge n at offset":  sliceErr[int64](seg, 8, math.MaxUint64/4),
		"slice huge offset":       sliceErr[int64](seg, math.MaxUint64-7, 1),
		"slice empty misaligned":  sliceErr[int64](seg, 4, 0),
		"slice empty past end":    sliceErr[int64](seg, 48, 0),
		"slice bytes past end":    sliceErr[byte](seg, 41, 0),
		"slice bytes one too far": sliceErr[byte](seg, 1, 40),
	} {
		assert.ErrorIs(t, err, shm.ErrInvalid, what)
		assert.NotErrorIs(t, err, shm.ErrUnsupportedType, what)
	}
	for what, err := range map[string]error{
		"view string":          viewErr[string](seg, 0),
		"view pointer":         viewErr[*int64](seg, 0),
		"view slice":           viewErr[[]int64](seg, 0),
		"view map":             viewErr[map[int]int](seg, 0),
		"view interface":       viewErr[any](seg, 0),
		"view empty struct":    viewErr[struct{}](seg, 0),
		"view struct with ptr": viewErr[struct{ A, B *int32 }](seg, 0),
		"slice string":         sliceErr[string](seg, 0, 1),
		"slice pointer":        sliceErr[*int64](seg, 0, 1),
		"slice zero size":      sliceErr[[0]int64](seg, 0, 1),
		"slice zero size, n=0": sliceErr[struct{}](seg, 0, 0),
		"slice func":           sliceErr[func()](seg, 0, 1),
	} {
		assert.ErrorIs(t, err, shm.ErrUnsupportedType, what)
		assert.NotErrorIs(t, err, shm.ErrInvalid, what)
	}
}

func viewErr[T any](s *shm.Segment, off uint64) error {
	p, err := shm.View[T](s, off)
	if p != nil {
		return errors.New("got a pointer with an error")
	}
	return err
}

func sliceErr[T any](s *shm.Segment, off, n uint64) error {
	v, err := shm.Slice[T](s, off, n)
	if v != nil {
		return errors.New("got a slice with an error")
	}
	return err
}

func TestOptions(t *testing.T) {
	// Dir: any directory, here one on the test's temporary file system.
	dir := t.TempDir()
	name := testproc.Name(t)
	seg, err := shm.Create(name, int64s(t, 2), shm.Dir(dir))
	require.NoError(t, err)
	defer seg.Close()
	assert.Equal(t, filepath.Join(dir, name), seg.Path())
	_, err = shm.Stat(name)
	assert.ErrorIs(t, err, shm.ErrNotExist, "not in the default directory")
	fi, err := os.Stat(seg.Path())
	require.NoError(t, err)
	assert.Zero(t, fi.Mode().Perm()&0o077, "0600 by default: %v", fi.Mode())
	p, err := shm.Path(name, shm.Dir(dir))
	require.NoError(t, err)
	assert.Equal(t, seg.Path(), p)
	mustSlice(t, seg)[1] = 5
	seg2, err := shm.Open(name, int64s(t, 2), shm.Dir(dir))
	require.NoError(t, err)
	assert.Equal(t, int64(5), mustSlice(t, seg2)[1])
	require.NoError(t, seg2.Close())

	// Perm.
	name2 := testproc.Name(t)
	seg3, err := shm.Create(name2, int64s(t, 1), shm.Perm(0o640))
	require.NoError(t, err)
	defer seg3.Close()
	fi, err = os.Stat(seg3.Path())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640)&^umask(), fi.Mode().Perm())

	// XPROC_SHM_DIR decides the default directory.
	t.Setenv(shm.DirEnv, dir)
	assert.Equal(t, dir, shm.DefaultDir())
	info, err := shm.Stat(name)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, name), info.Path)
	t.Setenv(shm.DirEnv, "")
	assert.Equal(t, "/dev/shm", shm.DefaultDir())
}

func umask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

func TestErrorMessage(t *testing.T) {
	err := &shm.Error{Op: "open", Name: "x", Err: shm.ErrKind}
	assert.Equal(t, "shm: open x: "+shm.ErrKind.Error(), err.Error())
	assert.Equal(t, "shm: create (anonymous): boom", (&shm.Error{Op: "create", Err: errors.New("boom")}).Error())
	assert.ErrorIs(t, err, shm.ErrKind)
}

// TestStaleForeignCreator: a segment made in another PID namespace (a
// container sharing the directory) is never stale by default, its creator
// possibly running; with the Foreign option Sweep removes it once nobody
// maps it, and not while its creator maps it.
func TestStaleForeignCreator(t *testing.T) {
	name := testproc.Name(t)
	c := testproc.StartInPIDNamespace(t, "shm-create-wait", name)
	c.Expect("created")
	info, err := shm.Stat(name)
	require.NoError(t, err)
	assert.True(t, info.CreatorForeign)
	assert.True(t, info.InUse)
	assert.False(t, info.Unused(), "its creator maps it")
	removed, err := shm.RemoveStale(name, shm.Foreign())
	require.NoError(t, err)
	assert.False(t, removed)

	c.Send("exit")
	c.Wait()
	info, err = shm.Stat(name)
	require.NoError(t, err)
	assert.True(t, info.CreatorForeign)
	assert.False(t, info.InUse)
	assert.False(t, info.Stale(), "by default a foreign creator may be running")
	assert.True(t, info.Unused())
	swept, err := shm.Sweep()
	require.NoError(t, err)
	assert.NotContains(t, swept, name)
	swept, err = shm.Sweep(shm.Foreign())
	require.NoError(t, err)
	assert.Contains(t, swept, name)
	_, err = shm.Stat(name)
	assert.ErrorIs(t, err, shm.ErrNotExist)
}
