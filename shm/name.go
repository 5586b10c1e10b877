package shm

import (
	"fmt"
	"os"
	"path/filepath"
)

// MaxNameLen is the longest segment name accepted.
const MaxNameLen = 200

// ValidName reports whether name may be used as a segment name: 1 to 200
// bytes of [A-Za-z0-9._-], not starting with '.'. Names therefore never
// contain a path separator, never mean "." or "..", and never collide with
// the hidden temporary files used while creating.
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrInvalidName, len(name), MaxNameLen)
	case name[0] == '.':
		return fmt.Errorf("%w: starts with '.'", ErrInvalidName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: byte %q at %d (allowed: A-Z a-z 0-9 . _ -)", ErrInvalidName, c, i)
		}
	}
	return nil
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
	dir  string
	perm os.FileMode
}

// Dir places segments in dir instead of DefaultDir(). Any directory works;
// one on a disk-backed file system gives persistent, file-backed data.
func Dir(dir string) Option { return func(o *options) { o.dir = dir } }

// Perm sets the permission bits of created segments (default 0600, before
// the umask).
func Perm(perm os.FileMode) Option { return func(o *options) { o.perm = perm.Perm() } }

func getOptions(opts []Option) options {
	o := options{perm: 0o600}
	for _, f := range opts {
		f(&o)
	}
	if o.dir == "" {
		o.dir = DefaultDir()
	}
	return o
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
