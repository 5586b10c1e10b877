//go:build linux

package pool_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xproc-go/xproc/pool"
	"github.com/xproc-go/xproc/process"
)

// Benchmarks of the pool against the figures of Python's Pool
// (bench/python_pool.py, measured on the same machine): start-up, many
// tiny tasks batched automatically, one task per message, and the
// lessons' Monte Carlo π split over two workers. Each checks its results.

// piBlock counts the samples of one block that fall in the quarter
// circle: the lessons' Monte Carlo π.
var piBlock = process.Register("pool-bench-pi", func(ctx context.Context, b piArgs) (int64, error) {
	return samplePi(b.Seed, b.N), nil
})

type piArgs struct {
	Seed uint64
	N    int64
}

func samplePi(seed uint64, n int64) int64 {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	var in int64
	for range n {
		x, y := r.Float64(), r.Float64()
		if x*x+y*y <= 1 {
			in++
		}
	}
	return in
}

// BenchmarkReady measures New with 2 workers until both run (ms/op),
// Python's Pool(2) being ready.
func BenchmarkReady(b *testing.B) {
	ctx := context.Background()
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		p, err := pool.New(ctx, pool.Workers(2))
		d := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		p.Terminate()
		b.StartTimer()
		ds = append(ds, d)
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1e3, "ms-median")
}

func benchMap(b *testing.B, n int, opts ...pool.Option) {
	ctx := context.Background()
	p, err := pool.New(ctx, append([]pool.Option{pool.Workers(2)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Terminate()
	xs := ints(n)
	for b.Loop() {
		ys, err := pool.Map(ctx, p, square, xs)
		if err != nil {
			b.Fatal(err)
		}
		if ys[n-1] != (n-1)*(n-1) || ys[n/2] != (n/2)*(n/2) {
			b.Fatal("wrong result")
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mtasks/s")
}

// BenchmarkMapAuto: Map of 200,000 tiny tasks on 2 workers, batched
// automatically (Python: pool.map with its default chunking).
func BenchmarkMapAuto(b *testing.B) { benchMap(b, 200_000) }

// BenchmarkMapChunk1: one task per message (Python: chunksize=1).
func BenchmarkMapChunk1(b *testing.B) { benchMap(b, 20_000, pool.ChunkSize(1)) }

// BenchmarkImapChunk1: Imap, one task per message.
func BenchmarkImapChunk1(b *testing.B) { benchImap(b, 20_000, pool.ChunkSize(1)) }

// BenchmarkImapAuto: Imap of 200,000 tiny tasks on 2 workers, batched
// automatically, its input an iterator (Python: pool.imap with a
// chunksize, which it has no automatic one for).
func BenchmarkImapAuto(b *testing.B) { benchImap(b, 200_000) }

// benchImap measures Imap of n tiny tasks on 2 workers, in tasks/s,
// checking every result and its order.
func benchImap(b *testing.B, n int, opts ...pool.Option) {
	ctx := context.Background()
	p, err := pool.New(ctx, append([]pool.Option{pool.Workers(2)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Terminate()
	for b.Loop() {
		i := 0
		for y, err := range pool.Imap(ctx, p, square, slices.Values(ints(n))) {
			if err != nil || y != i*i {
				b.Fatal("wrong result", err)
			}
			i++
		}
		if i != n {
			b.Fatal("missing results")
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mtasks/s")
}

// BenchmarkPi: the lessons' Monte Carlo π, 2 blocks of 20,000,000 samples
// on 2 workers, the same samples in this process one block after the
// other, and in 2 goroutines of this process (what the 2 cores allow
// without processes). It reports the speed-ups over one process of the
// pool and of the goroutines.
func BenchmarkPi(b *testing.B) {
	ctx := context.Background()
	p, err := pool.New(ctx, pool.Workers(2))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Terminate()
	blocks := []piArgs{{1000, 20_000_000}, {1001, 20_000_000}}
	var pooled, one, goroutines time.Duration
	for b.Loop() {
		start := time.Now()
		ins, err := pool.Map(ctx, p, piBlock, blocks)
		pooled += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		for i, blk := range blocks {
			if samplePi(blk.Seed, blk.N) != ins[i] {
				b.Fatal("the pool's count differs from this process's")
			}
		}
		one += time.Since(start)
		start = time.Now()
		counts := make([]int64, len(blocks))
		var wg sync.WaitGroup
		for i, blk := range blocks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				counts[i] = samplePi(blk.Seed, blk.N)
			}()
		}
		wg.Wait()
		goroutines += time.Since(start)
		if !slices.Equal(counts, ins) {
			b.Fatal("the goroutines' counts differ from the pool's")
		}
	}
	b.ReportMetric(one.Seconds()/pooled.Seconds(), "speedup")
	b.ReportMetric(one.Seconds()/goroutines.Seconds(), "speedup-goroutines")
	b.ReportMetric(pooled.Seconds()*1e3/float64(b.N), "ms-pool")
	b.ReportMetric(goroutines.Seconds()*1e3/float64(b.N), "ms-goroutines")
	b.ReportMetric(one.Seconds()*1e3/float64(b.N), "ms-one")
}
