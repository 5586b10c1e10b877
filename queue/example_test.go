package queue_test

import (
	"context"
	"errors"
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
	// DeadConsumer names the consumer whose death sent the message back
	// (0: it came back by a Nak).
	fmt.Println(string(l.Data()), "delivery", l.NumDelivered(), "redelivered", l.Redelivered(), "dead consumer", l.DeadConsumer())
	l.Ack()
	fmt.Println(q.Len(), "left")
	// Output:
	// task 1 delivery 1
	// task 1 delivery 2 redelivered true dead consumer 0
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

// A bounded queue: Python's put_nowait, get_nowait and qsize.
func ExampleQueue_TryPut() {
	q, _ := queue.Create("example-bounded", queue.Options{MaxMessages: 2})
	defer q.Close()
	defer q.Unlink()
	for _, m := range []string{"a", "b", "c"} {
		if err := q.TryPut([]byte(m)); errors.Is(err, queue.ErrFull) {
			fmt.Println(m, "refused: full")
		}
	}
	fmt.Println("len", q.Len())
	for {
		msg, err := q.TryGet()
		if errors.Is(err, queue.ErrEmpty) {
			fmt.Println("empty")
			break
		}
		fmt.Println(string(msg))
	}
	// Output:
	// c refused: full
	// len 2
	// a
	// b
	// empty
}

// JoinableQueue: the producer waits until every message put has been
// marked done; then the queue is shut down.
func ExampleQueue_Join() {
	ctx := context.Background()
	q, _ := queue.Create("example-join", queue.Options{})
	defer q.Close()
	defer q.Unlink()
	for i := range 3 {
		q.Put(ctx, []byte{byte(i)})
	}
	done := 0
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for {
			if _, err := q.Get(ctx); err != nil {
				return // shut down
			}
			done++
			q.TaskDone()
		}
	}()
	if err := q.Join(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println("all done:", done)
	q.Shutdown(false)
	<-consumed // the consumer has seen ErrShutdown before the queue is closed
	// Output: all done: 3
}

// Python pickles what it puts in a queue; here a fixed-size value goes as
// its bytes (queue.Of), any other through a Codec (gob by default, JSON,
// or your own).
func ExampleWithCodec_json() {
	type point struct{ X, Y int32 }
	type label struct {
		Name string
		Tags []string
	}
	ctx := context.Background()
	var points *queue.Of[point]
	points, _ = queue.CreateOf[point]("example-typed-points", queue.Options{})
	defer points.Close()
	defer points.Queue().Unlink()
	raw, _ := queue.Create("example-typed-labels", queue.Options{})
	defer raw.Close()
	defer raw.Unlink()
	var codec queue.Codec = queue.JSONCodec
	labels := queue.WithCodec[label](raw, codec)

	points.Put(ctx, point{3, 4})
	labels.Put(ctx, label{"origin", []string{"fixed"}})
	p, _ := points.Get(ctx)
	l, _ := labels.Get(ctx)
	fmt.Println(p, l.Name, l.Tags)
	// Output: {3 4} origin [fixed]
}

// Python's SimpleQueue: put, get and empty(). A Queue is the same thing
// (a queue nobody joins costs nothing more).
func Example_simpleQueue() {
	ctx := context.Background()
	q, err := queue.Create("example-simple", queue.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	defer q.Unlink()
	fmt.Println("empty:", q.Len() == 0)
	q.Put(ctx, []byte("hello"))
	fmt.Println("empty:", q.Len() == 0)
	msg, _ := q.Get(ctx)
	fmt.Println(string(msg), "empty:", q.Len() == 0)
	// Output:
	// empty: true
	// empty: false
	// hello empty: true
}
