package testproc

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// runDir is the open run directory, whose shared flock says that this
// run is alive; it stays open until the process ends.
var runDir *os.File

// makeDir makes the run's segment directory in parent, "xproc-test-*",
// after removing those that runs killed before they could remove their
// own (a timeout's panic, a SIGKILL): each run holds a shared flock on
// its directory while it lives, which the kernel drops with the process.
// The directory is made under another name and renamed once locked, so
// that a sweep never takes a new one for a dead one.
func makeDir(parent string) (string, error) {
	sweepDead(parent)
	tmp, err := os.MkdirTemp(parent, "xproc-testing-")
	if err != nil {
		return "", err
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_SH)
	}
	dir := filepath.Join(parent, "xproc-test-"+strings.TrimPrefix(filepath.Base(tmp), "xproc-testing-"))
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.RemoveAll(tmp)
		return "", err
	}
	runDir = f
	return dir, nil
}

// sweepDead removes the run directories in parent whose run has died:
// those on which no process holds the lock.
func sweepDead(parent string) (removed []string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, "xproc-test-*"))
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil && os.RemoveAll(d) == nil {
			removed = append(removed, d)
		}
		f.Close()
	}
	return removed
}
