//go:build linux

package sync_test

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xproc-go/xproc/internal/bench"
	"github.com/xproc-go/xproc/internal/testproc"
	xsync "github.com/xproc-go/xproc/sync"
)

// Cross-process benchmarks: the parent and one re-executed child share
// a bench.Shared and run one of bench.Workloads, the same code "xproc
// bench" runs. Process start-up is not timed, and every benchmark checks
// its result (counts, round trips) before reporting.

func init() {
	testproc.Register("bench-peer", func(args []string) error {
		sh, err := openShared[bench.Shared](args[0])
		if err != nil {
			return err
		}
		spin, err := time.ParseDuration(args[3])
		if err != nil {
			return err
		}
		defer xsync.SetSpin(spin)()
		return bench.Peer(sh, args[1], testproc.Atoi(args[2]))
	})
}

// runPeers runs workload kind in this process and in a child, b.N times
// each, timing only the work. spin is the spin limit both sides use.
func runPeers(b *testing.B, kind string, spin time.Duration, lat []time.Duration) {
	b.Helper()
	b.StopTimer()
	name, sh := createShared[bench.Shared](b)
	if err := sh.Init(); err != nil {
		b.Fatal(err)
	}
	defer xsync.SetSpin(spin)()
	child := testproc.Start(b, "bench-peer", name, kind, strconv.Itoa(b.N), spin.String())
	if err := bench.Run(sh, kind, b.N, lat, b); err != nil {
		b.Fatal(err)
	}
	child.Wait()
	reportRate(b, float64(bench.Workloads[kind].Ops(b.N)), "Mops/s")
	if lat != nil {
		reportMedian(b, lat)
	}
}

func reportRate(b *testing.B, ops float64, unit string) {
	b.ReportMetric(ops/b.Elapsed().Seconds()/1e6, unit)
}

// BenchmarkMutexUncontended compares one goroutine locking and unlocking
// an xsync.Mutex with the same on a sync.Mutex.
func BenchmarkMutexUncontended(b *testing.B) {
	b.Run("xsync", func(b *testing.B) {
		var m xsync.Mutex
		for b.Loop() {
			m.Lock()
			//lint:ignore SA2001 the lock itself is what is measured
			m.Unlock()
		}
	})
	b.Run("sync", func(b *testing.B) {
		var m sync.Mutex
		for b.Loop() {
			m.Lock()
			//lint:ignore SA2001 the lock itself is what is measured
			m.Unlock()
		}
	})
}

// BenchmarkMutexTwoProcesses: two processes each lock, increment a shared
// counter and unlock, b.N times. Peers: the textbook futex mutex across
// the same two processes, as it is (no spinning) and spinning as long as
// xsync does first (like with like), and sync.Mutex between two
// goroutines of one process. Reports total Mops/s.
func BenchmarkMutexTwoProcesses(b *testing.B) {
	b.Run("xsync", func(b *testing.B) { runPeers(b, "mutex", defaultSpin, nil) })
	b.Run("bare-futex", func(b *testing.B) { runPeers(b, "bare-mutex", defaultSpin, nil) })
	b.Run("bare-futex-spinning", func(b *testing.B) { runPeers(b, "bare-mutex-spin", defaultSpin, nil) })
	b.Run("sync-goroutines", func(b *testing.B) {
		var mu sync.Mutex
		var count int64
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range b.N {
					mu.Lock()
					count++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if count != int64(2*b.N) {
			b.Fatalf("count %d, want %d", count, 2*b.N)
		}
		reportRate(b, float64(2*b.N), "Mops/s")
	})
}

// BenchmarkPingPong measures round trips between two processes: an
// xsync.Event pair, with spinning (both sides running) and without (the
// waiter always sleeps), each against a bare futex pair that does the
// same (like with like), and against a Unix socket pair and a pair of
// pipes; and, in one process, a pair of unbuffered channels. Reports the
// median round trip.
func BenchmarkPingPong(b *testing.B) {
	for _, c := range []struct {
		name, kind string
		spin       time.Duration
	}{
		{"xsync-event-spinning", "event-pingpong", defaultSpin},
		{"bare-futex-spinning", "futex-pingpong-spin", defaultSpin},
		{"xsync-event-sleeping", "event-pingpong", 0},
		{"bare-futex-sleeping", "futex-pingpong", 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			runPeers(b, c.kind, c.spin, make([]time.Duration, min(b.N, 1<<20)))
		})
	}
	b.Run("unix-socket", func(b *testing.B) { benchFDPingPong(b, "socket") })
	b.Run("os-pipe", func(b *testing.B) { benchFDPingPong(b, "pipe") })
	b.Run("channels-goroutines", func(b *testing.B) {
		ping, pong := make(chan struct{}), make(chan struct{})
		go func() {
			for range ping {
				pong <- struct{}{}
			}
		}()
		lat := make([]time.Duration, min(b.N, 1<<20))
		for i := range b.N {
			t0 := time.Now()
			ping <- struct{}{}
			<-pong
			lat[i%len(lat)] = time.Since(t0)
		}
		close(ping)
		reportMedian(b, lat)
	})
}

