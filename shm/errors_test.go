//go:build linux

package shm_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
)

// nobody is the user and group a child drops to when the tests run as
// root, whom file permissions do not stop.
const nobody = 65534

func init() {
	// Opens name in dir (args[0], args[1]) as a user the segment's
	// permissions shut out, and checks that the error says so in both
	// vocabularies.
	testproc.Register("shm-open-denied", func(args []string) error {
		if os.Geteuid() == 0 {
			if err := syscall.Setgroups(nil); err != nil {
				return err
			}
			if err := syscall.Setgid(nobody); err != nil {
				return err
			}
			if err := syscall.Setuid(nobody); err != nil {
				return err
			}
		}
		seg, err := shm.Open(args[1], int64sSpec(), shm.Dir(args[0]))
		if err == nil {
			seg.Close()
			return errors.New("opened a segment its permissions shut this user out of")
		}
		var se *shm.Error
		switch {
		case !errors.Is(err, fs.ErrPermission), !errors.Is(err, syscall.EACCES):
			return errors.New("not fs.ErrPermission and EACCES: " + err.Error())
		case !errors.As(err, &se) || se.Op != "open" || se.Name != args[1]:
			return errors.New("not an *shm.Error for open " + args[1] + ": " + err.Error())
		case errors.Is(err, shm.ErrNotExist), errors.Is(err, fs.ErrNotExist):
			return errors.New("a refused segment is said not to exist: " + err.Error())
		}
		return nil
	})
}

func int64sSpec() shm.Spec {
	ty, err := shm.TypeOf[int64]()
	if err != nil {
		panic(err)
	}
	return shm.Spec{Kind: shm.KindArray, Type: ty, Len: 1}
}

// TestFSErrors: code written for files works on segments: the io/fs
// sentinels match beside the package's own.
func TestFSErrors(t *testing.T) {
	name := testproc.Name(t)
	spec := int64sSpec()

	_, err := shm.Open(name, spec)
	requireShmErr(t, err, "open", name, shm.ErrNotExist)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorIs(t, err, syscall.ENOENT, "the system's error stays in the chain")
	_, err = shm.Stat(name)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	err = shm.Remove(name)
	assert.ErrorIs(t, err, fs.ErrNotExist)

	seg, err := shm.Create(name, spec)
	require.NoError(t, err)
	_, err = shm.Create(name, spec)
	requireShmErr(t, err, "create", name, shm.ErrExist)
	assert.ErrorIs(t, err, fs.ErrExist)
	assert.NotErrorIs(t, err, fs.ErrNotExist)
	var pe *fs.PathError
	assert.False(t, errors.As(err, &pe) && pe.Path != "", "no temporary path leaks into the error: %v", err)

	require.NoError(t, seg.Close())
	_, err = shm.View[int64](seg, 0)
	assert.ErrorIs(t, err, shm.ErrClosed)
	assert.ErrorIs(t, err, fs.ErrClosed)
	assert.ErrorIs(t, err, os.ErrClosed)

	// The sentinels match their io/fs counterparts and nothing else.
	assert.ErrorIs(t, shm.ErrExist, fs.ErrExist)
	assert.ErrorIs(t, shm.ErrNotExist, fs.ErrNotExist)
	assert.ErrorIs(t, shm.ErrClosed, fs.ErrClosed)
	assert.NotErrorIs(t, shm.ErrExist, fs.ErrNotExist)
	assert.NotErrorIs(t, shm.ErrNotExist, shm.ErrExist)
	assert.NotErrorIs(t, fs.ErrNotExist, shm.ErrNotExist, "the reverse does not hold: an os error is not about a segment")
	require.NoError(t, shm.Remove(name))
}

