// Package bench holds the two-process workloads that both the benchmarks
// of package sync and "xproc bench" measure, so that the figures in the
// README and those a user measures come from the same code.
//
// Each workload has a ping side (run by the measuring process) and a pong
// side (run by a peer process); both map one Shared, meet at Start, run n
// iterations and meet at Stop. Check verifies the result afterwards.
package bench

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/spin"
	xsync "github.com/xproc-go/xproc/sync"
)

// Shared is the memory both processes map (from a page boundary). It is
// made of 64-byte cache lines, each holding one group of fields, so that
// no workload shares a line with another. Each lock shares its line with
// the counter it guards and with nothing else, as in a
// struct{ Mu xsync.Mutex; Count int64 } that a user would write: one line
// moves between the cores per operation.
type Shared struct {
	Start, Stop xsync.Barrier // line 0

	Mu    xsync.Mutex // line 1
	Count int64
	_     [64 - 16]byte

	Bare      BareMutex // line 2
	_         [4]byte
	BareCount int64
	_         [64 - 16]byte

	A, B   xsync.Event // line 3
	FA, FB atomic.Uint32
	SA, SB atomic.Uint32 // sleepers on FA, FB, in the spinning futex pair
	_      [64 - 32]byte

	Bar    xsync.Barrier // line 4
	Rounds atomic.Int64
}

// Init prepares the barriers of a fresh Shared.
func (sh *Shared) Init() error {
	for _, b := range []*xsync.Barrier{&sh.Start, &sh.Stop, &sh.Bar} {
		if err := b.Init(2, 0); err != nil {
			return err
		}
	}
	return nil
}

// Workload is one two-process benchmark.
type Workload struct {
	// Ping runs in the measuring process; lat, if not nil, receives round
	// trip times (cyclically) for workloads that have round trips.
	Ping func(sh *Shared, n int, lat []time.Duration)
	// Pong runs in the peer.
	Pong func(sh *Shared, n int)
	// Check verifies the outcome of n iterations on each side.
	Check func(sh *Shared, n int) error
	// Ops is the number of operations n iterations count as, in total.
	Ops func(n int) int
}

// Workloads by name.
var Workloads = map[string]Workload{
	"mutex": {
		Ping:  func(sh *Shared, n int, _ []time.Duration) { mutexLoop(sh, n) },
		Pong:  mutexLoop,
		Check: checkCount,
		Ops:   func(n int) int { return 2 * n },
	},
	"bare-mutex": {
		Ping:  func(sh *Shared, n int, _ []time.Duration) { bareLoop(sh, n) },
		Pong:  bareLoop,
		Check: checkCount,
		Ops:   func(n int) int { return 2 * n },
	},
	"bare-mutex-spin": {
		Ping:  func(sh *Shared, n int, _ []time.Duration) { bareSpinLoop(sh, n) },
		Pong:  bareSpinLoop,
		Check: checkCount,
		Ops:   func(n int) int { return 2 * n },
	},
	"event-pingpong": {
		Ping:  eventPing,
		Pong:  eventPong,
		Check: checkRounds(1),
		Ops:   func(n int) int { return n },
	},
	"futex-pingpong": {
		Ping:  func(sh *Shared, n int, lat []time.Duration) { futexPing(sh, n, lat, false) },
		Pong:  func(sh *Shared, n int) { futexPong(sh, n, false) },
		Check: checkRounds(1),
		Ops:   func(n int) int { return n },
	},
	"futex-pingpong-spin": {
		Ping:  func(sh *Shared, n int, lat []time.Duration) { futexPing(sh, n, lat, true) },
		Pong:  func(sh *Shared, n int) { futexPong(sh, n, true) },
		Check: checkRounds(1),
		Ops:   func(n int) int { return n },
	},
	"barrier": {
		Ping:  func(sh *Shared, n int, _ []time.Duration) { barrierLoop(sh, n) },
		Pong:  barrierLoop,
		Check: checkRounds(2),
		Ops:   func(n int) int { return n },
	},
}

func checkCount(sh *Shared, n int) error {
	if c := sh.Count + sh.BareCount; c != int64(2*n) {
		return fmt.Errorf("count %d, want %d", c, 2*n)
	}
	return nil
}

// checkRounds expects per round trips per iteration of each side.
func checkRounds(per int) func(sh *Shared, n int) error {
	return func(sh *Shared, n int) error {
		if got := sh.Rounds.Load(); got != int64(per*n) {
			return fmt.Errorf("%d rounds, want %d", got, per*n)
		}
		return nil
	}
}

// BareMutex is the textbook futex mutex (Drepper's "mutex 3": no
// spinning, no owner): the floor xsync.Mutex is compared with. LockSpin
// spins first, as long as xsync's waiters do (spin.Limit): the floor for
// a spinning xsync.Mutex.
type BareMutex struct{ v atomic.Uint32 }

// Lock locks m.
func (m *BareMutex) Lock() {
	if m.v.CompareAndSwap(0, 1) {
		return
	}
	m.lockSlow()
}

