// Command noinit is a program that forgets to call process.Init: started
// as its own worker, it runs main again. TestNoInit runs it.
//
// With the argument "start" the worker's main calls Start again (which
// would start workers without end); with "block" it blocks forever; with
// "exit" it exits at once with status 0.
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

func main() {
	// No process.Init() here: that is the mistake under test.
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
	p, err := process.Start(ctx, double, 21, process.Env("NOINIT_WORKER=1", "XPROC_PROCESS_INIT_TIMEOUT=300ms"))
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	_, err = p.Wait(ctx)
	fmt.Printf("noinit=%v\n%v\n", errors.Is(err, process.ErrNoInit), err)
}
