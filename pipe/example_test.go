package pipe_test

import (
	"context"
	"fmt"

	"github.com/xproc-go/xproc/pipe"
)

// The two ends of a pipe; in real use the second is taken by another
// process with pipe.Open("example-pipe").
func Example() {
	ctx := context.Background()
	a, err := pipe.Create("example-pipe", pipe.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Unlink()
	b, _ := pipe.Open("example-pipe")

	for _, m := range []string{"a", "b", "cd"} {
		a.Send(ctx, []byte(m))
	}
	a.Close()
	for {
		msg, err := b.Recv(ctx)
		if err != nil {
			fmt.Println(err) // io.EOF: a closed and everything was read
			break
		}
		fmt.Printf("%q\n", msg)
	}
	b.Close()
	// Output:
	// "a"
	// "b"
	// "cd"
	// EOF
}
