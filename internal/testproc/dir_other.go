//go:build !linux

package testproc

import "os"

// makeDir makes the run's segment directory in parent. Segments are
// Linux-only: there is nothing to sweep elsewhere.
func makeDir(parent string) (string, error) { return os.MkdirTemp(parent, "xproc-test-") }
