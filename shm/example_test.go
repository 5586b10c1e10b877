//go:build linux

package shm_test

import (
	"fmt"

	"github.com/xproc-go/xproc/shm"
)

func Example() {
	// Python: shared_memory.SharedMemory(name, create=True, size=...),
	// with a header that says what the segment holds.
	ty, err := shm.TypeOf[uint32]()
	if err != nil {
		fmt.Println(err)
		return
	}
	spec := shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 4}
	seg, err := shm.Create("example-segment", spec)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer seg.Close()
	defer seg.Unlink()
	words, err := shm.Slice[uint32](seg, 0, 4)
	if err != nil {
		fmt.Println(err)
		return
	}
	words[3] = 42

	// Python: shared_memory.SharedMemory(name), in another process. The
	// header is checked against what the opener expects.
	other, err := shm.Open("example-segment", spec)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer other.Close()
	theirs, err := shm.Slice[uint32](other, 0, 4)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(theirs, other.Type().Name, other.Kind())
	// Output:
	// [0 0 0 42] uint32 raw
}
