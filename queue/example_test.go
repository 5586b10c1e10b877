package queue_test

import (
	"context"
	"fmt"

	"github.com/xproc-go/xproc/queue"
)

// A producer and a consumer; in real use they are separate processes,
// the consumer calling queue.Open("example-jobs").
func Example() {
	ctx := context.Background()
	q, err := queue.Create("example-jobs", queue.Options{MaxMessages: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	defer q.Unlink()

	for _, job := range []string{"resize a.png", "resize b.png"} {
		if err := q.Put(ctx, []byte(job)); err != nil {
			fmt.Println(err)
		}
	}
	q.Shutdown(false) // no more jobs: consumers stop once they have all
	for {
		msg, err := q.Get(ctx)
		if err != nil {
			fmt.Println("done:", err)
			break
		}
		fmt.Println(string(msg))
	}
	// Output:
	// resize a.png
	// resize b.png
	// done: queue: get example-jobs: queue shut down
}

// A lease is acknowledged once the work is done; if the consumer dies
// first, the message goes back to the queue for another consumer.
func ExampleQueue_GetLease() {
	ctx := context.Background()
	q, _ := queue.Create("example-lease", queue.Options{})
	defer q.Close()
	defer q.Unlink()
	q.Put(ctx, []byte("task 1"))

	l, _ := q.GetLease(ctx)
	fmt.Println(string(l.Data()), "delivery", l.NumDelivered())
	l.Nak() // put it back: say the work failed

	l, _ = q.GetLease(ctx)
	fmt.Println(string(l.Data()), "delivery", l.NumDelivered(), "redelivered", l.Redelivered())
	l.Ack()
	fmt.Println(q.Len(), "left")
	// Output:
	// task 1 delivery 1
	// task 1 delivery 2 redelivered true
	// 0 left
}

// Fixed-size values travel as their bytes.
func ExampleOf() {
	type point struct{ X, Y float64 }
	ctx := context.Background()
	q, _ := queue.CreateOf[point]("example-points", queue.Options{})
	defer q.Close()
	defer q.Queue().Unlink()
	q.Put(ctx, point{1, 2})
	p, _ := q.Get(ctx)
	fmt.Println(p)
	// Output: {1 2}
}

// Any Go value travels through a codec, gob by default, as Python
// pickles objects.
func ExampleWithCodec() {
	type order struct {
		ID    int
		Items map[string]int
	}
	ctx := context.Background()
	raw, _ := queue.Create("example-orders", queue.Options{})
	defer raw.Close()
	defer raw.Unlink()
	q := queue.WithCodec[order](raw, nil)
	q.Put(ctx, order{ID: 7, Items: map[string]int{"tea": 2}})
	o, _ := q.Get(ctx)
	fmt.Println(o.ID, o.Items["tea"])
	// Output: 7 2
}
