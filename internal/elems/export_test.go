package elems

import "time"

// SetSelfWaitWarning sets how long a wait on a lock the process holds
// lasts before the warning, and returns a function restoring it.
func SetSelfWaitWarning(d time.Duration) (restore func()) {
	old := selfWaitWarning
	selfWaitWarning = d
	return func() { selfWaitWarning = old }
}
