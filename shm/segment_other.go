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
	return nil, &Error{Op: "open", Name: f.Name(), Err: ErrNotSupported}
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
