// Command process is the Process programs of Python's multiprocessing
// lessons, in Go: a named process prints who it is and who its parent
// is, and is joined; a process fills a shared array with squares that
// its parent then reads; a process is terminated, and its exit code is
// -15, as Python prints it.
//
//	go run ./examples/process
//
// The Python it follows:
//
//	def info(title):
//	    print(title)
//	    print('parent process:', os.getppid())
//	    print('process id:', os.getpid())
//
//	def f(name):
//	    info('function f')
//	    print('hello', name)
//
//	def squares(a):
//	    for i in range(len(a)):
//	        a[i] = i * i
//
//	if __name__ == '__main__':
//	    info('main line')
//	    p = Process(target=f, args=('bob',), name='greeter')
//	    p.start(); p.join()
//	    arr = Array('q', 10)
//	    p = Process(target=squares, args=(arr,))
//	    p.start(); p.join()
//	    print(arr[:])
//	    p = Process(target=time.sleep, args=(1000,))
//	    p.start(); p.terminate(); p.join()
//	    print(p.exitcode)  # -15
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/process"
)

// The functions the processes run are registered at package
// initialisation: a process is this program started again, and looks its
// function up by name.
var (
	greet = process.Register("example.process.greet", func(ctx context.Context, name string) (struct{}, error) {
		info("function f")
		fmt.Println("hello", name)
		return struct{}{}, nil
	})
	// squares fills the shared array it is given the name of: the array
	// is shared, not sent.
	squares = process.Register("example.process.squares", func(ctx context.Context, name string) (int, error) {
		a, err := array.Open[int64](name, 0)
		if err != nil {
			return 0, err
		}
		defer a.Close()
		for i := range a.Len() {
			a.Set(i, int64(i*i))
		}
		return a.Len(), nil
	})
	// sleep sleeps for d, or until it is terminated: its context is
	// cancelled then, and the process dies of SIGTERM once it returns.
	sleep = process.Register("example.process.sleep", func(ctx context.Context, d time.Duration) (struct{}, error) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		return struct{}{}, ctx.Err()
	})
)

// info prints what Python's lesson prints of the running process.
func info(title string) {
	me := process.Current()
	fmt.Println(title)
	fmt.Println("  name:", me.Name)
	fmt.Println("  parent process:", me.PPid)
	fmt.Println("  process id:", me.Pid)
}

func main() {
	process.Init() // in a process started by Start: runs its function, and exits
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "process:", err)
		os.Exit(1)
	}
}

// run runs the lessons. Whatever happens, it returns only once the shared
// array is unlinked, and every process it started has ended or is being
// killed (ending ctx kills them).
func run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// A process with a name, joined.
	info("main line")
	p, err := process.Start(ctx, greet, "bob", process.Name("greeter"))
	if err != nil {
		return err
	}
	if _, err := p.Wait(ctx); err != nil {
		return err
	}
	fmt.Println("greeter exitcode:", p.ExitCode())

	// A process fills a shared array; the parent reads it.
	name := fmt.Sprintf("example-process-%d", os.Getpid())
	a, err := array.Create[int64](name, 10)
	if err != nil {
		return err
	}
	defer a.Close()
	defer a.Unlink()
	q, err := process.Start(ctx, squares, name)
	if err != nil {
		return err
	}
	if _, err := q.Wait(ctx); err != nil {
		return err
	}
	fmt.Println("squares:", a.Slice())

	// A process terminated: it dies of SIGTERM, exit code -15.
	s, err := process.Start(ctx, sleep, 1000*time.Second, process.Name("sleeper"))
	if err != nil {
		return err
	}
	fmt.Println("sleeper alive:", s.Alive())
	if err := s.Terminate(); err != nil {
		return err
	}
	if _, err := s.Wait(ctx); !errors.Is(err, process.ErrDied) {
		return fmt.Errorf("the terminated sleeper: %v, want it dead", err)
	}
	fmt.Println("sleeper alive:", s.Alive())
	fmt.Println("sleeper exitcode:", s.ExitCode())
	return nil
}