func reportMedian(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "ns/rt-median")
}

func init() {
	testproc.Register("bench-fd-pong", func(args []string) error {
		in, out := os.NewFile(3, "in"), os.NewFile(4, "out")
		buf := make([]byte, 1)
		for range testproc.Atoi(args[0]) {
			if _, err := in.Read(buf); err != nil {
				return err
			}
			buf[0]++
			if _, err := out.Write(buf); err != nil {
				return err
			}
		}
		return nil
	})
}

// benchFDPingPong bounces a byte, incremented by the child each time, over
// a Unix socket pair or two pipes.
func benchFDPingPong(b *testing.B, kind string) {
	var mine, theirs [2]*os.File // mine: read, write
	switch kind {
	case "socket":
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		a, c := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "c")
		mine, theirs = [2]*os.File{a, a}, [2]*os.File{c, c}
	case "pipe":
		r1, w1, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		r2, w2, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		mine, theirs = [2]*os.File{r2, w1}, [2]*os.File{r1, w2}
	}
	child := testproc.StartCmd(b, "bench-fd-pong", func(cmd *exec.Cmd) {
		cmd.ExtraFiles = theirs[:]
	}, strconv.Itoa(b.N+1))
	for _, f := range theirs {
		f.Close()
	}
	buf := []byte{0}
	exchange := func() {
		if _, err := mine[1].Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := mine[0].Read(buf); err != nil {
			b.Fatal(err)
		}
	}
	exchange() // the child is up
	lat := make([]time.Duration, min(b.N, 1<<20))
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		want := buf[0] + 1
		exchange()
		if buf[0] != want {
			b.Fatalf("got %d, want %d", buf[0], want)
		}
		lat[i%len(lat)] = time.Since(t0)
	}
	b.StopTimer()
	child.Wait()
	mine[0].Close()
	mine[1].Close()
	reportMedian(b, lat)
}

// BenchmarkBarrierTwoProcesses: rounds of a two-party barrier between two
// processes, against the same barrier between two goroutines and a
// channel rendezvous between two goroutines. Reports rounds (Mops/s).
func BenchmarkBarrierTwoProcesses(b *testing.B) {
	b.Run("xsync-processes", func(b *testing.B) { runPeers(b, "barrier", defaultSpin, nil) })
	b.Run("xsync-goroutines", func(b *testing.B) {
		var bar xsync.Barrier
		if err := bar.Init(2, 0); err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			for range b.N {
				bar.Wait()
			}
			close(done)
		}()
		for range b.N {
			if _, err := bar.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		<-done
		reportRate(b, float64(b.N), "Mops/s")
	})
	b.Run("channels-goroutines", func(b *testing.B) {
		x, y := make(chan struct{}), make(chan struct{})
		go func() {
			for range b.N {
				x <- struct{}{}
				<-y
			}
		}()
		for range b.N {
			<-x
			y <- struct{}{}
		}
		reportRate(b, float64(b.N), "Mops/s")
	})
}

// defaultSpin is the package's spin limit, for peers that keep it.
var defaultSpin = xsync.SpinLimit()

// BenchmarkMutexTakeover measures kill-to-takeover: a child holds a
// Mutex, a waiter in this process sleeps on it, the child is killed with
// SIGKILL, and the time until the waiter returns with ErrOwnerDead is
// recorded. It reports the median and the maximum over b.N kills (run it
// with -benchtime=25x or more); ns/op includes starting each child.
// "pidfd" is the library as it is; "poll" switches off the exit watch,
// leaving the periodic liveness check alone, for comparison.
func BenchmarkMutexTakeover(b *testing.B) {
	for _, mode := range []string{"pidfd", "poll"} {
		b.Run(mode, func(b *testing.B) {
			defer xsync.SetWatchExits(mode == "pidfd")()
			name := testproc.Name(b)
			m, err := xsync.CreateMutex(name)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			var ds []time.Duration
			for b.Loop() {
				ds = append(ds, mutexTakeover(b, m, name))
			}
			slices.Sort(ds)
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "µs-median")
			b.ReportMetric(float64(ds[len(ds)-1].Microseconds()), "µs-max")
		})
	}
}
