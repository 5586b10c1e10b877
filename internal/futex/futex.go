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
var Tick = 100 * time.Millisecond

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
// one word: slot holds a token while a goroutine owns the right to sleep.
// Every waiter re-checks its condition when it gets the slot, so one is
// enough: a wake-all is passed on from the sleeper to the queued
// goroutines as each leaves.
type gate struct {
	slot chan struct{}
	refs int
}

var gates = struct {
	sync.Mutex
	m       map[*atomic.Uint32]*gate
	ticking bool
}{m: make(map[*atomic.Uint32]*gate)}

func acquireGate(addr *atomic.Uint32) *gate {
	gates.Lock()
	g := gates.m[addr]
	if g == nil {
		g = &gate{slot: make(chan struct{}, 1)}
		gates.m[addr] = g
	}
	g.refs++
	if !gates.ticking {
		gates.ticking = true
		go tick()
	}
	gates.Unlock()
	return g
}

// releaseGate gives up a reference to g. A gate nobody uses stays in the
// map until the next tick finds it idle, so that a goroutine that parks on
// the same word again and again (a ping-pong) does not allocate a gate
// each time.
func releaseGate(g *gate) {
	gates.Lock()
	g.refs--
	gates.Unlock()
}

// tick wakes this process's sleepers every Tick while there are any, and
// drops the gates nobody is using at that moment.
func tick() {
	t := time.NewTicker(Tick)
	defer t.Stop()
	for range t.C {
		gates.Lock()
		for addr, g := range gates.m {
			if g.refs == 0 {
				delete(gates.m, addr)
			}
		}
		if len(gates.m) == 0 {
			gates.ticking = false
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
		if a := uintptr(unsafe.Pointer(addr)); lo <= a && a < hi && g.refs > 0 {
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
	select {
	case g.slot <- struct{}{}:
	default:
		if err := queue(ctx, stop, g); err != nil {
			return err
		}
	}
	defer func() { <-g.slot }()

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

// queue waits in-process for the right to sleep in the kernel.
func queue(ctx, stop context.Context, g *gate) error {
	var ctxDone, stopDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	if stop != nil {
		stopDone = stop.Done()
	}
	select {
	case g.slot <- struct{}{}:
		return nil
	case <-ctxDone:
		return ctx.Err()
	case <-stopDone:
		return ErrStopped
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
