package pool

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// TestFeedPanicNeverLost: an input iterator that panics just as the call
// stops the feeder has its panic raised in the caller, by stop, or (when
// stop did not wait for the feeder) in the feeder's own goroutine; never
// recorded and dropped. The two ends race on purpose, at varied offsets.
func TestFeedPanicNeverLost(t *testing.T) {
	var orphans atomic.Int64
	old := orphanPanic
	orphanPanic = func(any) { orphans.Add(1) }
	defer func() { orphanPanic = old }()
	n := 20000
	if testing.Short() {
		n = 2000
	}
	raised, swallowed := 0, 0
	for i := range n {
		release := make(chan struct{})
		seq := func(yield func(int) bool) {
			if !yield(1) {
				return
			}
			<-release
			panic("boom")
		}
		f := newFeed[int](seq, maxHeld)
		for !f.hasRead(1) {
			runtime.Gosched()
		}
		f.take(1, 2) // room: the feeder goes back into the iterator
		for !f.inIterator() {
			runtime.Gosched()
		}
		close(release)
		for range i % 64 {
			runtime.Gosched() // vary where the stop lands
		}
		if func() (v any) {
			defer func() { v = recover() }()
			f.stop()
			return nil
		}() != nil {
			raised++
			continue
		}
		<-f.exited
		f.mu.Lock()
		if f.panicked && !f.raised {
			swallowed++
		}
		f.mu.Unlock()
	}
	t.Logf("%d runs: %d raised by stop, %d in the feeder's goroutine", n, raised, orphans.Load())
	if swallowed != 0 {
		t.Fatalf("%d panics of the iterator recorded and never raised", swallowed)
	}
	if got := raised + int(orphans.Load()); got != n {
		t.Fatalf("%d of %d panics raised", got, n)
	}
}

func (f *feed[In]) hasRead(n int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.read >= n
}

func (f *feed[In]) inIterator() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inIter
}
