//go:build linux

package pool_test

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/xproc-go/xproc/pool"
	"github.com/xproc-go/xproc/process"
)

// cube is registered at package initialisation, as every function the
// workers run must be: they are this program started again.
var cube = process.Register("pool-example-cube", func(ctx context.Context, x int) (int, error) {
	return x * x * x, nil
})

// setup is an initializer: each worker runs it once, before any task.
var setup = process.Register("pool-example-setup", func(ctx context.Context, greeting string) (struct{}, error) {
	return struct{}{}, nil
})

// Python's Pool(2, initializer, initargs, maxtasksperchild) and
// pool.map(f, xs).
func ExampleMap() {
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Workers(2), pool.Initializer(setup, "hello"), pool.MaxTasksPerChild(100))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(ctx)
	cubes, err := pool.Map(ctx, p, cube, []int{1, 2, 3, 4})
	fmt.Println(cubes, err)
	// Output: [1 8 27 64] <nil>
}

// Python's pool.imap(f, xs) and pool.imap_unordered(f, xs): results as
// they come, from an iterator that may be endless.
func ExampleImap() {
	ctx := context.Background()
	p, _ := pool.New(ctx, pool.Workers(2))
	defer p.Close(ctx)
	for y, err := range pool.Imap(ctx, p, cube, slices.Values([]int{1, 2, 3})) {
		fmt.Println(y, err)
	}
	var any []int
	for y := range pool.ImapUnordered(ctx, p, cube, slices.Values([]int{1, 2, 3})) {
		any = append(any, y)
	}
	slices.Sort(any)
	fmt.Println(any)
	// Output:
	// 1 <nil>
	// 8 <nil>
	// 27 <nil>
	// [1 8 27]
}

var add = pool.Register2("pool-example-add", func(ctx context.Context, a, b int) (int, error) { return a + b, nil })

// Python's pool.starmap(f, [(a, b), ...]), beside pool.map(f, xs).
func ExampleStarmap() {
	ctx := context.Background()
	p, _ := pool.New(ctx, pool.Workers(2))
	defer p.Close(ctx)
	sums, err := pool.Starmap(ctx, p, add, []pool.Pair[int, int]{{A: 1, B: 2}, {A: 3, B: 4}})
	fmt.Println(sums, err)
	cubes, err := pool.Map(ctx, p, cube, []int{3, 7})
	fmt.Println(cubes, err)
	// Output:
	// [3 7] <nil>
	// [27 343] <nil>
}

// Python's pool.apply(f, (x,)) and pool.apply_async(f, (x,)).get().
func ExampleApplyAsync() {
	ctx := context.Background()
	p, _ := pool.New(ctx, pool.Workers(2))
	defer p.Close(ctx)
	y, err := pool.Apply(ctx, p, cube, 5)
	fmt.Println(y, err)
	fut := pool.ApplyAsync(ctx, p, cube, 6)
	y, err = fut.Wait(ctx)
	fmt.Println(y, err)
	// Output:
	// 125 <nil>
	// 216 <nil>
}

// Python's pool.map_async(f, xs).get(), and starmap_async.
func ExampleMapAsync() {
	ctx := context.Background()
	p, _ := pool.New(ctx, pool.Workers(2))
	defer p.Close(ctx)
	cubes := pool.MapAsync(ctx, p, cube, []int{1, 2, 3})
	sums := pool.MapAsync(ctx, p, add, []pool.Pair[int, int]{{A: 1, B: 2}, {A: 3, B: 4}})
	fmt.Println(cubes.Wait(ctx))
	fmt.Println(sums.Wait(ctx))
	// Output:
	// [1 8 27] <nil>
	// [3 7] <nil>
}

// Python's pool.close() and pool.join(), or pool.terminate(): after
// either, no worker process is left.
func ExamplePool_Close() {
	ctx := context.Background()
	p, _ := pool.New(ctx, pool.Workers(2))
	fmt.Println(len(p.Pids()), "workers")
	fmt.Println(p.Close(ctx))
	q, _ := pool.New(ctx, pool.Workers(1))
	fmt.Println(q.Terminate())
	_, err := pool.Apply(ctx, q, cube, 2)
	fmt.Println(err)
	// Output:
	// 2 workers
	// <nil>
	// <nil>
	// pool: closed
}

// joblib's Parallel(n_jobs=-1, verbose=10)(delayed(f)(x) for x in xs):
// every CPU (Workers(-1)), progress lines on standard error.
func Example_joblib() {
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Workers(-1), pool.Verbose(os.Stderr))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(ctx)
	ys, err := pool.Map(ctx, p, cube, []int{1, 2, 3, 4, 5})
	fmt.Println(ys, err)
	// Output: [1 8 27 64 125] <nil>
}
