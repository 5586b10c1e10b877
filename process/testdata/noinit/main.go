// Command noinit is a program that forgets to call process.Init: started
// as its own worker, it runs main again. TestNoInit runs it.
//
// With NOINIT_MODE=start the worker's main calls Start again (which would
// start workers without end); with "block" it blocks forever; with "exit"
// it exits at once with status 0. NOINIT_INIT_TIMEOUT is the start-up
// bound its workers get (XPROC_PROCESS_INIT_TIMEOUT).
//
// Every run of main, the program's own and its workers', appends a byte
// to the file NOINIT_RUNS names, for the test to count. A run that finds
// more than maxRuns bytes there exits at once: without Start's guard a
// worker would start workers without end, and the test must see that,
// not be buried by it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/xproc-go/xproc/process"
)

var double = process.Register("double", func(ctx context.Context, x int) (int, error) { return 2 * x, nil })

// maxRuns is the most runs a correct program makes, and then some: the
// program itself and one worker, which must go no further.
const maxRuns = 3

func main() {
	// No process.Init() here: that is the mistake under test.
	if err := countRun(); err != nil {
		fmt.Fprintln(os.Stderr, "noinit:", err)
		os.Exit(3)
	}
	mode := os.Getenv("NOINIT_MODE")
	if os.Getenv("NOINIT_WORKER") != "" {
		switch mode {
		case "block":
			select {}
		case "exit":
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := process.Start(ctx, double, 21, process.Env("NOINIT_WORKER=1", "XPROC_PROCESS_INIT_TIMEOUT="+os.Getenv("NOINIT_INIT_TIMEOUT")))
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	_, err = p.Wait(ctx)
	fmt.Printf("noinit=%v\n%v\n", errors.Is(err, process.ErrNoInit), err)
}

// countRun appends a byte to the file NOINIT_RUNS names, and fails if
// that makes more than maxRuns.
func countRun() error {
	f, err := os.OpenFile(os.Getenv("NOINIT_RUNS"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write([]byte{'r'}); err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() > maxRuns {
		return fmt.Errorf("run %d: runaway re-execution, stopped", st.Size())
	}
	return nil
}
