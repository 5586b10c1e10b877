// Package spin provides the CPU pause used in the bounded spinning that
// precedes every sleep in xproc: a spinning waiter must not starve the
// sibling hyper-thread or flood the memory bus while it polls a word that
// another process is about to change.
package spin

import (
	"runtime"
	"time"
)

// Limit bounds the spinning of every waiter in xproc before it sleeps in
// the kernel: 20µs, which covers a peer running on another core and about
// to release (far cheaper than a sleep and a wake-up, several µs each),
// or nothing on a single CPU, where the peer cannot run while we spin.
//
// A variable so that tests and benchmarks (xproc bench) can measure
// sleeping alone. Set it only while no waiter runs.
var Limit = defaultLimit()

func defaultLimit() time.Duration {
	if runtime.NumCPU() == 1 {
		return 0
	}
	return 20 * time.Microsecond
}

// Pause executes the processor's spin-wait hint n times (PAUSE on amd64,
// YIELD on arm64, a plain loop elsewhere). Pause(0) returns at once.
func Pause(n uint32) {
	if n != 0 {
		pause(n)
	}
}

// Spinner bounds a spin phase by time. The zero Spinner is not usable; use
// Start.
type Spinner struct {
	start time.Time
	limit time.Duration
	i     uint32
}

// Start begins a spin phase that lasts at most limit. With no limit it
// does not read the clock: the caller is about to sleep, and a clock read
// costs tens of nanoseconds (more on some virtual machines).
func Start(limit time.Duration) Spinner {
	if limit <= 0 {
		return Spinner{}
	}
	return Spinner{start: time.Now(), limit: limit}
}

// Next pauses briefly and reports whether the caller may keep spinning.
// The clock is read only every 32 calls so that spinning stays cheap; a
// phase may overrun its limit by up to 32 bursts.
func (s *Spinner) Next() bool {
	if s.limit <= 0 {
		return false
	}
	s.i++
	Pause(pauseBurst)
	if s.i%32 != 0 {
		return true
	}
	return time.Since(s.start) < s.limit
}

// pauseBurst is how many pause hints one Next executes: tens of
// nanoseconds on older x86 cores, a few hundred on those where PAUSE
// takes about 140 cycles. Fewer, with more frequent clock reads, measured
// slower on the two-process lock benchmark.
const pauseBurst = 8
