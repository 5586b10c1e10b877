package shm

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/xproc-go/xproc/internal/layout"
)

// Errors returned (wrapped in an *Error) by this package. Compare with
// errors.Is.
//
// ErrExist, ErrNotExist and ErrClosed also match io/fs's ErrExist,
// ErrNotExist and ErrClosed, so that code written for files works
// unchanged: errors.Is(err, fs.ErrNotExist) holds for a missing segment.
// An error the system reports for a segment file stays in the chain, so
// errors.Is(err, fs.ErrPermission) holds when the file's permissions
// refuse access, and errors.Is(err, syscall.ENOSPC) when the disk is full.
var (
	ErrInvalidName  = errors.New("invalid segment name")
	ErrInvalid      = errors.New("invalid argument")
	ErrExist        = fsSentinel("segment already exists", fs.ErrExist)
	ErrNotExist     = fsSentinel("segment does not exist", fs.ErrNotExist)
	ErrKind         = errors.New("segment holds another kind of object")
	ErrTypeMismatch = errors.New("segment holds another element type")
	ErrLenMismatch  = errors.New("segment holds another number of elements")
	ErrClosed       = fsSentinel("segment is closed", fs.ErrClosed)
	ErrNotSupported = errors.New("shared memory segments are not supported on this system")
	// ErrLiveness is returned when this process cannot hold the lock by
	// which the others know that it maps a segment (see package
	// internal/owner); mapping it anyway would let them take its locks.
	ErrLiveness = errors.New("cannot take this process's liveness lock on the segment")

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

// Error formats the error as "shm: op name: cause". A name that holds
// spaces, control characters or bytes that are not UTF-8 is quoted, as
// Go quotes strings, so that the message stays on one line and shows
// what the name really holds.
func (e *Error) Error() string {
	return "shm: " + e.Op + " " + displayName(e.Name) + ": " + e.Err.Error()
}

// displayName is name as messages show it.
func displayName(name string) string {
	if name == "" {
		return "(anonymous)"
	}
	if strings.IndexFunc(name, func(r rune) bool {
		return r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsGraphic(r)
	}) >= 0 {
		return strconv.Quote(name)
	}
	return name
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// fsSentinel returns a sentinel error with message msg that errors.Is
// also matches against target, one of io/fs's errors.
func fsSentinel(msg string, target error) error { return &fsError{msg, target} }

type fsError struct {
	msg    string
	target error
}

func (e *fsError) Error() string        { return e.msg }
func (e *fsError) Is(target error) bool { return target == e.target }
