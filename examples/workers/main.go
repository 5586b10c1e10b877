// Command workers is the README's example: a parent process starts
// worker processes (itself, re-executed) that share one struct holding a
// counter, the lock that guards it and a barrier, through a named
// segment.
//
//	go run ./examples/workers
//
// It starts its workers with os/exec, not package process, on purpose:
// it shows the raw mechanism underneath, that shared memory and its
// locks need nothing but a segment's name: any processes that know it
// can share it, whoever started them (a shell, systemd, another
// program). The price is what
// package process would otherwise take care of: each worker finds its
// role in its arguments, reports only through its exit status, and does
// not die with the parent (a worker left waiting at the barrier gives up
// when its minute is over). examples/process starts processes with
// package process; examples/pool runs a pool of them.
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"time"

	xsync "github.com/xproc-go/xproc/sync"
	"github.com/xproc-go/xproc/value"
)

// Job lives in shared memory: fixed-size fields, no pointers.
type Job struct {
	Mu    xsync.Mutex // guards Count
	Count int64
	Start xsync.Barrier // the parent and the workers start together
}

const workers = 4

func main() {
	run := parent
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		run = worker
	}
	// log.Fatal only once run has returned: its deferred clean-up (the
	// segment's Unlink, say) has been done.
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// parent creates the Job, starts the workers and prints their count. On
// every path it unlinks the Job, and kills and reaps the workers it has
// started that are still running.
func parent() error {
	// In the parent: set the Job up in place, before any worker can open it.
	job, err := value.CreateFunc("example-workers", func(j *Job) error {
		return j.Start.Init(workers+1, time.Minute)
	})
	if err != nil {
		return err
	}
	defer job.Close()
	defer job.Unlink()

	var cmds []*exec.Cmd
	defer func() {
		for _, cmd := range cmds {
			if cmd.ProcessState == nil { // not reaped: something failed
				cmd.Process.Kill()
				cmd.Wait()
			}
		}
	}()
	for range workers {
		cmd := exec.Command(os.Args[0], "worker")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds = append(cmds, cmd)
	}
	// A worker that dies before it arrives breaks the barrier within the
	// minute given to Init, instead of leaving the others waiting.
	if _, err := job.Ptr().Start.Wait(); err != nil {
		return err
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("worker %d: %w", cmd.Process.Pid, err)
		}
	}
	fmt.Println("count:", job.Ptr().Count) // count: 40000
	return nil
}

// worker adds 10000 to the count, under the lock, once every process has
// reached the barrier.
func worker() error {
	job, err := value.Open[Job]("example-workers")
	if err != nil {
		return err
	}
	defer job.Close()
	j := job.Ptr()
	if _, err := j.Start.Wait(); err != nil {
		return err
	}
	for range 10000 {
		j.Mu.Lock()
		j.Count++
		j.Mu.Unlock()
	}
	return nil
}
