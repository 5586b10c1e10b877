//go:build linux

package sync_test

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/testproc"
	xsync "github.com/xproc-go/xproc/sync"
)

// Cross-process benchmarks: the parent and one re-executed child share a
// benchShared. Both meet at Start before the timer starts and at Stop
// when done, so process start-up is not measured. Every benchmark checks
// its result (counts, round trips) before reporting.

type benchShared struct {
	Start, Stop xsync.Barrier
	Mu          xsync.Mutex
	Bare        bareMutex
	Count       int64
	A, B        xsync.Event
	FA, FB      atomic.Uint32
	Bar         xsync.Barrier
	Rounds      atomic.Int64
}

// bareMutex is the textbook futex mutex (Drepper's "mutex 3", no spinning,
// no owner): the floor xsync.Mutex is compared with.
type bareMutex struct{ v atomic.Uint32 }

func (m *bareMutex) Lock() {
	if m.v.CompareAndSwap(0, 1) {
		return
	}
	for m.v.Swap(2) != 0 {
		futex.Wait(&m.v, 2, -1)
	}
}

func (m *bareMutex) Unlock() {
	if m.v.Swap(0) == 2 {
		futex.Wake(&m.v, 1)
	}
}

// peerWork is what each side of a two-process benchmark does, n times.
var peerWork = map[string][2]func(sh *benchShared, n int){
	"mutex":      {mutexLoop, mutexLoop},
	"bare-mutex": {bareLoop, bareLoop},
	"event-pingpong": {
		func(sh *benchShared, n int) { eventPing(sh, n, nil) },
		eventPong,
	},
	"futex-pingpong": {
		func(sh *benchShared, n int) { futexPing(sh, n, nil) },
		futexPong,
	},
	"barrier": {barrierLoop, barrierLoop},
}

func mutexLoop(sh *benchShared, n int) {
	for range n {
		sh.Mu.Lock()
		sh.Count++
		sh.Mu.Unlock()
	}
}

func bareLoop(sh *benchShared, n int) {
	for range n {
		sh.Bare.Lock()
		sh.Count++
		sh.Bare.Unlock()
	}
}

func eventPing(sh *benchShared, n int, lat []time.Duration) {
	for i := range n {
		t0 := time.Now()
		sh.A.Set()
		sh.B.Wait()
		sh.B.Clear()
		if lat != nil {
			lat[i%len(lat)] = time.Since(t0)
		}
	}
}

func eventPong(sh *benchShared, n int) {
	for range n {
		sh.A.Wait()
		sh.A.Clear()
		sh.B.Set()
		sh.Rounds.Add(1)
	}
}

func futexPing(sh *benchShared, n int, lat []time.Duration) {
	for i := range n {
		t0 := time.Now()
		sh.FA.Store(1)
		futex.Wake(&sh.FA, 1)
		for sh.FB.Load() == 0 {
			futex.Wait(&sh.FB, 0, -1)
		}
		sh.FB.Store(0)
		if lat != nil {
			lat[i%len(lat)] = time.Since(t0)
		}
	}
}

func futexPong(sh *benchShared, n int) {
	for range n {
		for sh.FA.Load() == 0 {
			futex.Wait(&sh.FA, 0, -1)
		}
		sh.FA.Store(0)
		sh.FB.Store(1)
		futex.Wake(&sh.FB, 1)
		sh.Rounds.Add(1)
	}
}

func barrierLoop(sh *benchShared, n int) {
	for range n {
		if _, err := sh.Bar.Wait(); err != nil {
			panic(err)
		}
		sh.Rounds.Add(1)
	}
}

func init() {
	testproc.Register("bench-peer", func(args []string) error {
		sh, err := openShared[benchShared](args[0])
		if err != nil {
			return err
		}
		work := peerWork[args[1]][1]
		n := atoi(args[2])
		spin, err := time.ParseDuration(args[3])
		if err != nil {
			return err
		}
		defer xsync.SetSpin(spin)()
		if _, err := sh.Start.Wait(); err != nil {
			return err
		}
		work(sh, n)
		_, err = sh.Stop.Wait()
		return err
	})
}

// runPeers runs work in this process and its peer in a child, n times
// each, timing only the work. spin is the spin limit both sides use.
func runPeers(b *testing.B, kind string, spin time.Duration, ping func(sh *benchShared, n int)) *benchShared {
	b.Helper()
	b.StopTimer()
	name, sh := createShared[benchShared](b)
	for _, bar := range []*xsync.Barrier{&sh.Start, &sh.Stop, &sh.Bar} {
		if err := bar.Init(2, 0); err != nil {
			b.Fatal(err)
		}
	}
	defer xsync.SetSpin(spin)()
	child := testproc.Start(b, "bench-peer", name, kind, strconv.Itoa(b.N), spin.String())
	if ping == nil {
		ping = peerWork[kind][0]
	}
	if _, err := sh.Start.Wait(); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	ping(sh, b.N)
	if _, err := sh.Stop.Wait(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	child.Wait()
	return sh
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
// the same two processes, and sync.Mutex between two goroutines of one
// process. Reports total Mops/s.
func BenchmarkMutexTwoProcesses(b *testing.B) {
	for _, kind := range []string{"mutex", "bare-mutex"} {
		name := map[string]string{"mutex": "xsync", "bare-mutex": "bare-futex"}[kind]
		b.Run(name, func(b *testing.B) {
			sh := runPeers(b, kind, defaultSpin, nil)
			if sh.Count != int64(2*b.N) {
				b.Fatalf("count %d, want %d", sh.Count, 2*b.N)
			}
			reportRate(b, float64(2*b.N), "Mops/s")
		})
	}
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
// waiter always sleeps), against a bare futex pair, a Unix socket pair and
// a pair of pipes; and, in one process, a pair of unbuffered channels.
// Reports the median round trip.
func BenchmarkPingPong(b *testing.B) {
	for _, c := range []struct {
		name, kind string
		spin       time.Duration
		ping       func(sh *benchShared, n int, lat []time.Duration)
	}{
		{"xsync-event-spinning", "event-pingpong", defaultSpin, eventPing},
		{"xsync-event-sleeping", "event-pingpong", 0, eventPing},
		{"bare-futex-sleeping", "futex-pingpong", 0, futexPing},
	} {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, min(b.N, 1<<20))
			sh := runPeers(b, c.kind, c.spin, func(sh *benchShared, n int) { c.ping(sh, n, lat) })
			if got := sh.Rounds.Load(); got != int64(b.N) {
				b.Fatalf("%d round trips, want %d", got, b.N)
			}
			reportMedian(b, lat)
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
		for range atoi(args[0]) {
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
// channel rendezvous between two goroutines. Reports rounds per second.
func BenchmarkBarrierTwoProcesses(b *testing.B) {
	b.Run("xsync-processes", func(b *testing.B) {
		sh := runPeers(b, "barrier", defaultSpin, nil)
		if got := sh.Rounds.Load(); got != int64(2*b.N) {
			b.Fatalf("%d passes, want %d", got, 2*b.N)
		}
		reportRate(b, float64(b.N), "Mrounds/s")
	})
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
		reportRate(b, float64(b.N), "Mrounds/s")
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
		reportRate(b, float64(b.N), "Mrounds/s")
	})
}

// defaultSpin is the package's spin limit, for peers that keep it.
var defaultSpin = xsync.SpinLimit()
