package owner

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Attach takes this process's liveness lock on f, an open file of a
// segment that this process maps: a read lock on the byte at
// LockBase+LockKey(Self()), owned by f's open file description. It lasts
// until that description is closed (every descriptor of it: keep f
// private to this process and close-on-exec). Attaching the same file
// twice, through two descriptions, holds the byte twice; either keeps the
// process attached.
//
// Attach waits while a sweeper holds the file (see Exclude): briefly, as
// a sweeper holds it only to decide whether to remove the segment.
func Attach(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: LockBase + LockKey(self), Len: 1}
	for {
		err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLKW, &lk)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		}
		return fmt.Errorf("owner: liveness lock: %w", err)
	}
}

// Attached reports whether the process id holds its liveness lock on the
// file f refers to, that is, whether it still maps that segment. Locks
// held through f's own open file description are not seen, so f should
// not be a description through which id attached (it never is for
// id != Self()). It fails only if the file system cannot answer lock
// queries.
func Attached(f *os.File, id ID) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: LockBase + LockKey(id), Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("owner: liveness query: %w", err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

// InUse reports whether any process holds a liveness lock on the file f
// refers to (through another open file description than f's), that is,
// whether any process maps that segment.
func InUse(f *os.File) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: LockBase, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("owner: liveness query: %w", err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

// Exclude takes, through f, a write lock over every liveness byte of f's
// file if no process holds a liveness lock on it (no process maps the
// segment), and reports whether it did. While f holds it, Attach on the
// same file waits, so a sweeper can decide and remove a segment without
// a process attaching in between; closing f releases it. f must be open
// for writing.
func Exclude(f *os.File) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: LockBase, Len: 0}
	switch err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err {
	case nil:
		return true, nil
	case unix.EAGAIN, unix.EACCES:
		return false, nil
	default:
		return false, fmt.Errorf("owner: liveness lock: %w", err)
	}
}

// AttachAs takes, through f, the liveness lock of id instead of this
// process's: for tests that stand in for a process this one cannot
// start, such as one of another PID namespace whose tag is this one's.
func AttachAs(f *os.File, id ID) error {
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: LockBase + LockKey(id), Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		return fmt.Errorf("owner: liveness lock: %w", err)
	}
	return nil
}
