package process_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/process"
)

// echo writes back each line it reads from file 0 to file 1 until file 0
// ends, and returns the number of lines.
var echo = process.Register("test-echo", func(ctx context.Context, _ struct{}) (int, error) {
	in, out := bufio.NewScanner(process.File(0)), process.File(1)
	n := 0
	for in.Scan() {
		if _, err := fmt.Fprintln(out, in.Text()); err != nil {
			return n, err
		}
		n++
	}
	return n, in.Err()
})

func init() {
	// lifeline-only: start a worker without the parent-death signal,
	// print its identity once its function runs, and wait to be killed.
	testproc.Register("lifeline-only", func(args []string) error {
		process.DisablePdeathsig()
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		p, err := process.Start(context.Background(), wait, struct{}{}, process.Files(w))
		w.Close()
		if err != nil {
			return err
		}
		if _, err := r.Read(make([]byte, 1)); err != nil {
			return fmt.Errorf("the worker did not reach its function: %w", err)
		}
		if err := testproc.SayProcess("worker", p.Pid()); err != nil {
			return err
		}
		return testproc.Await("never")
	})
}

// orphanBound is how long an orphaned worker may take to exit: it should
// take milliseconds.
const orphanBound = 10 * time.Second

// TestLifelineAlone: a worker started without the parent-death signal
// still exits, with the orphan's status, when its parent is killed: the
// lifeline alone suffices. This test process becomes a child subreaper
// so that the orphan is handed to it and its exit status can be read.
func TestLifelineAlone(t *testing.T) {
	reaper := setSubreaper(t)
	parent := testproc.Start(t, "lifeline-only")
	id := parent.ExpectProcess("worker")
	t.Cleanup(func() {
		if owner.Alive(id) {
			syscall.Kill(id.Pid(), syscall.SIGKILL)
		}
	})
	// The kernel has handed the worker to its new parent by the time
	// the old one is dead (a zombie, as Kill leaves it). The parent is
	// reaped last: the worker shares its standard output, whose end
	// Wait awaits.
	parent.Kill()
	killed := time.Now()
	defer parent.WaitKilled()

	if !reaper {
		for owner.Alive(id) {
			if time.Since(killed) > orphanBound {
				syscall.Kill(id.Pid(), syscall.SIGKILL)
				t.Fatalf("the worker (pid %d) still ran %v after its parent was killed", id.Pid(), orphanBound)
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("the worker exited %v after its parent was killed (exit status not observable)", time.Since(killed))
		return
	}
	reaped := make(chan error, 1)
	var ws syscall.WaitStatus
	go func() {
		for {
			_, err := syscall.Wait4(id.Pid(), &ws, 0, nil)
			if err != syscall.EINTR {
				reaped <- err
				return
			}
		}
	}()
	select {
	case err := <-reaped:
		require.NoError(t, err, "the orphaned worker was not handed to this process")
	case <-time.After(orphanBound):
		syscall.Kill(id.Pid(), syscall.SIGKILL)
		<-reaped
		t.Fatalf("the worker (pid %d) still ran %v after its parent was killed", id.Pid(), orphanBound)
	}
	t.Logf("the worker exited %v after its parent was killed", time.Since(killed))
	assert.True(t, ws.Exited(), "%v", ws)
	assert.Equal(t, process.ExitOrphan, ws.ExitStatus())
}

// setSubreaper makes this process the child subreaper until the test
// ends, and reports whether it could.
func setSubreaper(t *testing.T) bool {
	const prSetChildSubreaper = 36
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Logf("PR_SET_CHILD_SUBREAPER: %v: the orphan's exit status will not be checked", errno)
		return false
	}
	t.Cleanup(func() { syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 0, 0) })
	return true
}

// TestStartingThreadExits: the parent-death signal fires when the thread
// that forked a worker exits, not the process. A worker started from a
// goroutine locked to its thread, which Go ends when the goroutine
// returns without unlocking it, keeps running once that thread is gone.
func TestStartingThreadExits(t *testing.T) {
	ctx := ctxBound(t)
	reqR, reqW, err := os.Pipe()
	require.NoError(t, err)
	defer reqW.Close()
	respR, respW, err := os.Pipe()
	require.NoError(t, err)
	defer respR.Close()

	type started struct {
		p   *process.Process[int]
		tid int
		err error
	}
	var s started
	for {
		ch := make(chan started, 1)
		go func() {
			runtime.LockOSThread() // not unlocked: the thread ends with the goroutine
			tid := syscall.Gettid()
			if tid == syscall.Getpid() {
				// Go does not end the main thread, it parks it: try
				// another goroutine.
				runtime.UnlockOSThread()
				ch <- started{tid: tid}
				return
			}
			p, err := process.Start(ctx, echo, struct{}{}, process.Files(reqR, respW))
			ch <- started{p, tid, err}
		}()
		if s = <-ch; s.tid != syscall.Getpid() {
			break
		}
	}
	reqR.Close()
	respW.Close()
	require.NoError(t, s.err)
	t.Cleanup(func() { s.p.Kill() })

	// The thread is gone once it has left /proc/self/task.
	task := "/proc/self/task/" + strconv.Itoa(s.tid)
	deadline := time.Now().Add(testproc.Bound)
	for {
		_, err := os.Stat(task)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		require.NoError(t, err)
		if time.Now().After(deadline) {
			t.Fatalf("thread %d still runs after %v", s.tid, testproc.Bound)
		}
		time.Sleep(time.Millisecond)
	}

	// A request made after the thread ended is answered.
	_, err = reqW.WriteString("ping\n")
	require.NoError(t, err, "the worker died with the thread that started it")
	require.NoError(t, respR.SetReadDeadline(time.Now().Add(testproc.Bound)))
	line, err := bufio.NewReader(respR).ReadString('\n')
	require.NoError(t, err, "the worker died with the thread that started it")
	assert.Equal(t, "ping\n", line)
	assert.True(t, s.p.Alive())
	reqW.Close()
	n, err := s.p.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}
