package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"golang.org/x/term"

	"github.com/xproc-go/xproc/pool"
	"github.com/xproc-go/xproc/process"
)

// The first Pool programs of Python's multiprocessing tutorials: squares,
// Monte Carlo π split into blocks,
// and a worker killed on purpose in the middle of a task.

var (
	demoSquare = process.Register("xproc.demo.square", func(ctx context.Context, x int64) (int64, error) {
		return x * x, nil
	})
	demoPiBlock = process.Register("xproc.demo.pi", func(ctx context.Context, b piBlock) (int64, error) {
		return sample(b.N, b.Seed, nil), nil
	})
	// demoVictim says which worker runs it, on its standard output, and
	// runs until it is killed. It shares no segment with the demo: a
	// pool's tasks cannot be handed files (no anonymous segment reaches
	// them), and a named one would outlive a demo killed meanwhile.
	demoVictim = process.Register("xproc.demo.victim", func(ctx context.Context, _ struct{}) (int64, error) {
		fmt.Printf("%s%d\n", victimPrefix, os.Getpid())
		<-ctx.Done() // until it is killed
		return 0, ctx.Err()
	})
)

// victimPrefix starts the line in which demoVictim gives its pid.
const victimPrefix = "xproc demo victim: pid "

// victimWatch is the pool's standard output in the demo: it takes the
// pids demoVictim announces and passes every other line to w. The pool
// serialises the workers' writes.
type victimWatch struct {
	w    io.Writer
	pids chan int
	line []byte
}