// TestPermissionError: another user, shut out by the segment's mode,
// gets fs.ErrPermission, in a process of its own.
func TestPermissionError(t *testing.T) {
	dir, err := os.MkdirTemp(shm.DefaultDir(), "perm-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	require.NoError(t, os.Chmod(dir, 0o711), "others may look up names, not list them")
	perm := os.FileMode(0o600) // shuts out the user the child drops to
	if os.Geteuid() != 0 {
		perm = 0 // shuts out the child, who is this user
	}
	seg, err := shm.Create("denied", int64sSpec(), shm.Dir(dir), shm.Perm(perm))
	require.NoError(t, err)
	defer seg.Close()
	testproc.Start(t, "shm-open-denied", dir, "denied").Wait()
}

// TestMissingDirectory: a segment directory that is missing, or is not a
// directory, is named in the error, with the variable that chose it.
func TestMissingDirectory(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "missing")
	file := filepath.Join(base, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	spec := int64sSpec()

	check := func(t *testing.T, dir, cause, from string, opts ...shm.Option) {
		t.Helper()
		dirMsg := "segment directory " + dir + from + ": " + cause

		_, err := shm.Create("seg", spec, opts...)
		requireShmErr(t, err, "create", "seg", nil) // no segment is missing
		assert.Equal(t, "shm: create seg: "+dirMsg, err.Error())

		_, err = shm.Open("seg", spec, opts...)
		requireShmErr(t, err, "open", "seg", shm.ErrNotExist)
		assert.Equal(t, "shm: open seg: "+dirMsg+", so the segment does not exist", err.Error(), "the directory first: it is what is wrong")
		_, err = shm.Stat("seg", opts...)
		requireShmErr(t, err, "stat", "seg", shm.ErrNotExist)
		assert.Contains(t, err.Error(), dirMsg)
		err = shm.Remove("seg", opts...)
		requireShmErr(t, err, "unlink", "seg", shm.ErrNotExist)
		assert.Contains(t, err.Error(), dirMsg)

		_, err = shm.List(opts...)
		requireShmErr(t, err, "list", dir, nil)
		assert.Equal(t, "shm: list "+dir+": segment directory"+from+": "+cause, err.Error())
	}
	t.Run("option", func(t *testing.T) {
		check(t, missing, "no such file or directory", "", shm.Dir(missing))
		_, err := shm.Create("seg", spec, shm.Dir(missing))
		assert.ErrorIs(t, err, fs.ErrNotExist)
		check(t, file, "not a directory", "", shm.Dir(file))
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(shm.DirEnv, missing)
		check(t, missing, "no such file or directory", " (from $XPROC_SHM_DIR)")
		t.Setenv(shm.DirEnv, file)
		check(t, file, "not a directory", " (from $XPROC_SHM_DIR)")
	})
	t.Run("present", func(t *testing.T) {
		// With the directory there, the segment is what is missing.
		_, err := shm.Open("seg", spec, shm.Dir(base))
		requireShmErr(t, err, "open", "seg", shm.ErrNotExist)
		assert.NotContains(t, err.Error(), "segment directory")
	})
}

// TestMessages: messages are English, and show a name as it is.
func TestMessages(t *testing.T) {
	for name, want := range map[string]string{
		"café":     `'é' (U+00E9) at offset 3`,
		"a\xffb":   `byte 0xff at offset 1`,
		"a b":      `' ' at offset 1`,
		"a\nb":     `'\n' at offset 1`,
		"-x":       `starts with '-'`,
		".x":       `starts with '.'`,
		"日本":       `'日' (U+65E5) at offset 0`,
		"ok\x00no": `'\x00' at offset 2`,
	} {
		err := shm.ValidName(name)
		require.ErrorIs(t, err, shm.ErrInvalidName, "%q", name)
		assert.Contains(t, err.Error(), want, "%q", name)
	}

	// A name that would garble the message is quoted; a printable one is not.
	_, err := shm.Create("a\nb\xff", int64sSpec())
	assert.True(t, strings.HasPrefix(err.Error(), `shm: create "a\nb\xff": `), err.Error())
	assert.NotContains(t, err.Error(), "\n")
	_, err = shm.Create("café", int64sSpec())
	assert.True(t, strings.HasPrefix(err.Error(), `shm: create café: `), err.Error())

	// Kinds take the right article.
	name := testproc.Name(t)
	seg, err := shm.Create(name, int64sSpec())
	require.NoError(t, err)
	defer seg.Close()
	_, err = shm.Open(name, shm.Spec{Kind: shm.KindEvent})
	assert.Contains(t, err.Error(), "holds an array, want an event")
	_, err = shm.Open(name, shm.Spec{Kind: shm.KindReentrantMutex})
	assert.Contains(t, err.Error(), "holds an array, want a reentrant mutex")

	type withInterface struct{ V any }
	_, err = shm.TypeOf[withInterface]()
	assert.Contains(t, err.Error(), "is an interface")
	_, err = shm.TypeOf[*int]()
	assert.Contains(t, err.Error(), "is a pointer")
}

// TestRemoveIf: the file judged is the file removed, and files that are
// not segments are never removed.
func TestRemoveIf(t *testing.T) {
	dir := t.TempDir()
	opt := shm.Dir(dir)
	spec := int64sSpec()
	seg, err := shm.Create("a", spec, opt)
	require.NoError(t, err)
	require.NoError(t, seg.Close())

	removed, err := shm.RemoveIf("a", func(shm.Info) bool { return false }, opt)
	require.NoError(t, err)
	assert.False(t, removed)
	_, err = shm.Stat("a", opt)
	require.NoError(t, err, "still there")

	// The name comes to refer to another segment while cond decides:
	// the other one is judged afresh, and kept since cond refuses it.
	other, err := shm.Create("b", spec, opt)
	require.NoError(t, err)
	defer other.Close()
	var judged []int64
	removed, err = shm.RemoveIf("a", func(in shm.Info) bool {
		judged = append(judged, in.Created.UnixNano())
		if len(judged) == 1 {
			require.NoError(t, os.Rename(filepath.Join(dir, "b"), filepath.Join(dir, "a")))
			return true
		}
		return false
	}, opt)
	require.NoError(t, err)
	assert.False(t, removed, "the replacement was refused")
	require.Len(t, judged, 2)
	in, err := shm.Stat("a", opt)
	require.NoError(t, err)
	assert.Equal(t, in.Created.UnixNano(), judged[1], "the replacement is what stays")

	removed, err = shm.RemoveIf("a", func(shm.Info) bool { return true }, opt)
	require.NoError(t, err)
	assert.True(t, removed)
	_, err = shm.Stat("a", opt)
	assert.ErrorIs(t, err, shm.ErrNotExist)

	// Not a segment: refused, whatever cond says; cond is not asked.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes"), []byte("not a segment"), 0o600))
	removed, err = shm.RemoveIf("notes", func(shm.Info) bool { t.Error("cond asked"); return true }, opt)
	requireShmErr(t, err, "unlink", "notes", shm.ErrBadMagic)
	assert.False(t, removed)
	assert.Contains(t, err.Error(), "is not a segment; it was left alone")
	_, err = os.Stat(filepath.Join(dir, "notes"))
	assert.NoError(t, err)
}
