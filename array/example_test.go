package array_test

import (
	"errors"
	"fmt"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/shm"
)

func Example() {
	// One process creates the array (Python: Array('i', [...]))...
	a, err := array.CreateFrom("example-primes", []int32{2, 3, 5, 7, 11})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	defer a.Unlink()

	// ...others open it by name, with the same element type.
	b, err := array.Open[int32]("example-primes", 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	b.Set(0, 13)             // locked, like Python's a[0] = 13
	part := make([]int32, 2) // a[1:3], locked
	b.ReadAt(part, 1)
	fmt.Println(b.Len(), a.Get(0), part)

	// Opening with another length or element type is refused.
	_, err = array.Open[int32]("example-primes", 4)
	fmt.Println(errors.Is(err, shm.ErrLenMismatch))
	_, err = array.Open[uint32]("example-primes", 0)
	fmt.Println(errors.Is(err, shm.ErrTypeMismatch))
	// Output:
	// 5 13 [3 5]
	// true
	// true
}

func ExampleArray_Slice() {
	w, err := array.Create[float64]("example-weights", 4)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	defer w.Unlink()

	// Raw access at the speed of a Go slice, without the lock: what
	// hogwild-style workers in several processes do. Concurrent updates
	// of the same element may be lost.
	s := w.Slice()
	for step := range 3 {
		for i := range s {
			s[i] += 0.5 * float64(step)
		}
	}
	fmt.Println(s)
	// Output:
	// [1.5 1.5 1.5 1.5]
}

func ExampleArray_Add() {
	hist, err := array.Create[int64]("example-histogram", 4)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer hist.Close()
	defer hist.Unlink()

	// Lock-free and exact, from any number of processes.
	for _, x := range []int{3, 1, 3, 0, 3} {
		hist.Add(x, 1)
	}
	fmt.Println(hist.Slice())
	// Output:
	// [1 1 0 3]
}

func ExampleCreateShape() {
	grid, err := array.CreateShape[float32]("example-grid", []int{2, 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer grid.Close()
	defer grid.Unlink()

	grid.Set(grid.Index(1, 2), 7) // row 1, column 2, row-major
	fmt.Println(grid.Shape(), grid.Len(), grid.Slice())
	// Output:
	// [2 3] 6 [0 0 0 0 0 7]
}

func ExampleArray_Lock() {
	// Python:
	//	a = Array('d', 3)
	//	with a.get_lock():
	//	    a[2] = a[0] + a[1]
	a, err := array.Create[float64]("example-sums", 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	defer a.Unlink()

	a.Set(0, 1.5) // a[0] = 1.5, locked
	a.Set(1, 2)
	a.Lock() // the holder's Get and Set do not take the lock again
	a.Set(2, a.Get(0)+a.Get(1))
	a.Unlock()
	fmt.Println(a.Get(2))
	// Output:
	// 3.5
}
