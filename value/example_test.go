package value_test

import (
	"errors"
	"fmt"

	"github.com/xproc-go/xproc/shm"
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
	fmt.Println(v.Load())

	// Opening with another type is refused.
	_, err = value.Open[int64]("example-temperature")
	fmt.Println(errors.Is(err, shm.ErrTypeMismatch))
	// Output:
	// 22
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
	}
	acct.Unlock()
	fmt.Printf("%+v\n", acct.Load())
	// Output:
	// {Balance:70 Version:1}
}
