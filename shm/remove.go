package shm

import (
	"fmt"
	"io"
	"os"

	"github.com/xproc-go/xproc/internal/layout"
	"github.com/xproc-go/xproc/internal/owner"
)

// Remove unlinks the named segment. Processes that have it mapped keep
// their mappings; the memory is freed when the last one is closed.
//
// Remove refuses, with ErrBadMagic, to remove a file that is not a
// segment: one that does not start with the segment magic, or is not a
// regular file (a directory, a symbolic link, a FIFO). A damaged segment
// (right magic, failing validation, as List reports it) is removed.
func Remove(name string, opts ...Option) error {
	_, err := RemoveIf(name, func(Info) bool { return true }, opts...)
	return err
}

// RemoveIf removes the named segment if cond, given the segment's Info,
// returns true, and reports whether it removed it. The Info is read from
// the header of the very file that is then unlinked: if the name comes to
// refer to another file in between, that file is judged afresh, so cond
// never decides for one file and another goes. For a damaged segment
// cond gets an Info with Err set (see List); files that are not segments
// are refused as by Remove.
//
// RemoveIf judges while holding the segment against new attachments
// (owner.Exclude, where the file can be opened for writing): a process
// that opens the segment at the same moment either is attached before,
// and so counted in Info.InUse, or waits and then finds the segment gone
// (ErrNotExist). So RemoveIf(name, shm.Info.Stale), which is RemoveStale,
// never removes a segment in use.
func RemoveIf(name string, cond func(Info) bool, opts ...Option) (bool, error) {
	fail := func(err error) (bool, error) { return false, &Error{Op: "unlink", Name: name, Err: err} }
	path, err := segmentPath(name, opts)
	if err != nil {
		return fail(err)
	}
	o := getOptions(opts)
	for range maxRemoveTries {
		removed, changed, err := removeIfOnce(name, path, cond)
		switch {
		case err != nil:
			return fail(o.dirErr(err, true))
		case !changed:
			return removed, nil
		}
	}
	return fail(fmt.Errorf("the file at the name changed %d times while being judged; nothing removed", maxRemoveTries))
}

// maxRemoveTries bounds RemoveIf's attempts when the file at the name
// keeps being replaced.
const maxRemoveTries = 8

// removeIfOnce is one attempt of RemoveIf. It reports changed if the
// name no longer referred to the file it judged, and removed nothing.
func removeIfOnce(name, path string, cond func(Info) bool) (removed, changed bool, err error) {
	f, err := openNoFollow(path, os.O_RDWR)
	if err != nil {
		// Without write access there is no exclusion, only the judgment.
		if f, err = openNoFollow(path, os.O_RDONLY); err != nil {
			return false, false, err
		}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, false, err
	}
	if !fi.Mode().IsRegular() {
		return false, false, fmt.Errorf("%w: %s is %s, not a segment; it was left alone", ErrBadMagic, displayName(path), describeType(fi.Mode()))
	}
	magic := make([]byte, len(layout.Magic))
	if n, err := f.ReadAt(magic, 0); err != nil && err != io.EOF {
		return false, false, err
	} else if n < len(magic) || string(magic) != layout.Magic {
		return false, false, fmt.Errorf("%w: %s is not a segment; it was left alone", ErrBadMagic, displayName(path))
	}
	// Held until f is closed, after the unlink. If processes have it
	// mapped, the exclusion fails, and Info.InUse says so.
	owner.Exclude(f)
	info, err := statOpen(name, path, f)
	if err != nil {
		info = Info{Name: name, Path: path, Err: err}
	}
	if !cond(info) {
		return false, false, nil
	}
	return unlinkIfSame(path, fi)
}

// describeType names the type of a file that is not a regular file.
func describeType(m os.FileMode) string {
	switch {
	case m&os.ModeDir != 0:
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}
