package sync_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xproc-go/xproc/internal/testproc"
	xsync "github.com/xproc-go/xproc/sync"
)

// Each example creates its primitives by name, as one process does, and
// opens them again, as other processes do (here in the same process, to
// keep the example short); the tests show the same across processes.

func Example() {
	// A struct in shared memory can hold the primitives as fields (see
	// package value); here they stand alone, by name.
	mu, err := xsync.CreateMutex("example-lock") // Python: Lock()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mu.Close()
	defer mu.Unlink()

	other, err := xsync.OpenMutex("example-lock") // in another process
	if err != nil {
		fmt.Println(err)
		return
	}
	defer other.Close()

	mu.Lock() // with lock:
	fmt.Println("locked:", other.Locked())
	mu.Unlock()
	// Output:
	// locked: true
}

func ExampleMutex() {
	// Python:
	//	lock = Lock()
	//	with lock:
	//	    ...
	//	lock.acquire(False)
	//	lock.acquire(timeout=0.01)
	m, err := xsync.CreateMutex("example-mutex")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	defer m.Unlink()

	func() {
		m.Lock()
		defer m.Unlock()
		// ... the work the lock guards ...
	}()

	// As a field of a struct in shared memory (see package value), the
	// zero Mutex is ready.
	var counter struct {
		Mu xsync.Mutex
		N  int64
	}
	counter.Mu.Lock()
	counter.N++
	counter.Mu.Unlock()

	fmt.Println("acquire(False):", m.TryLock())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err = m.LockContext(ctx) // held (by us): gives up when ctx ends
	fmt.Println("acquire(timeout=0.01):", err)
	m.Unlock()
	// Output:
	// acquire(False): true
	// acquire(timeout=0.01): context deadline exceeded
}

func ExampleMutex_LockContext_ownerDead() {
	// A process killed while it holds a lock leaves the lock to the next
	// locker, with ErrOwnerDead: the data the lock guards may be
	// half-updated, and the new holder repairs it.
	m, err := xsync.CreateMutex("example-owner-dead")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	defer m.Unlink()

	// A worker process (this program, re-executed) locks the mutex,
	// says so, and waits; it is killed while it holds the lock.
	worker := testproc.Command("example-lock-and-wait", "example-owner-dead")
	out, _ := worker.StdoutPipe()
	in, _ := worker.StdinPipe() // kept open: the worker waits on it
	defer in.Close()
	if err := worker.Start(); err != nil {
		fmt.Println(err)
		return
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	fmt.Print("worker: ", line)
	worker.Process.Kill()
	worker.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = m.LockContext(ctx)
	var dead *xsync.OwnerDeadError
	fmt.Println(errors.Is(err, xsync.ErrOwnerDead), errors.As(err, &dead) && dead.PID == worker.Process.Pid)
	m.Unlock()
	// Output:
	// worker: locked
	// true true
}

func init() {
	testproc.Register("example-lock-and-wait", func(args []string) error {
		m, err := xsync.OpenMutex(args[0])
		if err != nil {
			return err
		}
		m.Lock()
		testproc.Say("locked")
		return testproc.Await("never")
	})
}

func ExampleReentrantMutex() {
	// Python: RLock(). Its holder, one goroutine, may lock it again.
	r, err := xsync.CreateReentrantMutex("example-rlock")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	defer r.Unlink()

	var inStruct xsync.ReentrantMutex // the zero value is ready too
	var l sync.Locker = &inStruct     // both are sync.Lockers
	l.Lock()
	fmt.Println("held:", inStruct.Held())
	l.Unlock()

	r.Lock()
	r.Lock()
	fmt.Println("depth:", r.Depth())
	r.Unlock()
	r.Unlock()
	fmt.Println("locked:", r.Locked())
	// Output:
	// held: true
	// depth: 2
	// locked: false
}

func ExampleSemaphore() {
	// Python: BoundedSemaphore(2), by name...
	sem, err := xsync.CreateSemaphore("example-semaphore", 2, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sem.Close()
	defer sem.Unlink()

	// ...or Semaphore(1), as a field of a shared struct, set by Init.
	var field xsync.Semaphore
	if err := field.Init(1, false); err != nil {
		fmt.Println(err)
		return
	}

	fmt.Println(sem.TryAcquire(), sem.TryAcquire(), sem.TryAcquire()) // acquire(False) × 3
	fmt.Println("get_value:", sem.Value())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	fmt.Println("acquire(timeout=0.01):", sem.AcquireContext(ctx))
	fmt.Println(sem.Release(), sem.Release())
	fmt.Println("bounded:", errors.Is(sem.Release(), xsync.ErrOverRelease))
	// Output:
	// true true false
	// get_value: 0
	// acquire(timeout=0.01): context deadline exceeded
	// <nil> <nil>
	// bounded: true
}

func ExampleEvent() {
	// Python: Event(): set, clear, is_set, wait(timeout).
	ev, err := xsync.CreateEvent("example-event")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ev.Close()
	defer ev.Unlink()

	var field xsync.Event // as a field of a shared struct: clear
	fmt.Println("field set:", field.IsSet())

	done := make(chan error)
	go func() { // another process, waiting as long as it takes
		done <- ev.WaitContext(context.Background())
	}()
	ev.Set()
	fmt.Println("waiter:", <-done, "is_set:", ev.IsSet())
	ev.Clear()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	fmt.Println("wait(timeout=0.01):", ev.WaitContext(ctx))
	// Output:
	// field set: false
	// waiter: <nil> is_set: true
	// wait(timeout=0.01): context deadline exceeded
}

func ExampleCond() {
	// Python: a Condition with its lock, waiters checking a predicate
	// under it: wait, wait_for, notify(n), notify_all.
	type queue struct {
		Mu    xsync.Mutex
		Cond  xsync.Cond // used with Mu
		Items int
	}
	var q queue // would be a value.Value[queue] between processes
	named, err := xsync.CreateCond("example-cond")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer named.Close()
	defer named.Unlink()

	got := make(chan bool)
	for range 3 {
		go func() { // consumers: wait_for(lambda: items > 0)
			q.Mu.Lock()
			ok, _ := q.Cond.WaitFor(context.Background(), &q.Mu, func() bool { return q.Items > 0 })
			q.Items--
			q.Mu.Unlock()
			got <- ok
		}()
	}
	q.Mu.Lock()
	q.Items = 3
	q.Cond.Notify(2) // notify(2)
	q.Cond.Signal()  // notify()
	q.Mu.Unlock()
	fmt.Println(<-got, <-got, <-got)

	// cond.wait(timeout) on a named condition, which carries its mutex.
	named.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	fmt.Println("wait(timeout=0.01):", named.WaitContext(ctx))
	named.Broadcast() // notify_all(): nobody waits now
	named.Unlock()

	q.Mu.Lock()
	fmt.Println("items left:", q.Items, "waiting:", q.Cond.Waiting())
	q.Mu.Unlock()
	// Output:
	// true true true
	// wait(timeout=0.01): context deadline exceeded
	// items left: 0 waiting: 0
}

func ExampleBarrier() {
	// Python: Barrier(2, action, timeout): wait, abort, reset, broken,
	// n_waiting.
	b, err := xsync.CreateBarrier("example-barrier", 2, time.Minute)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	defer b.Unlink()

	var field xsync.Barrier // as a field of a shared struct: Init first
	if err := field.Init(1, 0); err != nil {
		fmt.Println(err)
		return
	}
	idx, err := field.Wait()
	fmt.Println("one party:", idx, err)

	action := func() error { // run once a round, by the last to arrive
		fmt.Println("action")
		return nil
	}
	done := make(chan int)
	go func() { // the other party
		i, _ := b.WaitFunc(context.Background(), action)
		done <- i
	}()
	i, err := b.WaitFunc(context.Background(), action)
	j := <-done
	fmt.Println("arrival indexes:", min(i, j), max(i, j), err)

	b.Abort() // abort(): every waiting and later Wait fails
	_, err = b.Wait()
	fmt.Println("broken:", b.Broken(), errors.Is(err, xsync.ErrBroken), "n_waiting:", b.Waiting())
	b.Reset() // reset()
	fmt.Println("broken after reset:", b.Broken())
	// Output:
	// one party: 0 <nil>
	// action
	// arrival indexes: 0 1 <nil>
	// broken: true true n_waiting: 0
	// broken after reset: false
}