// LockSpin locks m, spinning for up to spin.Limit before it sleeps.
func (m *BareMutex) LockSpin() {
	if m.v.CompareAndSwap(0, 1) {
		return
	}
	for s := spin.Start(spin.Limit); s.Next(); {
		if m.v.Load() == 0 && m.v.CompareAndSwap(0, 1) {
			return
		}
	}
	m.lockSlow()
}

func (m *BareMutex) lockSlow() {
	for m.v.Swap(2) != 0 {
		futex.Wait(&m.v, 2, -1)
	}
}

// Unlock unlocks m.
func (m *BareMutex) Unlock() {
	if m.v.Swap(0) == 2 {
		futex.Wake(&m.v, 1)
	}
}

func mutexLoop(sh *Shared, n int) {
	for range n {
		sh.Mu.Lock()
		sh.Count++
		sh.Mu.Unlock()
	}
}

func bareLoop(sh *Shared, n int) {
	for range n {
		sh.Bare.Lock()
		sh.BareCount++
		sh.Bare.Unlock()
	}
}

func bareSpinLoop(sh *Shared, n int) {
	for range n {
		sh.Bare.LockSpin()
		sh.BareCount++
		sh.Bare.Unlock()
	}
}

func eventPing(sh *Shared, n int, lat []time.Duration) {
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

func eventPong(sh *Shared, n int) {
	for range n {
		sh.A.Wait()
		sh.A.Clear()
		sh.B.Set()
		sh.Rounds.Add(1)
	}
}

// The bare futex pair: each side sets the other's word and wakes it,
// then waits for its own. Without spin, the waker always wakes (the
// waiter is nearly always asleep). With spin, the waiter spins first
// (for up to spin.Limit) and counts itself as a sleeper before it sleeps,
// and the waker wakes only if it sees one, as an xsync.Event does: the
// floor for a spinning Event.

func futexPing(sh *Shared, n int, lat []time.Duration, spin bool) {
	for i := range n {
		t0 := time.Now()
		setWake(&sh.FA, &sh.SA, spin)
		waitSet(&sh.FB, &sh.SB, spin)
		sh.FB.Store(0)
		if lat != nil {
			lat[i%len(lat)] = time.Since(t0)
		}
	}
}

func futexPong(sh *Shared, n int, spin bool) {
	for range n {
		waitSet(&sh.FA, &sh.SA, spin)
		sh.FA.Store(0)
		setWake(&sh.FB, &sh.SB, spin)
		sh.Rounds.Add(1)
	}
}

// setWake sets w and wakes its waiter: always, or if counted is set only
// when sleepers says one may sleep.
func setWake(w, sleepers *atomic.Uint32, counted bool) {
	w.Store(1)
	if !counted || sleepers.Load() != 0 {
		futex.Wake(w, 1)
	}
}

// waitSet waits until w is not 0, spinning first if spinning is set (and
// then counting itself in sleepers while it may sleep).
func waitSet(w, sleepers *atomic.Uint32, spinning bool) {
	if spinning {
		for s := spin.Start(spin.Limit); s.Next(); {
			if w.Load() != 0 {
				return
			}
		}
		// Counted before the last check, so that a setWake after it
		// sees a sleeper (both sides store, then load).
		sleepers.Add(1)
		defer sleepers.Add(^uint32(0))
	}
	for w.Load() == 0 {
		futex.Wait(w, 0, -1)
	}
}

func barrierLoop(sh *Shared, n int) {
	for range n {
		if _, err := sh.Bar.Wait(); err != nil {
			panic(err)
		}
		sh.Rounds.Add(1)
	}
}

// Peer is the pong side's whole run: meet, work, meet.
func Peer(sh *Shared, name string, n int) error {
	w, ok := Workloads[name]
	if !ok {
		return fmt.Errorf("bench: unknown workload %q", name)
	}
	if _, err := sh.Start.Wait(); err != nil {
		return err
	}
	w.Pong(sh, n)
	_, err := sh.Stop.Wait()
	return err
}

// Timer is started once both sides have met and stopped when both are
// done; *testing.B is one.
type Timer interface {
	StartTimer()
	StopTimer()
}

// Run is the ping side's whole run: meet, work (timed), meet, check.
func Run(sh *Shared, name string, n int, lat []time.Duration, t Timer) error {
	w, ok := Workloads[name]
	if !ok {
		return fmt.Errorf("bench: unknown workload %q", name)
	}
	if _, err := sh.Start.Wait(); err != nil {
		return err
	}
	t.StartTimer()
	w.Ping(sh, n, lat)
	if _, err := sh.Stop.Wait(); err != nil {
		return err
	}
	t.StopTimer()
	return w.Check(sh, n)
}

// Stopwatch is a Timer for use outside testing.
type Stopwatch struct {
	start   time.Time
	Elapsed time.Duration
}

// StartTimer starts the stopwatch.
func (s *Stopwatch) StartTimer() { s.start = time.Now() }

// StopTimer stops it, adding to Elapsed.
func (s *Stopwatch) StopTimer() { s.Elapsed += time.Since(s.start) }
