// Command workers is the README's example: a parent process starts
// worker processes (itself, re-executed) that share one struct holding a
// counter, the lock that guards it and a barrier, through a named
// segment.
//
//	go run ./examples/workers
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
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		worker()
		return
	}
	// In the parent: set the Job up in place, before any worker can open it.
	job, err := value.CreateFunc("example-workers", func(j *Job) error {
		return j.Start.Init(workers+1, time.Minute)
	})
	if err != nil {
		log.Fatal(err)
	}
	defer job.Close()
	defer job.Unlink()

	var cmds []*exec.Cmd
	for range workers {
		cmd := exec.Command(os.Args[0], "worker")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	// A worker that dies before it arrives breaks the barrier within the
	// minute given to Init, instead of leaving the others waiting.
	if _, err := job.Ptr().Start.Wait(); err != nil {
		log.Fatal(err)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("count:", job.Ptr().Count) // count: 40000
}

func worker() {
	job, err := value.Open[Job]("example-workers")
	if err != nil {
		log.Fatal(err)
	}
	defer job.Close()
	j := job.Ptr()
	if _, err := j.Start.Wait(); err != nil {
		log.Fatal(err)
	}
	for range 10000 {
		j.Mu.Lock()
		j.Count++
		j.Mu.Unlock()
	}
}
