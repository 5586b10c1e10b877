//go:build linux

package process_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/process"
	"github.com/xproc-go/xproc/queue"
	xsync "github.com/xproc-go/xproc/sync"
	"github.com/xproc-go/xproc/value"
)

// printer is the state the greeting processes share: a lock that makes
// their lines come out whole, a barrier that lets them go for it
// together, and what shows that the lock excludes: a count each
// increments under the lock in two steps, and a note of anyone found
// inside.
type printer struct {
	Mu       xsync.Mutex
	Start    xsync.Barrier // the ten processes contend for Mu at once
	Count    int64         // guarded by Mu
	Inside   int64         // guarded by Mu: 1 while a process holds it
	Overlaps int64         // guarded by Mu: holders that found Inside set
}

// greet takes the shared lock, handed over as file 0, to print a line.
// Under the lock it reads the count, lets the others run, then writes
// the count plus one: were the lock not excluding them, others would
// read the same count meanwhile, and increments would be lost.
var greet = process.Register("example-greet", func(ctx context.Context, n int) (struct{}, error) {
	shared, err := value.OpenFile[printer](process.File(0))
	if err != nil {
		return struct{}{}, err
	}
	defer shared.Close()
	p := shared.Ptr()
	if _, err := p.Start.Wait(); err != nil {
		return struct{}{}, err
	}
	p.Mu.Lock()
	defer p.Mu.Unlock()
	if p.Inside != 0 {
		p.Overlaps++
	}
	p.Inside = 1
	count := p.Count
	// Not synchronisation: it widens the window in which another
	// process, if the lock let it in, would read the same count.
	time.Sleep(time.Millisecond)
	fmt.Printf("hello world %d from %s\n", n, process.Current().Name)
	p.Count = count + 1
	p.Inside = 0
	return struct{}{}, nil
})

