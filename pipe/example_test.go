package pipe_test

import (
	"context"
	"errors"
	"fmt"
	"io"

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

// Python's recv_bytes_into, poll and EOFError: a message that does not fit
// the buffer stays in the pipe, as Python's BufferTooShort.
func ExampleEnd_RecvInto() {
	ctx := context.Background()
	a, _ := pipe.Create("example-pipe-into", pipe.Options{})
	defer a.Unlink()
	b, _ := pipe.Open("example-pipe-into")
	defer b.Close()

	a.Send(ctx, []byte("hello, world"))
	ready, _ := b.Poll(ctx)
	fmt.Println("poll:", ready)
	small := make([]byte, 4)
	_, err := b.RecvInto(ctx, small)
	var short *pipe.ShortBufferError
	fmt.Println("too small:", errors.As(err, &short))
	buf := make([]byte, 64)
	n, _ := b.RecvInto(ctx, buf)
	fmt.Printf("%q\n", buf[:n])
	a.Close()
	_, err = b.Recv(ctx)
	fmt.Println("after close:", errors.Is(err, io.EOF))
	// Output:
	// poll: true
	// too small: true
	// "hello, world"
	// after close: true
}

// A one-way pipe, as Python's Pipe(duplex=False): the end made by Create
// sends, the other receives; the wrong direction is an error at once.
func ExampleOptions_direction() {
	ctx := context.Background()
	send, _ := pipe.Create("example-pipe-oneway", pipe.Options{Direction: pipe.CreatorSends})
	defer send.Unlink()
	defer send.Close()
	recv, _ := pipe.Open("example-pipe-oneway")
	defer recv.Close()

	send.Send(ctx, []byte("ping"))
	msg, _ := recv.Recv(ctx)
	fmt.Println(string(msg))
	err := recv.Send(ctx, []byte("pong"))
	fmt.Println(errors.Is(err, pipe.ErrDirection))
	// Output:
	// ping
	// true
}
