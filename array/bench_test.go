package array_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/testproc"
	xsync "github.com/xproc-go/xproc/sync"
	"github.com/xproc-go/xproc/value"
)

// sliceLen is the length of the arrays of the Slice and hogwild
// benchmarks: 1M float64s, 8 MiB.
const sliceLen = 1 << 20

func newArray[T any](b *testing.B, n int) *array.Array[T] {
	a, err := array.Create[T](testproc.Name(b), n)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	return a
}

// addOne is the loop of the Slice benchmarks: one pass over s.
func addOne(s []float64) {
	for i := range s {
		s[i]++
	}
}

// BenchmarkSliceLoop: passes over the Slice of a shared 1M-element
// float64 array, against the same passes over a private Go slice. The
// issue's target: shared within 10% of private.
func BenchmarkSliceLoop(b *testing.B) {
	run := func(b *testing.B, s []float64) {
		addOne(s) // fault the pages in before timing
		for b.Loop() {
			addOne(s)
		}
		if s[0] != float64(b.N+1) || s[len(s)-1] != float64(b.N+1) {
			b.Fatalf("elements %v, %v after %d passes", s[0], s[len(s)-1], b.N+1)
		}
		b.ReportMetric(float64(b.N)*float64(len(s))/b.Elapsed().Seconds()/1e9, "Gupdates/s")
	}
	b.Run("shared", func(b *testing.B) { run(b, newArray[float64](b, sliceLen).Slice()) })
	b.Run("private", func(b *testing.B) { run(b, make([]float64, sliceLen)) })
	// Alternating passes over the two, so that a noisy neighbour on a
	// shared machine slows both alike: reports the ratio of their times.
	b.Run("shared-vs-private", func(b *testing.B) {
		shared, private := newArray[float64](b, sliceLen).Slice(), make([]float64, sliceLen)
		addOne(shared)
		addOne(private)
		var ts, tp time.Duration
		for b.Loop() {
			t0 := time.Now()
			addOne(shared)
			t1 := time.Now()
			addOne(private)
			ts, tp = ts+t1.Sub(t0), tp+time.Since(t1)
		}
		if shared[0] != private[0] || shared[0] != float64(b.N+1) {
			b.Fatalf("elements %v, %v after %d passes", shared[0], private[0], b.N+1)
		}
		b.ReportMetric(float64(ts)/float64(tp), "shared/private")
	})
}

// hogShared is the control block of the hogwild benchmark, a Value
// shared by the two processes.
type hogShared struct {
	Start, Stop xsync.Barrier
}

// hogPasses does n passes adding 1 to every element of a, the plain way
// (through Slice) or the atomic way (Add).
func hogPasses(a *array.Array[float64], variant string, n int) {
	s := a.Slice()
	for range n {
		switch variant {
		case "plain":
			addOne(s)
		case "atomic":
			for i := range s {
				a.Add(i, 1)
			}
		}
	}
}

func init() {
	testproc.Register("array-hogwild", func(args []string) error {
		ctl, err := value.Open[hogShared](args[0])
		if err != nil {
			return err
		}
		defer ctl.Close()
		a, err := array.Open[float64](args[1], sliceLen)
		if err != nil {
			return err
		}
		defer a.Close()
		if _, err := ctl.Ptr().Start.Wait(); err != nil {
			return err
		}
		hogPasses(a, args[2], testproc.Atoi(args[3]))
		_, err = ctl.Ptr().Stop.Wait()
		return err
	})
}

// BenchmarkHogwild: two processes, this one and a child, each make b.N
// passes adding 1 to every element of a shared 1M-element float64 array,
// without a lock: plainly through Slice (hogwild: updates may be lost) or
// with the atomic Add (exact). Start-up is not timed: both meet at a
// barrier first. Reports element updates per second, both processes
// together; the target for the plain variant is 1G/s on 2 cores.
func BenchmarkHogwild(b *testing.B) {
	for _, variant := range []string{"plain", "atomic"} {
		b.Run(variant, func(b *testing.B) {
			ctlName, arrName := testproc.Name(b), testproc.Name(b)
			ctl, err := value.Create(ctlName, hogShared{})
			if err != nil {
				b.Fatal(err)
			}
			defer ctl.Close()
			for _, bar := range []*xsync.Barrier{&ctl.Ptr().Start, &ctl.Ptr().Stop} {
				if err := bar.Init(2, 0); err != nil {
					b.Fatal(err)
				}
			}
			a, err := array.Create[float64](arrName, sliceLen)
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			child := testproc.Start(b, "array-hogwild", ctlName, arrName, variant, strconv.Itoa(b.N))
			if _, err := ctl.Ptr().Start.Wait(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			hogPasses(a, variant, b.N)
			if _, err := ctl.Ptr().Stop.Wait(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			child.Wait()

			var total float64
			for _, x := range a.Slice() {
				total += x
			}
			exact := 2 * float64(b.N) * sliceLen
			switch {
			case variant == "atomic" && total != exact:
				b.Fatalf("total %v after atomic adds, want exactly %v", total, exact)
			case total > exact:
				b.Fatalf("total %v, more than the %v updates made", total, exact)
			}
			b.ReportMetric(exact/b.Elapsed().Seconds()/1e9, "Gupdates/s")
			b.ReportMetric(100*(exact-total)/exact, "%lost")
		})
	}
}

// BenchmarkAtomicAdd: Add on an element of a shared Array[int64] against
// atomic.AddInt64 on private memory. The target: within 1.5×.
func BenchmarkAtomicAdd(b *testing.B) {
	b.Run("array", func(b *testing.B) {
		a := newArray[int64](b, 16)
		for b.Loop() {
			a.Add(3, 1)
		}
		if got := a.AtomicLoad(3); got != int64(b.N) {
			b.Fatalf("count %d, want %d", got, b.N)
		}
	})
	b.Run("atomic.AddInt64", func(b *testing.B) {
		s := make([]int64, 16)
		for b.Loop() {
			atomic.AddInt64(&s[3], 1)
		}
		if s[3] != int64(b.N) {
			b.Fatalf("count %d, want %d", s[3], b.N)
		}
	})
}
