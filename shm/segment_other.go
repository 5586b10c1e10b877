//go:build !linux

package shm

import (
	"fmt"
	"os"
)

// Create is not supported on this system yet.
func Create(name string, spec Spec, opts ...Option) (*Segment, error) {
	return nil, &Error{Op: "create", Name: name, Err: ErrNotSupported}
}

// CreateAnonymous is not supported on this system yet.
func CreateAnonymous(spec Spec) (*Segment, error) {
	return nil, &Error{Op: "create", Err: ErrNotSupported}
}

// Open is not supported on this system yet.
func Open(name string, spec Spec, opts ...Option) (*Segment, error) {
	return nil, &Error{Op: "open", Name: name, Err: ErrNotSupported}
}

// OpenFile is not supported on this system yet.
func OpenFile(f *os.File, spec Spec) (*Segment, error) {
	return nil, &Error{Op: "open", Name: "(file)", Err: ErrNotSupported}
}

// openNoFollow opens path for Stat and List, refusing what is not a
// regular file, as the Linux version does. (Lstat then open is racy, but
// segments are not supported here; this only reads headers.)
func openNoFollow(path string, flag int) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, osErr(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", ErrBadMagic)
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, osErr(err)
	}
	return f, nil
}

// unlinkIfSame removes the name path if it still refers to the file fi
// describes (see the Linux version; here, check then unlink).
func unlinkIfSame(path string, fi os.FileInfo) (removed, changed bool, err error) {
	if now, err := os.Lstat(path); err != nil || !os.SameFile(fi, now) {
		return false, err == nil, osErr(err)
	}
	err = os.Remove(path)
	return err == nil, false, osErr(err)
}
