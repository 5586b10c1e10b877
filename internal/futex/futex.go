// Package futex puts goroutines to sleep on a 32-bit word in shared memory
// until another process changes it and wakes them.
//
// On Linux this is the futex system call without FUTEX_PRIVATE_FLAG, so a
// wake in one process reaches sleepers in every process that maps the
// word. Elsewhere, Wait polls with a short sleep: correct, slower, and only
// useful in one process, since segments are not supported there.
//
// Park adds what a library needs on top:
//
//   - A goroutine inside FUTEX_WAIT holds an OS thread. Park queues the
//     goroutines of one process that wait on the same word in-process and
//     lets one of them at a time sleep in the kernel: a thousand goroutines
//     blocked on one lock cost one thread, not a thousand.
//   - A sleeper must notice things no one wakes it for: a waker killed
//     between changing a word and waking, an owner that died, a deadline.
//     Rather than arming a kernel timer on every sleep (which costs about
//     as much as the rest of the slow path), a ticker in each process
//     wakes that process's sleepers every Tick while there are any. Kernel
//     sleeps use FUTEX_WAIT_BITSET with a bit derived from the pid, so the
//     ticker (and context cancellation) wake this process's sleepers and,
//     at worst, those of the few processes sharing the bit.
package futex

import (
	"context"
	"errors"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// ErrTimeout is returned by Wait when the timeout passed.
var ErrTimeout = errors.New("futex: timeout")

// ErrStopped is returned by Park when its stop context was done.
var ErrStopped = errors.New("futex: stopped")

// All wakes every sleeper.
const All = math.MaxInt32

// Tick is the longest a parked goroutine sleeps without being woken to
// re-check its condition.
const Tick = 100 * time.Millisecond

// ownBit is this process's wake bit.
var ownBit = uint32(1) << (uint(os.Getpid()) % 32)

// Low32 returns the futex word of a 64-bit lock word: its low 32 bits,
// at the same address on little-endian machines and 4 bytes on elsewhere.
func Low32(p *atomic.Uint64) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Add(unsafe.Pointer(p), low32Offset))
}

// low32Offset is where the low half of a uint64 lives in memory.
var low32Offset = func() uintptr {
	x := uint64(1)
	if *(*byte)(unsafe.Pointer(&x)) == 1 {
		return 0
	}
	return 4
}()

// gate limits how many goroutines of this process sleep in the kernel on
// one word to one: the holder of the right to sleep. The others queue
// in-process. Every waiter re-checks its condition when it gets the
// right, so one is enough: a wake-all is passed on from the sleeper to
// the queued goroutines as each leaves.
//
// The right is an atomic flag rather than a token in a channel: taking
// and giving it back is on the path of every cross-process wake-up, and a
// channel there measurably slowed a sleeping ping-pong between two
// processes. The channel is used only to park queued goroutines.
type gate struct {
	addr *atomic.Uint32
	// sleeping is 1 while a goroutine holds the right to sleep.
	sleeping atomic.Uint32
	// queued counts the goroutines waiting for the right.
	queued atomic.Int32
	// handoff carries the right itself, as a token, to one queued
	// goroutine when it is given back while some are queued. A token
	// that outlasts the goroutine it was meant for (gone with ctx or
	// stop) is taken by the next goroutine that queues.
	handoff chan struct{}
	// refs counts the goroutines using the gate, or is retired (-1) once
	// the ticker has dropped the gate from gates.m; a retired gate is
	// never used again.
	refs atomic.Int32
}

const retired = -1

// tryRef takes a reference to g unless it is retired.
func (g *gate) tryRef() bool {
	for r := g.refs.Load(); r != retired; r = g.refs.Load() {
		// Invariant: a successful CAS from r >= 0 means the ticker has
		// not retired g (it retires only with a CAS from 0), so g is
		// still the gate of its word in gates.m.
		if g.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
	return false
}

var gates = struct {
	sync.Mutex
	m map[*atomic.Uint32]*gate
	// quit stops the running ticker; nil when none runs.
	quit chan struct{}
	// every is the ticker's interval: Tick, except in tests.
	every time.Duration
}{m: make(map[*atomic.Uint32]*gate), every: Tick}

// lastGate is the gate acquired most recently. A goroutine that parks on
// the same word again and again (a ping-pong, a contended lock) finds it
// here with one atomic operation, without gates' mutex: the sleeping path
// is on the critical path of every wake-up that crosses processes.
var lastGate atomic.Pointer[gate]

func acquireGate(addr *atomic.Uint32) *gate {
	if g := lastGate.Load(); g != nil && g.addr == addr && g.tryRef() {
		return g
	}
	gates.Lock()
	g := gates.m[addr]
	if g == nil {
		g = &gate{addr: addr, handoff: make(chan struct{}, 1)}
		gates.m[addr] = g
	}
	// g is in the map, so not retired: the ticker retires under the lock.
	g.refs.Add(1)
	if gates.quit == nil {
		gates.quit = make(chan struct{})
		go tick(gates.every, gates.quit)
	}
	gates.Unlock()
	lastGate.Store(g)
	return g
}

// releaseGate gives up a reference to g. A gate nobody uses stays in the
// map until the next tick finds it idle, so that a goroutine that parks on
// the same word again and again does not allocate a gate each time.
func releaseGate(g *gate) { g.refs.Add(-1) }

// tick wakes this process's sleepers every d while there are any, and
// drops the gates nobody is using at that moment, until quit is closed.
func tick(d time.Duration, quit chan struct{}) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-quit:
			return
		}
		gates.Lock()
		if gates.quit != quit {
			gates.Unlock()
			return // stopped while it waited for the lock
		}
		for addr, g := range gates.m {
			if g.refs.CompareAndSwap(0, retired) {
				delete(gates.m, addr)
			}
		}
		if len(gates.m) == 0 {
			gates.quit = nil
			gates.Unlock()
			return
		}
		gates.Unlock()
		WakeRange(0, math.MaxUint)
	}
}

