package owner

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// exitWatch is one pidfd, shared by every caller of ExitContext that
// waits for the same process.
type exitWatch struct {
	ctx    context.Context
	cancel context.CancelFunc
	file   *os.File // the pidfd; nil if the process had exited already
	refs   int
	idle   time.Time // when refs last dropped to 0
}

// watchIdle is how long a watch nobody uses keeps its pidfd, so that a
// lock contended again and again by the same two processes does not open
// a pidfd for every wait.
const watchIdle = 5 * time.Second

var watches = struct {
	sync.Mutex
	m     map[ID]*exitWatch
	swept time.Time
}{m: make(map[ID]*exitWatch)}

// ExitContext returns a context that is done once the process id has
// exited (at once if it already has), and a release function to call
// when the caller no longer needs it. ok is false when id cannot be
// watched from here: its pid belongs to another PID namespace, it is this
// process, or the kernel lacks pidfds (before Linux 5.3); callers then
// check at intervals instead.
//
// The context says only that a process with id's pid and start time
// exited. Callers decide what that means from the authoritative source
// (Attached), which has already changed by the time the context is done:
// the kernel closes a process's files before it reports the exit.
//
// No thread waits: the pidfd is watched by Go's network poller. Watches
// are shared per process and kept a few seconds after their last release.
func ExitContext(id ID) (ctx context.Context, release func(), ok bool) {
	if id.Pid() == 0 || id.Pid() == self.Pid() || !id.Local() {
		// Our own pid: this process, or the program it was before an
		// exec, which no exit will ever end.
		return nil, nil, false
	}
	watches.Lock()
	defer watches.Unlock()
	now := time.Now()
	if now.Sub(watches.swept) > watchIdle {
		watches.swept = now
		for k, w := range watches.m {
			if w.refs == 0 && (w.ctx.Err() != nil || now.Sub(w.idle) > watchIdle) {
				w.close()
				delete(watches.m, k)
			}
		}
	}
	w := watches.m[id]
	if w == nil {
		if w = startWatch(id); w == nil {
			return nil, nil, false
		}
		watches.m[id] = w
	}
	w.refs++
	var once sync.Once
	return w.ctx, func() {
		once.Do(func() {
			watches.Lock()
			defer watches.Unlock()
			if w.refs--; w.refs == 0 {
				w.idle = time.Now()
				// Close it once idle long enough, even if no other
				// watch is ever asked for.
				time.AfterFunc(watchIdle, func() { dropIdle(id, w) })
			}
		})
	}, true
}

// dropIdle closes and forgets w, the watch of id, if nobody has used it
// for watchIdle.
func dropIdle(id ID, w *exitWatch) {
	watches.Lock()
	defer watches.Unlock()
	if w.refs == 0 && time.Since(w.idle) >= watchIdle && watches.m[id] == w {
		w.close()
		delete(watches.m, id)
	}
}

// startWatch opens a pidfd for id and starts watching it, or returns nil
// if it cannot.
func startWatch(id ID) *exitWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &exitWatch{ctx: ctx, cancel: cancel}
	fd, err := unix.PidfdOpen(id.Pid(), unix.PIDFD_NONBLOCK)
	switch {
	case errors.Is(err, unix.ESRCH):
		cancel() // gone already
		return w
	case err != nil:
		cancel()
		return nil
	}
	// The pid may have been reused between the caller reading id and
	// the pidfd_open: then the process id named is gone. If /proc cannot
	// say (hidepid), the pidfd cannot be trusted to be id's: do not watch.
	_, start, err := stat(id.Pid())
	if err != nil {
		unix.Close(fd)
		cancel()
		return nil
	}
	if !id.sameStart(start) {
		unix.Close(fd)
		cancel()
		return w
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		cancel()
		return nil
	}
	w.file = f
	go func() {
		// Read waits in the poller until the pidfd is readable, which
		// it becomes when the process exits; it fails once the file is
		// closed (the watch was dropped) or cannot be polled.
		err := rc.Read(func(fd uintptr) bool {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, 0)
			return n > 0 || err != nil && err != unix.EINTR
		})
		if err == nil {
			cancel()
		}
	}()
	return w
}

func (w *exitWatch) close() {
	if w.file != nil {
		w.file.Close()
	}
	w.cancel()
}
