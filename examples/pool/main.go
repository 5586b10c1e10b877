// Command pool is the first Pool programs of Python's multiprocessing
// tutorials, in Go: square numbers in a
// pool of worker processes, then normalise a large array that the
// workers share by name (big data is shared, not sent), with a progress
// bar on a terminal.
//
//	go run ./examples/pool
package main

import (
	"context"
	"fmt"
	"log"
	"math"
	"os"
	"os/signal"
	"syscall"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/pool"
	"github.com/xproc-go/xproc/process"
)

// Functions the workers run are registered at package initialisation:
// the workers are this program started again, and look them up by name.
var (
	square = process.Register("example.square", func(ctx context.Context, x int) (int, error) {
		return x * x, nil
	})
	// normalise scales one span of the shared array to unit length
	// blocks. The array travels by name, not through the queue.
	normalise = process.Register("example.normalise", func(ctx context.Context, s span) (float64, error) {
		data, err := array.Open[float64](s.Array, 0)
		if err != nil {
			return 0, err
		}
		defer data.Close()
		xs := data.Slice()[s.From:s.To] // each task owns its span: no lock
		var norm float64
		for _, x := range xs {
			norm += x * x
		}
		norm = math.Sqrt(norm)
		if norm == 0 {
			return 0, fmt.Errorf("span %d-%d is zero: it has no direction", s.From, s.To)
		}
		for i := range xs {
			xs[i] /= norm
		}
		return norm, nil
	})
)

// span is a task's part of the shared array, which it names. (It holds a
// string, so it travels with encoding/gob; a struct of numbers would go
// as raw bytes.)
type span struct {
	Array    string
	From, To int
}

const (
	n     = 1 << 20
	spans = 64
)

func main() {
	process.Init() // in a worker: runs the task it was started for, and exits
	// Ctrl-C ends the calls under way, and run cleans up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, func(i int) float64 { return float64(i%spans + 1) })
	if err != nil {
		log.Fatal(err) // run has cleaned up: log.Fatal skips deferred calls
	}
}

// run does the work on an array whose element i starts as fill(i). It
// cleans up on every way out, an error or a panic: the shared array is
// unlinked and the pool closed (log.Fatal or os.Exit in here would skip
// that, and leave the array's name behind in /dev/shm).
func run(ctx context.Context, fill func(i int) float64) (err error) {
	p, err := pool.New(ctx, pool.Workers(-1), pool.ProgressBar()) // every CPU, as joblib's n_jobs=-1
	if err != nil {
		return err
	}
	defer func() {
		if cerr := p.Close(ctx); err == nil {
			err = cerr
		}
	}()

	squares, err := pool.Map(ctx, p, square, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	if err != nil {
		return err
	}
	fmt.Println("squares:", squares)

	name := fmt.Sprintf("example-pool-%d", os.Getpid())
	data, err := array.CreateFunc(name, n, func(xs []float64) error {
		for i := range xs {
			xs[i] = fill(i)
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer data.Close()
	defer data.Unlink()
	var tasks []span
	for i := range spans {
		tasks = append(tasks, span{name, i * n / spans, (i + 1) * n / spans})
	}
	norms, err := pool.Map(ctx, p, normalise, tasks)
	if err != nil {
		return err
	}
	var sum float64
	for _, x := range data.Slice()[:n/spans] {
		sum += x * x
	}
	fmt.Printf("%d spans of %d float64s normalised in %d worker processes: first norm %.1f, the first span now has length %.3f\n",
		len(norms), n/spans, p.Workers(), norms[0], math.Sqrt(sum))
	return nil
}