// Ten processes each take a shared lock to print, as in Python's
//
//	def f(l, i):
//	    l.acquire()
//	    try:
//	        print('hello world', i)
//	    finally:
//	        l.release()
//
//	if __name__ == '__main__':
//	    lock = Lock()
//	    for num in range(10):
//	        Process(target=f, args=(lock, num)).start()
//
// The lines come in any order, but one at a time: each process, holding
// the lock, also increments a shared count by reading it, yielding, and
// writing it back, and notes whether it found anyone else inside. All
// ten go for the lock together (a barrier releases them); were it not
// excluding, increments would be lost and overlaps seen.
func Example_lock() {
	shared, err := value.CreateAnonymous(printer{})
	if err != nil {
		panic(err)
	}
	defer shared.Close()
	if err := shared.Ptr().Start.Init(10, time.Minute); err != nil {
		panic(err)
	}
	ctx := context.Background()
	var ps []*process.Process[struct{}]
	for i := range 10 {
		p, err := process.Start(ctx, greet, i, process.Name(fmt.Sprintf("Process-%d", i+1)),
			process.Files(shared.Segment().File()))
		if err != nil {
			panic(err)
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if _, err := p.Wait(ctx); err != nil {
			panic(err)
		}
	}
	s := shared.Ptr()
	fmt.Println("count:", s.Count)
	fmt.Println("overlaps:", s.Overlaps)
	// Unordered output:
	// hello world 0 from Process-1
	// hello world 1 from Process-2
	// hello world 2 from Process-3
	// hello world 3 from Process-4
	// hello world 4 from Process-5
	// hello world 5 from Process-6
	// hello world 6 from Process-7
	// hello world 7 from Process-8
	// hello world 8 from Process-9
	// hello world 9 from Process-10
	// count: 10
	// overlaps: 0
}

var cube = process.Register("example-cube", func(ctx context.Context, x int) (int, error) { return x * x * x, nil })

// Start a process and wait for its result: Python's Process(target=f,
// args=(x,)).start() and join().
func ExampleStart() {
	ctx := context.Background()
	p, err := process.Start(ctx, cube, 3)
	if err != nil {
		panic(err)
	}
	y, err := p.Wait(ctx)
	fmt.Println(y, err, p.ExitCode())
	// Output: 27 <nil> 0
}

var sleeper = process.Register("example-sleeper", func(ctx context.Context, _ struct{}) (int, error) {
	<-ctx.Done() // until terminated
	return 0, ctx.Err()
})

// Python's p.terminate(), p.kill(), p.is_alive(), p.pid, p.name and
// p.exitcode: -15 for a process terminated (SIGTERM), -9 for one killed.
func ExampleProcess_Terminate() {
	ctx := context.Background()
	p, _ := process.Start(ctx, sleeper, struct{}{}, process.Name("sleeper"))
	fmt.Println(p.Name(), p.Pid() > 0, p.Alive())
	p.Terminate()
	_, err := p.Wait(ctx)
	fmt.Println(p.Alive(), errors.Is(err, process.ErrDied), p.ExitCode())
	q, _ := process.Start(ctx, sleeper, struct{}{})
	q.Kill()
	_, err = q.Wait(ctx)
	fmt.Println(errors.Is(err, process.ErrDied), q.ExitCode())
	// Output:
	// sleeper true true
	// false true -15
	// true -9
}

// Python's current_process().name, os.getpid(), parent_process() and
// cpu_count().
func ExampleCurrent() {
	me := process.Current()
	fmt.Println(me.Name, me.Pid == os.Getpid(), process.IsWorker(), process.CPUCount() >= 1)
	// Output: MainProcess true false true
}

// event is JSON everywhere else in the program, so it travels as JSON to
// the worker too (numbers in Attrs arrive as float64, as JSON has them).
type event struct {
	Kind  string         `json:"kind"`
	Attrs map[string]any `json:"attrs"`
}

// describe runs in a worker; its argument and result go through JSON.
var describe = process.Register("example-describe", func(ctx context.Context, e event) (string, error) {
	return fmt.Sprintf("%s with %d attributes, size %v", e.Kind, len(e.Attrs), e.Attrs["size"]), nil
}, process.Encoding(queue.JSONCodec))

// A function registered with Encoding exchanges its values in that
// encoding (here JSON) instead of gob, as a Python program would register
// its own reducer with multiprocessing.reduction for a type pickle does
// not serve well.
func ExampleEncoding() {
	ctx := context.Background()
	p, err := process.Start(ctx, describe, event{Kind: "upload", Attrs: map[string]any{"size": 4096, "name": "a.bin"}})
	if err != nil {
		panic(err)
	}
	s, err := p.Wait(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(s)
	// Output: upload with 2 attributes, size 4096
}

// fillSquares writes i*i into the shared array handed over as file 0.
var fillSquares = process.Register("example-fill-squares", func(ctx context.Context, n int) (struct{}, error) {
	a, err := array.OpenFile[int64](process.File(0), n)
	if err != nil {
		return struct{}{}, err
	}
	defer a.Close()
	for i := range n {
		a.Set(i, int64(i*i))
	}
	return struct{}{}, nil
})

// A process fills a shared array that its parent then reads, as in
// Python's
//
//	def f(a):
//	    for i in range(len(a)):
//	        a[i] = i * i
//
//	arr = Array('q', 5)
//	p = Process(target=f, args=(arr,))
//	p.start(); p.join()
//	print(arr[:])
func Example_sharedArray() {
	a, err := array.CreateAnonymous[int64](5)
	if err != nil {
		panic(err)
	}
	defer a.Close()
	ctx := context.Background()
	p, err := process.Start(ctx, fillSquares, a.Len(), process.Files(a.Segment().File()))
	if err != nil {
		panic(err)
	}
	if _, err := p.Wait(ctx); err != nil {
		panic(err)
	}
	fmt.Println(a.Slice())
	// Output: [0 1 4 9 16]
}
