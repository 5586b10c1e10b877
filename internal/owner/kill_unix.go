//go:build unix

package owner

import (
	"errors"

	"golang.org/x/sys/unix"
)

// pidExists reports whether a process with this pid exists (signal 0 is
// delivered to no one but checks existence). EPERM means it exists but
// belongs to someone else.
func pidExists(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || !errors.Is(err, unix.ESRCH)
}
