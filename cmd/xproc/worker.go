package main

import (
	"context"
	"fmt"
	"os"
	"runtime"

	"github.com/xproc-go/xproc/process"
)

// The demo, the benchmarks and the torture run their workers as separate
// processes through package process: this program started again, running
// runJob, which runs the named function of workers.

// workers maps a job name to the function a worker process runs.
var workers = map[string]func(args []string) error{}

// job names a function of workers and its arguments.
type job struct {
	Name string
	Args []string
}

var runJob = process.Register("xproc.cmd.job", func(ctx context.Context, j job) (struct{}, error) {
	fn := workers[j.Name]
	if fn == nil {
		return struct{}{}, fmt.Errorf("unknown job %q", j.Name)
	}
	return struct{}{}, fn(j.Args)
})

// worker is a worker process started by startWorker.
type worker struct{ p *process.Process[struct{}] }

// Kill kills the worker (SIGKILL) and returns once it is dead.
func (w worker) Kill() {
	w.p.Kill()
	<-w.p.Done()
}

// Wait waits for the worker to finish and returns its error.
func (w worker) Wait() error {
	_, err := w.p.Wait(context.Background())
	return err
}

// startWorker starts a worker process running the job name with args,
// handing it files (process.File(0), 1, ... there). Workers write their
// output to this program's standard error: they report through shared
// memory.
func startWorker(name string, files []*os.File, args ...string) (worker, error) {
	p, err := process.Start(context.Background(), runJob, job{name, args},
		process.Files(files...), process.Stdout(os.Stderr), process.Stderr(os.Stderr))
	return worker{p}, err
}

func maxProcs() int { return runtime.GOMAXPROCS(0) }