func (v *victimWatch) Write(b []byte) (int, error) {
	v.line = append(v.line, b...)
	for {
		i := bytes.IndexByte(v.line, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := v.line[:i+1]
		if rest, ok := bytes.CutPrefix(line, []byte(victimPrefix)); ok {
			if pid, err := strconv.Atoi(string(bytes.TrimSpace(rest))); err == nil {
				select {
				case v.pids <- pid:
				default:
				}
			}
		} else if _, err := v.w.Write(line); err != nil {
			return len(b), err
		}
		v.line = v.line[i+1:]
	}
}

type piBlock struct {
	N    int64
	Seed uint64
}

func demoPool(w io.Writer, p demoParams) error {
	ctx, cancel := context.WithTimeout(context.Background(), demoTimeout)
	defer cancel()
	victims := &victimWatch{w: os.Stderr, pids: make(chan int, 1)}
	opts := []pool.Option{pool.Workers(0), pool.Stdout(victims)}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		opts = append(opts, pool.ProgressBar())
	}
	start := time.Now()
	pl, err := pool.New(ctx, opts...)
	if err != nil {
		return err
	}
	defer pl.Terminate()
	ready := time.Since(start)
	fmt.Fprintf(w, "5. Pool: %d worker processes (process.CPUCount), ready in %v\n", pl.Workers(), round(ready))

	// Squares: map(square, range(n)), batched automatically.
	n := max(p.tasks, 1)
	xs := make([]int64, n)
	for i := range xs {
		xs[i] = int64(i)
	}
	var ys []int64
	took := timeIt(func() { ys, err = pool.Map(ctx, pl, demoSquare, xs) })
	if err != nil {
		return err
	}
	ok := ys[n-1] == int64(n-1)*int64(n-1) && ys[n/2] == int64(n/2)*int64(n/2)
	fmt.Fprintf(w, "   map(square, range(%d)): %s in %v (%.1f M tasks/s)\n", n, verdict(ok), round(took), rate(int64(n), took))

	// Monte Carlo π: one block per worker against the same in this process.
	per := int64(p.samples / pl.Workers())
	blocks := make([]piBlock, pl.Workers())
	for i := range blocks {
		blocks[i] = piBlock{per, uint64(i) + 2}
	}
	var hits []int64
	pooled := timeIt(func() { hits, err = pool.Map(ctx, pl, demoPiBlock, blocks) })
	if err != nil {
		return err
	}
	var in int64
	for _, h := range hits {
		in += h
	}
	one := timeIt(func() {
		for _, b := range blocks {
			sample(b.N, b.Seed, nil)
		}
	})
	total := per * int64(len(blocks))
	fmt.Fprintf(w, "   Monte Carlo π over %d blocks: π ≈ %.6f; %v on the pool, %v in one process: speed-up %.2f×\n",
		len(blocks), 4*float64(in)/float64(total), round(pooled), round(one), one.Seconds()/pooled.Seconds())

	// A worker killed with SIGKILL in the middle of a task.
	fut := pool.ApplyAsync(ctx, pl, demoVictim, struct{}{})
	var pid int
	select {
	case pid = <-victims.pids:
	case <-fut.Done():
		_, err := fut.Wait(ctx)
		return fmt.Errorf("pool: the task to kill ended before it was killed: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	victim, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	killed := time.Now()
	if err := victim.Kill(); err != nil {
		return err
	}
	_, err = fut.Wait(ctx)
	seen := time.Since(killed)
	if !errors.Is(err, pool.ErrWorkerDied) {
		return fmt.Errorf("pool: killed worker: got %v, want ErrWorkerDied", err)
	}
	fmt.Fprintf(w, "   worker %d killed in the middle of a task: the task failed in %v with\n      %v\n", pid, round(seen), err)
	more := xs[:min(n, 1000)]
	ys, err = pool.Map(ctx, pl, demoSquare, more)
	if err != nil {
		return err
	}
	last := int64(len(more) - 1)
	fmt.Fprintf(w, "   the pool went on: %d more squares %s; workers now %v (pid %d replaced: %v)\n",
		len(more), verdict(ys[last] == last*last), pl.Pids(), pid, !slices.Contains(pl.Pids(), pid))
	return pl.Close(ctx)
}

// poolRows returns xproc bench's rows for package pool, the figures
// Python's Pool is compared with (bench/python_pool.py): start-up, tiny
// tasks batched automatically and one per message, and Monte Carlo π's
// speed-up on 2 workers.
func poolRows() []benchRow {
	ctx := context.Background()
	withPool := func(opts []pool.Option, f func(p *pool.Pool) (measurement, error)) (measurement, error) {
		p, err := pool.New(ctx, append([]pool.Option{pool.Workers(2)}, opts...)...)
		if err != nil {
			return measurement{}, err
		}
		defer p.Terminate()
		return f(p)
	}
	squares := func(opts ...pool.Option) func(n int) (measurement, error) {
		return func(n int) (measurement, error) {
			return withPool(opts, func(p *pool.Pool) (measurement, error) {
				xs := make([]int64, n)
				for i := range xs {
					xs[i] = int64(i)
				}
				var ys []int64
				var err error
				took := timeIt(func() { ys, err = pool.Map(ctx, p, demoSquare, xs) })
				if err != nil {
					return measurement{}, err
				}
				if ys[n-1] != int64(n-1)*int64(n-1) {
					return measurement{}, errors.New("wrong result")
				}
				return measurement{value: float64(n) / took.Seconds() / 1e6, took: took}, nil
			})
		}
	}
	return []benchRow{
		{name: "pool-ready", units: "ms", what: "pool.New with 2 workers until both run (Python's Pool(2): bench/pool-vs-python.txt)",
			run: func(n int) (measurement, error) {
				var ds []time.Duration
				var total time.Duration
				for range max(1, n/1000) {
					start := time.Now()
					p, err := pool.New(ctx, pool.Workers(2))
					d := time.Since(start)
					if err != nil {
						return measurement{}, err
					}
					p.Terminate()
					ds = append(ds, d)
					total += d
				}
				slices.Sort(ds)
				return measurement{value: float64(ds[len(ds)/2].Microseconds()) / 1e3, took: total}, nil
			}},
		{name: "pool-map-auto", units: "M tasks/s", what: "pool.Map of tiny tasks on 2 workers, batched automatically", run: squares()},
		{name: "pool-map-chunk1", units: "M tasks/s", what: "pool.Map, one task per message (ChunkSize(1))", run: squares(pool.ChunkSize(1))},
		{name: "pool-pi-speedup", units: "×", what: "Monte Carlo π in 2 blocks: one process's time over the pool's (2 workers)",
			run: func(n int) (measurement, error) {
				return withPool(nil, func(p *pool.Pool) (measurement, error) {
					per := int64(n) * 1000
					blocks := []piBlock{{per, 2}, {per, 3}}
					var err error
					pooled := timeIt(func() { _, err = pool.Map(ctx, p, demoPiBlock, blocks) })
					if err != nil {
						return measurement{}, err
					}
					one := timeIt(func() {
						for _, b := range blocks {
							sample(b.N, b.Seed, nil)
						}
					})
					return measurement{value: one.Seconds() / pooled.Seconds(), took: pooled + one}, nil
				})
			}},
	}
}
