package pool

import (
	"sync"
	"sync/atomic"
	"time"
)

// flushTimer calls a flush function a delay after it is armed, for
// messages put with PutDeferred while their sender may be held up (a
// worker running the next batch, the parent running the caller's input
// iterator). Arming a running timer does nothing, so that a sender that
// arms it for every message pays an atomic load, not a timer's reset,
// and the flush comes at most the delay after any message.
type flushTimer struct {
	d       time.Duration
	t       *time.Timer
	idle    atomic.Bool
	mu      sync.Mutex // stopped, against a flush under way
	stopped bool
}

func newFlushTimer(d time.Duration, flush func()) *flushTimer {
	f := &flushTimer{d: d}
	f.idle.Store(true)
	f.t = time.AfterFunc(time.Hour, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.idle.Store(true)
		if !f.stopped {
			flush()
		}
	})
	f.t.Stop()
	return f
}

// arm starts the timer unless it is running. Only one goroutine arms it.
func (f *flushTimer) arm() {
	if f.idle.Load() {
		f.idle.Store(false)
		f.t.Reset(f.d)
	}
}

// stop stops the timer: once it returns, flush is not called again.
func (f *flushTimer) stop() {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	f.t.Stop()
}
