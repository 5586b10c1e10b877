// Package futex puts goroutines to sleep on a 32-bit word in shared memory
// until another process changes it and wakes them.
//
// On Linux this is FUTEX_WAIT / FUTEX_WAKE without FUTEX_PRIVATE_FLAG, so a
// wake in one process reaches sleepers in every process that maps the word.
// Elsewhere, Wait polls with a short sleep: correct, slower, and only useful
// in one process, since segments are not supported there.
//
// A goroutine inside FUTEX_WAIT holds an OS thread. Park therefore queues
// the goroutines of one process that wait on the same word in-process and
// lets at most one of them at a time sleep in the kernel: a thousand
// goroutines blocked on one lock cost one thread, not a thousand.
package futex

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// ErrTimeout is returned by Wait and Park when the timeout passed.
var ErrTimeout = errors.New("futex: timeout")

// ErrStopped is returned by Park when its stop context was done.
var ErrStopped = errors.New("futex: stopped")

// All wakes every sleeper.
const All = math.MaxInt32

// Low32 returns the futex word of a 64-bit lock word: its low 32 bits,
// which on the little-endian machines xproc supports live at the same
// address.
func Low32(p *atomic.Uint64) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(p))
}

// gate limits how many goroutines of this process sleep in the kernel on
// one word. slot holds a token while a goroutine owns the right to sleep.
type gate struct {
	slot chan struct{}
	refs int
}

// maxSleepers is the number of goroutines per process and word allowed in
// the kernel at once. Every waiter re-checks its condition when it gets the
// slot, so one is enough: a wake-all is passed on from sleeper to queued
// goroutine as each leaves.
const maxSleepers = 1

var gates = struct {
	sync.Mutex
	m map[*atomic.Uint32]*gate
}{m: make(map[*atomic.Uint32]*gate)}

func acquireGate(addr *atomic.Uint32) *gate {
	gates.Lock()
	g := gates.m[addr]
	if g == nil {
		g = &gate{slot: make(chan struct{}, maxSleepers)}
		gates.m[addr] = g
	}
	g.refs++
	gates.Unlock()
	return g
}

func releaseGate(addr *atomic.Uint32, g *gate) {
	gates.Lock()
	g.refs--
	if g.refs == 0 {
		delete(gates.m, addr)
	}
	gates.Unlock()
}

// Park blocks while addr holds val, until a wake, until timeout has passed
// (a negative timeout means no limit), or until ctx or stop is done; either
// may be nil. Like the futex call it wraps, it may also return for no
// reason: callers re-check their condition in a loop.
//
// It returns nil after a wake or a change of the word, ErrTimeout after the
// timeout, ctx.Err() when ctx is done, and ErrStopped when stop is done.
// Park does not touch addr once stop is done, provided the caller keeps the
// mapping alive until Park returns.
func Park(ctx, stop context.Context, addr *atomic.Uint32, val uint32, timeout time.Duration) error {
	if addr.Load() != val {
		return nil
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	g := acquireGate(addr)
	defer releaseGate(addr, g)
	select {
	case g.slot <- struct{}{}:
	default:
		if err := queue(ctx, stop, g, timeout); err != nil {
			return err
		}
	}
	defer func() { <-g.slot }()

	if err := doneErr(ctx, stop); err != nil {
		return err
	}
	if addr.Load() != val {
		return nil
	}
	// Cancellation must reach a goroutine asleep in the kernel: wake every
	// sleeper on the word. The others re-check and sleep again.
	wake := func() { Wake(addr, All) }
	if ctx != nil && ctx.Done() != nil {
		defer context.AfterFunc(ctx, wake)()
	}
	if stop != nil && stop.Done() != nil {
		defer context.AfterFunc(stop, wake)()
	}
	if err := doneErr(ctx, stop); err != nil {
		return err
	}
	left := time.Duration(-1)
	if timeout >= 0 {
		if left = time.Until(deadline); left <= 0 {
			return ErrTimeout
		}
	}
	err := Wait(addr, val, left)
	if derr := doneErr(ctx, stop); derr != nil {
		return derr
	}
	return err
}

// queue waits in-process for the right to sleep in the kernel.
func queue(ctx, stop context.Context, g *gate, timeout time.Duration) error {
	var ctxDone, stopDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	if stop != nil {
		stopDone = stop.Done()
	}
	var expired <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case g.slot <- struct{}{}:
		return nil
	case <-ctxDone:
		return ctx.Err()
	case <-stopDone:
		return ErrStopped
	case <-expired:
		return ErrTimeout
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
