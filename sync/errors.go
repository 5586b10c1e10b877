package sync

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/xproc-go/xproc/shm"
)

// Errors returned by this package, possibly wrapped; compare with
// errors.Is. A blocking call whose context ends returns ctx.Err() itself.
var (
	// ErrOwnerDead is returned, as an *OwnerDeadError that names the dead
	// process, with the lock held when its previous holder died holding
	// it. The data the lock guards may be inconsistent; the new holder
	// should repair or discard it, then unlock as usual.
	ErrOwnerDead = errors.New("previous owner died holding the lock")
	// ErrNotOwner is returned when a caller that does not hold a lock
	// waits on a condition with it (Cond.Wait), and is the panic value
	// (wrapped) when it unlocks a ReentrantMutex it does not hold.
	ErrNotOwner = errors.New("lock not held by caller")
	// ErrOverRelease is returned when a semaphore would be released above
	// its bound: a bounded semaphore's initial value, or MaxSemaphore for
	// any semaphore (its count is 31 bits).
	ErrOverRelease = errors.New("semaphore released too many times")
	// ErrBroken is returned by Barrier waits when the barrier is broken:
	// aborted, reset, timed out, or a party died or gave up.
	ErrBroken = errors.New("barrier is broken")
	// ErrTimeout is returned (together with ErrBroken) when a barrier's
	// default timeout expires.
	ErrTimeout = errors.New("timeout")
	// ErrInvalid is returned for an argument out of range, and for a
	// Barrier used before Init. The message names the call, the argument,
	// the value given and the values allowed; see "Arguments" in the
	// package documentation. It is shm.ErrInvalid: one sentinel for an
	// argument out of range in every package of xproc.
	ErrInvalid = shm.ErrInvalid
	// ErrClosed is returned by calls blocked on a primitive whose segment
	// is closed under them. It is shm.ErrClosed.
	ErrClosed = shm.ErrClosed
)

// OwnerDeadError is the error a lock call returns when it took the lock
// over from a holder that died: errors.Is(err, ErrOwnerDead) holds, and
// PID says which process it was, for the log of whoever repairs the data.
type OwnerDeadError struct {
	PID int // the dead holder's process ID
}

// Error names the dead process.
func (e *OwnerDeadError) Error() string {
	return "xsync: previous owner (pid " + strconv.Itoa(e.PID) + ") died holding the lock"
}

// Is reports whether target is ErrOwnerDead.
func (e *OwnerDeadError) Is(target error) bool { return target == ErrOwnerDead }

// invalidArg returns the error for argument arg of call given the value
// got, where want describes the values allowed: "xsync: invalid
// argument: Semaphore.Init: value -1 (want 0 to 2147483647)".
func invalidArg(call, arg string, got any, want string) error {
	return fmt.Errorf("xsync: %w: %s: %s %v (want %s)", ErrInvalid, call, arg, got, want)
}
