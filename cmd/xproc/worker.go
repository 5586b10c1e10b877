package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// The demo and the benchmarks run their workers as separate processes by
// re-executing this program with workerEnv naming the job. Arguments
// travel in workerArgsEnv, separated by argSep.
const (
	workerEnv     = "XPROC_WORKER"
	workerArgsEnv = "XPROC_WORKER_ARGS"
	argSep        = "\x1f"
)

// workers maps a job name to the function a worker process runs.
var workers = map[string]func(args []string) error{}

func runWorker(job string) int {
	fn := workers[job]
	if fn == nil {
		fmt.Fprintf(os.Stderr, "xproc worker: unknown job %q\n", job)
		return 2
	}
	var args []string
	if a := os.Getenv(workerArgsEnv); a != "" {
		args = strings.Split(a, argSep)
	}
	if err := fn(args); err != nil {
		fmt.Fprintf(os.Stderr, "xproc worker %s: %v\n", job, err)
		return 1
	}
	return 0
}

// startWorker starts this program as a worker running job, with files
// as its inherited files 3, 4, ... (exec.Cmd.ExtraFiles).
func startWorker(job string, files []*os.File, args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), workerEnv+"="+job, workerArgsEnv+"="+strings.Join(args, argSep))
	cmd.Stdout = os.Stderr // workers report through shared memory, not stdout
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = files
	return cmd, cmd.Start()
}

func maxProcs() int { return runtime.GOMAXPROCS(0) }

func numCPU() int { return runtime.NumCPU() }
