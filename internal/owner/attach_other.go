//go:build !linux

package owner

import (
	"errors"
	"os"
)

var errNoLocks = errors.New("owner: liveness locks are not supported on this system")

// Attach fails: liveness locks are not supported on this system.
func Attach(f *os.File) error { return errNoLocks }

// Attached fails: liveness locks are not supported on this system.
func Attached(f *os.File, id ID) (bool, error) { return false, errNoLocks }

// InUse fails: liveness locks are not supported on this system.
func InUse(f *os.File) (bool, error) { return false, errNoLocks }

// Exclude fails: liveness locks are not supported on this system.
func Exclude(f *os.File) (bool, error) { return false, errNoLocks }
