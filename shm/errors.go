package shm

import (
	"errors"

	"github.com/xproc-go/xproc/internal/layout"
)

// Errors returned (wrapped in an *Error) by this package. Compare with
// errors.Is.
var (
	ErrInvalidName  = errors.New("invalid segment name")
	ErrInvalid      = errors.New("invalid argument")
	ErrExist        = errors.New("segment already exists")
	ErrNotExist     = errors.New("segment does not exist")
	ErrKind         = errors.New("segment holds another kind of object")
	ErrTypeMismatch = errors.New("segment holds another element type")
	ErrLenMismatch  = errors.New("segment holds another number of elements")
	ErrClosed       = errors.New("segment is closed")
	ErrNotSupported = errors.New("shared memory segments are not supported on this system")

	// A file that is not a well-formed segment gets one of these.
	ErrTruncated = layout.ErrTruncated // file shorter than a header page
	ErrBadMagic  = layout.ErrBadMagic  // not an xproc segment
	ErrVersion   = layout.ErrVersion   // written by an incompatible version
	ErrChecksum  = layout.ErrChecksum  // header bytes damaged
	ErrCorrupt   = layout.ErrCorrupt   // header fields inconsistent
	ErrBadSize   = layout.ErrBadSize   // header sizes exceed the file
	ErrNotReady  = layout.ErrNotReady  // creator never finished

	// ErrUnsupportedType is returned for element types that cannot live in
	// shared memory (pointers, slices, strings, maps, ...).
	ErrUnsupportedType = layout.ErrUnsupportedType
)

// Error records a failed segment operation, like os.PathError.
type Error struct {
	Op   string // "create", "open", "unlink", ...
	Name string // segment name or path; "" for anonymous segments
	Err  error
}

// Error formats the error as "shm: op name: cause".
func (e *Error) Error() string {
	name := e.Name
	if name == "" {
		name = "(anonymous)"
	}
	return "shm: " + e.Op + " " + name + ": " + e.Err.Error()
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }
