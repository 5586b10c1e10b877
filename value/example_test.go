package value_test

import (
	"errors"
	"fmt"

	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
	"github.com/xproc-go/xproc/value"
)

func Example() {
	// One process creates the value (Python: Value('d', 20.5))...
	v, err := value.Create("example-temperature", 20.5)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()
	defer v.Unlink()

	// ...any other process opens it by name, with the same type.
	w, err := value.Open[float64]("example-temperature")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()

	w.Update(func(t *float64) { *t += 1.5 }) // with v.get_lock(): v.value += 1.5
	fmt.Println(v.Load())                    // v.value
	v.Store(-3)                              // v.value = -3
	fmt.Println(w.Load())

	// Opening with another type is refused.
	_, err = value.Open[int64]("example-temperature")
	fmt.Println(errors.Is(err, shm.ErrTypeMismatch))
	// Output:
	// 22
	// -3
	// true
}

func ExampleValue_Add() {
	hits, err := value.Create[int64]("example-hits", 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer hits.Close()
	defer hits.Unlink()

	// Lock-free: one atomic instruction, in any number of processes.
	hits.Add(1)
	hits.Add(41)
	fmt.Println(hits.AtomicLoad())
	fmt.Println(hits.CompareAndSwap(42, 0), hits.AtomicLoad())
	// Output:
	// 42
	// true 0
}

func ExampleValue_Lock() {
	type account struct{ Balance, Version int64 }
	acct, err := value.Create("example-account", account{Balance: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer acct.Close()
	defer acct.Unlink()

	// Python:
	//	with acct.get_lock():
	//	    if acct.value.balance >= 30: ...
	// Several steps as one, under the value's lock. The goroutine that
	// holds it may Load and Store: they do not take it again.
	acct.Lock()
	if a := acct.Load(); a.Balance >= 30 {
		acct.Store(account{Balance: a.Balance - 30, Version: a.Version + 1})
		acct.Update(func(a *account) { a.Version *= 10 })
	}
	acct.Unlock()
	fmt.Printf("%+v\n", acct.Load())
	// Output:
	// {Balance:70 Version:10}
}

func ExampleValue_Ptr() {
	// Python: RawValue, or Value(lock=False): no lock at all.
	type stats struct{ Hits, Misses int64 }
	s, err := value.Create("example-stats", stats{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	defer s.Unlink()

	p := s.Ptr() // raw: fine for one writer, racy for several
	p.Hits, p.Misses = 10, 2
	fmt.Printf("%+v\n", *p)

	// Counters that several processes bump: atomics, still without a lock.
	n, err := value.Create[int64]("example-counter", 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer n.Close()
	defer n.Unlink()
	n.Add(5)
	fmt.Println(n.CompareAndSwap(5, 7), n.AtomicLoad())
	// Output:
	// {Hits:10 Misses:2}
	// true 7
}

func ExampleCreateFunc() {
	// A struct of locks and counters shared by processes, initialised in
	// place before any other process can open it: no lock is copied, and
	// the Semaphore is never seen uninitialised.
	type pool struct {
		Slots xsync.Semaphore // at most 2 workers inside at once
		Mu    xsync.Mutex     // guards Done
		Done  int64
	}
	p, err := value.CreateFunc("example-pool", func(p *pool) error {
		return p.Slots.Init(2, true)
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	defer p.Unlink()

	// In each worker process: value.Open[pool]("example-pool"), then:
	w := p.Ptr()
	w.Slots.Acquire()
	w.Mu.Lock()
	w.Done++
	w.Mu.Unlock()
	w.Slots.Release()
	fmt.Println(w.Slots.Value(), w.Done)
	// Output:
	// 2 1
}
