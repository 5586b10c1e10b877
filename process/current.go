package process

import (
	"os"
	"strconv"
	"sync"
)

// Info describes a process as Python's current_process() and os.getpid()
// / os.getppid() do.
type Info struct {
	Name string // the worker's name (see the Name option), or "MainProcess"
	Pid  int
	PPid int
}

// Current describes the calling process.
func Current() Info {
	name := workerName
	if name == "" {
		name = "MainProcess"
	}
	return Info{Name: name, Pid: os.Getpid(), PPid: os.Getppid()}
}

// IsWorker reports whether this process was started as a worker (by
// Start, or by package pool), as Python's parent_process() is not None.
// It holds from the program's start, before Init: package initialisation
// can use it to skip what only the main program needs.
func IsWorker() bool { return isWorker }

var isWorker = os.Getenv(envFunc) != ""

var inherited = sync.OnceValue(func() []*os.File {
	fs := make([]*os.File, userFiles)
	for i := range fs {
		fs[i] = os.NewFile(uintptr(fdUser+i), "inherited-"+strconv.Itoa(i))
	}
	return fs
})

// File returns, in a worker, the i-th file handed to it with the Files
// option (from 0), or nil if there is none (or this is not a worker). It
// returns the same *os.File each time.
func File(i int) *os.File {
	fs := inherited()
	if i < 0 || i >= len(fs) {
		return nil
	}
	return fs[i]
}
