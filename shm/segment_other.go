//go:build !linux

package shm

import "os"

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
