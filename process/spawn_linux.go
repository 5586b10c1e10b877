package process

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// lifeline is one pipe shared by all workers: each inherits the read end;
// this process holds the write end, never writing it, for its whole life.
// When this process dies, however it dies, the kernel closes the write
// end and every worker's read returns: the worker exits (watchLifeline).
//
// The write end is a bare descriptor, not an *os.File, so that no
// finalizer can ever close it.
var lifeline = sync.OnceValues(func() (*os.File, error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	return os.NewFile(uintptr(fds[0]), "lifeline"), nil
})

// spawner forks every worker from one OS thread that never exits. The
// kernel's parent-death signal (Pdeathsig, the backup to the lifeline)
// fires when the thread that forked a child exits, not the process, and
// Go ends threads it no longer needs; this one it cannot.
var spawner = sync.OnceValue(func() chan spawnRequest {
	ch := make(chan spawnRequest)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives with the process
		for r := range ch {
			r.err <- r.cmd.Start()
		}
	}()
	return ch
})

// pdeathsig is the signal a worker gets when the thread that forked it
// exits: SIGKILL. Only tests change it (0: none), to prove that the
// lifeline alone stops a worker whose parent died.
var pdeathsig = syscall.SIGKILL

type spawnRequest struct {
	cmd *exec.Cmd
	err chan error
}

// start starts the worker for the function fn with the encoded argument
// arg.
func start(ctx context.Context, fn string, arg []byte, o *options) (*proc, error) {
	life, err := lifeline()
	if err != nil {
		return nil, err
	}
	argR, argW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		argR.Close()
		argW.Close()
		return nil, err
	}
	cmd := &exec.Cmd{
		// The running program itself, even if its file has been
		// replaced or removed since it started.
		Path:        "/proc/self/exe",
		Args:        []string{os.Args[0]},
		Env:         o.environ(fn),
		Stdout:      o.stdout,
		Stderr:      o.stderr,
		ExtraFiles:  append([]*os.File{argR, outW, life}, o.files...),
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: pdeathsig},
		// A process the worker started may hold its standard output or
		// error open after the worker exited: stop copying from them
		// then, rather than wait for it.
		WaitDelay: replyDrain,
	}
	req := spawnRequest{cmd: cmd, err: make(chan error, 1)}
	spawner() <- req
	err = <-req.err
	argR.Close()
	outW.Close()
	if err != nil {
		argW.Close()
		outR.Close()
		return nil, err
	}
	p := &proc{name: o.name, fn: fn, cmd: cmd, done: make(chan struct{})}
	go func() {
		// A worker that dies first makes this fail with EPIPE; its exit
		// says what happened.
		argW.Write(arg)
		argW.Close()
	}()
	if ctx.Done() != nil {
		p.stopCtx = context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	}
	go p.collect(outR)
	return p, nil
}

func closeOnExec(fd int) { syscall.CloseOnExec(fd) }

// raise sends sig to this process.
func raise(sig syscall.Signal) { syscall.Kill(os.Getpid(), sig) }
