// Command workers is the README's example: a parent process starts
// worker processes (itself, re-executed) that share one struct holding a
// counter, the lock that guards it and an event, through a named segment.
//
//	go run ./examples/workers
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"

	xsync "github.com/xproc-go/xproc/sync"
	"github.com/xproc-go/xproc/value"
)

// Job lives in shared memory: fixed-size fields, no pointers.
type Job struct {
	Mu    xsync.Mutex // guards Count
	Count int64
	Go    xsync.Event // set by the parent when the workers may start
}

const name = "example-workers"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		worker()
		return
	}
	job, err := value.Create(name, Job{})
	if err != nil {
		log.Fatal(err)
	}
	defer job.Close()
	defer job.Unlink()

	var workers []*exec.Cmd
	for range 4 {
		cmd := exec.Command(os.Args[0], "worker")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		workers = append(workers, cmd)
	}
	job.Ptr().Go.Set()
	for _, w := range workers {
		if err := w.Wait(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("count:", job.Ptr().Count) // count: 40000
}

func worker() {
	job, err := value.Open[Job](name)
	if err != nil {
		log.Fatal(err)
	}
	defer job.Close()
	j := job.Ptr()
	j.Go.Wait()
	for range 10000 {
		j.Mu.Lock()
		j.Count++
		j.Mu.Unlock()
	}
}
