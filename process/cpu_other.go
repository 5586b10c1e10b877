//go:build !linux

package process

import "runtime"

// CPUCount returns the number of CPUs this process may use (Go's
// runtime.NumCPU), at least 1.
func CPUCount() int { return max(runtime.NumCPU(), 1) }