// WakeRange wakes this process's goroutines parked on words with
// addresses in [lo, hi) and returns how many words it woke. Closing a
// segment uses it to wake the sleepers inside.
func WakeRange(lo, hi uintptr) int {
	gates.Lock()
	var words []*atomic.Uint32
	for addr, g := range gates.m {
		if a := uintptr(unsafe.Pointer(addr)); lo <= a && a < hi && g.refs.Load() > 0 {
			words = append(words, addr)
		}
	}
	gates.Unlock()
	for _, w := range words {
		wakeOwn(w)
	}
	return len(words)
}

// Park blocks while addr holds val, until a wake, until ctx or stop is
// done (either may be nil), or for at most about Tick. Like the futex call
// it wraps, it may return for no reason: callers re-check their condition
// in a loop.
//
// It returns nil after a wake, a change of the word or a tick, ctx.Err()
// when ctx is done, and ErrStopped when stop is done. Stop is noticed at
// the next wake: WakeRange, or at worst the next tick. Park reads addr
// only before it returns, so the caller must keep the mapping alive until
// then; a cancellation wake-up may still be issued on addr afterwards,
// which is harmless (the kernel ignores a futex at an unmapped address).
func Park(ctx, stop context.Context, addr *atomic.Uint32, val uint32) error {
	if addr.Load() != val {
		return nil
	}
	g := acquireGate(addr)
	defer releaseGate(g)
	if !g.sleeping.CompareAndSwap(0, 1) {
		if got, err := g.queue(ctx, stop, addr, val); !got {
			return err
		}
	}
	defer g.giveBack()

	if err := doneErr(ctx, stop); err != nil {
		return err
	}
	if ctx != nil && ctx.Done() != nil {
		// Cancellation must reach a goroutine asleep in the kernel. It
		// may come after the check of ctx below but before the kernel
		// sleep, where a single wake-up would find nobody and be lost:
		// so repeat it, backing off, until this goroutine has left.
		var left atomic.Bool
		stopWaking := context.AfterFunc(ctx, func() {
			for d := time.Microsecond; !left.Load(); d = min(2*d, time.Millisecond) {
				wakeOwn(addr)
				time.Sleep(d)
			}
		})
		defer func() {
			left.Store(true)
			stopWaking()
		}()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	waitOwn(addr, val)
	return doneErr(ctx, stop)
}

// queue waits in-process for the right to sleep in the kernel and
// reports whether it got it. It gives up, with nil, as soon as it sees
// that addr no longer holds val (the caller has nothing to sleep for), or
// with ctx.Err() or ErrStopped.
func (g *gate) queue(ctx, stop context.Context, addr *atomic.Uint32, val uint32) (bool, error) {
	var ctxDone, stopDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	if stop != nil {
		stopDone = stop.Done()
	}
	g.queued.Add(1)
	defer g.queued.Add(-1)
	// Invariant: queued is raised before every attempt to take the
	// right, so a holder giving it back after an attempt failed sees
	// queued > 0 and hands the right over through handoff.
	for !g.sleeping.CompareAndSwap(0, 1) {
		if addr.Load() != val {
			return false, nil
		}
		select {
		case <-g.handoff:
			return true, nil
		case <-ctxDone:
			return false, ctx.Err()
		case <-stopDone:
			return false, ErrStopped
		}
	}
	return true, nil
}

// giveBack gives up the right to sleep. If goroutines are queued, one of
// them gets it directly, through handoff, so that the giver cannot take
// it back at once and starve them (it may well park again on the same
// word as soon as it returns). A token left in handoff by a queued
// goroutine that gave up is the right itself, taken by the next one.
//
// Invariant: sleeping is 1 exactly while a goroutine holds the right or
// a token for it waits in handoff, so the send never blocks.
func (g *gate) giveBack() {
	for {
		if g.queued.Load() > 0 {
			g.handoff <- struct{}{}
			return
		}
		g.sleeping.Store(0)
		// A goroutine that queued after the check above but failed to
		// take the right before the store would wait for a handoff
		// that never comes: take the right back and hand it over.
		if g.queued.Load() == 0 || !g.sleeping.CompareAndSwap(0, 1) {
			return
		}
	}
}

func doneErr(ctx, stop context.Context) error {
	if stop != nil && stop.Err() != nil {
		return ErrStopped
	}
	if ctx != nil {
		return ctx.Err()
	}
	return nil
}
