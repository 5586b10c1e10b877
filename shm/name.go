package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"
)

// MaxNameLen is the longest segment name accepted.
const MaxNameLen = 200

// ValidName reports whether name may be used as a segment name: 1 to 200
// bytes of [A-Za-z0-9._-], not starting with '.' or '-'. Names therefore
// never contain a path separator, never mean "." or "..", never collide
// with the hidden temporary files used while creating, and are never
// taken for an option on a command line (xproc inspect NAME).
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty (CreateAnonymous makes a segment with no name)", ErrInvalidName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrInvalidName, len(name), MaxNameLen)
	case name[0] == '.' || name[0] == '-':
		return fmt.Errorf("%w: starts with %q", ErrInvalidName, name[0])
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %s at offset %d (allowed: A-Z a-z 0-9 . _ -)", ErrInvalidName, describeChar(name[i:]), i)
		}
	}
	return nil
}

// describeChar names the character that s starts with for a message: a
// UTF-8 character as itself, quoted, with its code point ('é' (U+00E9));
// a byte that does not start one by its value (byte 0xff).
func describeChar(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	switch {
	case r == utf8.RuneError && size <= 1:
		return fmt.Sprintf("byte %#02x", s[0])
	case r < utf8.RuneSelf:
		return fmt.Sprintf("%q", r)
	}
	return fmt.Sprintf("%q (%U)", r, r)
}

// DirEnv is the environment variable that overrides the default segment
// directory.
const DirEnv = "XPROC_SHM_DIR"

// DefaultDir returns the directory named segments live in when no Dir
// option is given: $XPROC_SHM_DIR if set, else /dev/shm.
func DefaultDir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return "/dev/shm"
}

// Option configures where and how segments are created or found.
type Option func(*options)

type options struct {
	dir      string
	fromEnv  bool // dir came from DirEnv
	perm     os.FileMode
	foreign  bool   // Foreign: sweep foreign creators' unused segments
	prefix   string // Prefix: only names that start with it
	prefixed bool   // Prefix was given (an empty prefix is refused, not "all")
}

// Dir places segments in dir instead of DefaultDir(). Any directory works;
// one on a disk-backed file system gives persistent, file-backed data.
func Dir(dir string) Option { return func(o *options) { o.dir = dir } }

// Perm sets the permission bits of created segments (default 0600, before
// the umask).
func Perm(perm os.FileMode) Option { return func(o *options) { o.perm = perm.Perm() } }

// Foreign makes Sweep and RemoveStale also remove a segment whose creator
// is in another PID namespace (another container sharing the directory)
// once no process maps it (Info.Unused). Whether that creator still runs
// cannot be told from here, so a segment it closed meaning to open it
// again, or left for a later reader, goes too: use it where that cannot
// happen (the others are known gone), or with Prefix, restricted to
// names that only this program uses (the way to sweep after a container
// restart; see Prefix). Other functions ignore it.
func Foreign() Option { return func(o *options) { o.foreign = true } }

// Prefix makes List, Sweep and RemoveStale consider only the segments
// whose names start with prefix (which must itself be a valid name, not
// empty: otherwise they fail with ErrInvalidName, rather than take an
// unset variable for "every segment"). Other functions ignore it.
//
// With Foreign it is the way to clean up after a restarted container:
// a container that restarts gets a new PID namespace, so the leftovers of
// its previous run have a creator of another namespace, which Sweep alone
// keeps. Sweep(Prefix(p), Foreign()) removes the segments named p...
// that no process maps and whose creator is gone or of another
// namespace (a segment whose creator runs in this namespace is kept, as
// by every Sweep), and of the rest of the directory only the hidden files
// of creations cut short, as every Sweep does. A segment some process maps, in any
// namespace, is never removed (liveness is the kernel's lock of each
// mapping, not a pid). Choose a prefix that no other container sharing
// the directory uses, such as the application's name and the
// container's.
func Prefix(prefix string) Option {
	return func(o *options) { o.prefix, o.prefixed = prefix, true }
}

// checkPrefix reports whether the Prefix option, if any, is usable: a
// prefix no valid name could start with is an error, not an empty sweep.
func (o *options) checkPrefix() error {
	if !o.prefixed {
		return nil
	}
	if err := ValidName(o.prefix); err != nil {
		return fmt.Errorf("prefix %q: %w", o.prefix, err)
	}
	return nil
}

// selected reports whether name passes the Prefix option.
func (o *options) selected(name string) bool { return strings.HasPrefix(name, o.prefix) }

func getOptions(opts []Option) options {
	o := options{perm: 0o600}
	for _, f := range opts {
		f(&o)
	}
	if o.dir == "" {
		o.dir = DefaultDir()
		o.fromEnv = os.Getenv(DirEnv) != ""
	}
	return o
}

// dirErr explains err, which an operation on a file in o.dir returned,
// when the cause is that o.dir is missing or is not a directory: the
// error then names the directory (and DirEnv, if it chose it) rather
// than blaming the segment, and still matches err. Otherwise it returns
// osErr(err). segment says whether the operation needed an existing
// segment (open, stat, unlink): its error then matches ErrNotExist too.
func (o *options) dirErr(err error, segment bool) error {
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return osErr(err)
	}
	fi, serr := os.Stat(o.dir)
	switch {
	case serr == nil && fi.IsDir():
		return osErr(err) // the directory is there: the segment is not
	case serr == nil:
		serr = syscall.ENOTDIR
	}
	var errno syscall.Errno
	if errors.As(serr, &errno) {
		serr = errno // without the path, which the message gives once
	}
	derr := fmt.Errorf("%s: %w", o.describeDir(true), serr)
	if segment {
		// The directory first: it is what is wrong.
		return fmt.Errorf("%w, so the %w", derr, ErrNotExist)
	}
	return derr
}

// describeDir names the segment directory for messages, with its path
// unless the message gives it already.
func (o *options) describeDir(withPath bool) string {
	s := "segment directory"
	if withPath {
		s += " " + displayName(o.dir)
	}
	if o.fromEnv {
		s += " (from $" + DirEnv + ")"
	}
	return s
}

// Path returns the file path of the named segment, after validating name.
func Path(name string, opts ...Option) (string, error) {
	path, err := segmentPath(name, opts)
	if err != nil {
		return "", &Error{Op: "path", Name: name, Err: err}
	}
	return path, nil
}

// segmentPath is Path with an unwrapped error, for the operations that
// wrap it in an *Error of their own ("create", "open", "unlink", "stat"),
// rather than in a second one that says "path".
func segmentPath(name string, opts []Option) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	return filepath.Join(getOptions(opts).dir, name), nil
}
