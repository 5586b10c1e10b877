package pool

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Unit tests of the automatic batch sizer, fed synthetic observations:
// no worker, no clock.

// ran is the answer of a batch of count calls that took d each.
func ran(count int, d time.Duration) *result {
	return &result{status: statusOK, count: count, ns: int64(count) * int64(d)}
}

// bigLimit keeps the message limit out of the way.
const bigLimit = 1 << 20

// runFor has b size batches for calls that take d each, rounds times,
// with an unknown total, and returns the sizes.
func runFor(b *batcher, d time.Duration, rounds int) []int {
	var sizes []int
	for range rounds {
		k := b.size(-1)
		sizes = append(sizes, k)
		b.observe(ran(k, d))
	}
	return sizes
}

// The first batches are probes of one call, one per worker, until a
// batch has been measured; answers that measure nothing do not count.
func TestBatcherProbes(t *testing.T) {
	b := &batcher{workers: 3, total: -1, limit: bigLimit}
	assert.Equal(t, 1, b.size(-1))
	assert.Equal(t, 3, b.window(), "one probe per worker")
	b.observe(&result{status: statusFailed, count: 1, ns: int64(time.Microsecond)})
	b.observe(&result{status: statusDied, count: 1, ns: int64(time.Microsecond)})
	b.observe(&result{status: statusOK, count: 0, ns: int64(time.Microsecond)})
	assert.Equal(t, 1, b.size(-1), "still probing after answers that measure nothing")
	assert.Equal(t, 3, b.window())
	b.observe(ran(1, time.Millisecond))
	assert.Equal(t, 200, b.size(-1), "calls of 1ms: batches of 0.2s")
}

// Under a steady cost per call, batches grow from the probe to take about
// 0.2s (joblib's MIN_IDEAL_BATCH_DURATION), at least half of it and never
// more, unless one call alone takes longer; they never shrink on the way.
func TestBatcherGrowsToTarget(t *testing.T) {
	for _, d := range []time.Duration{300 * time.Microsecond, time.Millisecond, 7 * time.Millisecond,
		30 * time.Millisecond, 90 * time.Millisecond, 150 * time.Millisecond, 250 * time.Millisecond, 2 * time.Second} {
		b := &batcher{workers: 2, total: -1, limit: bigLimit}
		sizes := runFor(b, d, 10)
		assert.Equal(t, 1, sizes[0], "%v: the probe", d)
		for i := 1; i < len(sizes); i++ {
			assert.GreaterOrEqual(t, sizes[i], sizes[i-1], "%v: shrank while under the target: %v", d, sizes)
		}
		k := sizes[len(sizes)-1]
		took := time.Duration(k) * d
		if d >= targetBatch {
			assert.Equal(t, 1, k, "%v: calls longer than the target go alone", d)
			continue
		}
		assert.LessOrEqual(t, took, targetBatch, "%v: batches of %d", d, k)
		assert.Greater(t, took, targetBatch/2, "%v: batches of %d", d, k)
	}
}

// Calls that get slower make the batches shrink back to about 0.2s
// within a few batches, without growing on the way; calls that get
// faster make them grow back.
func TestBatcherFollowsChanges(t *testing.T) {
	b := &batcher{workers: 2, total: -1, limit: bigLimit}
	runFor(b, time.Millisecond, 5)
	require.Equal(t, 200, b.size(-1))

	slow := runFor(b, 40*time.Millisecond, 10)
	t.Logf("1ms, then 40ms calls: %v", slow)
	assert.LessOrEqual(t, slow[1], slow[0]/2, "a batch of %d calls that took %v is followed by one of %d",
		slow[0], time.Duration(slow[0])*40*time.Millisecond, slow[1])
	for i := 1; i < len(slow); i++ {
		assert.LessOrEqual(t, slow[i], slow[i-1], "grew while over the target: %v", slow)
	}
	assert.Equal(t, 5, slow[len(slow)-1], "0.2s of 40ms calls")

	fast := runFor(b, 100*time.Microsecond, 25)
	t.Logf("then 100µs calls: %v", fast)
	for i := 1; i < len(fast); i++ {
		assert.GreaterOrEqual(t, fast[i], fast[i-1], "shrank while under the target: %v", fast)
	}
	assert.Equal(t, unknownTotalBatch, fast[len(fast)-1], "0.2s of 100µs calls, capped for an unknown total")
}

// Whatever the costs, batch by batch: one that took under the target is
// not followed by a smaller one, and one that took over 1s (five times
// the target) is followed by a smaller one.
func TestBatcherDecisions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := &batcher{workers: 2, total: -1, limit: bigLimit}
	k := b.size(-1)
	for i := range 5000 {
		// Costs from 1µs to 1s, log-uniform, in runs.
		d := time.Duration(float64(time.Microsecond) * math.Pow(10, 6*r.Float64()))
		for range 1 + r.IntN(4) {
			took := time.Duration(k) * d
			b.observe(ran(k, d))
			next := b.size(-1)
			if took < targetBatch && next < k {
				t.Fatalf("step %d: a batch of %d that took %v (under the target) is followed by one of %d", i, k, took, next)
			}
			if took > 5*targetBatch && k > 1 && next >= k {
				t.Fatalf("step %d: a batch of %d that took %v is followed by one of %d", i, k, took, next)
			}
			k = next
		}
	}
}

// With the total known, a batch is at most a quarter of each worker's
// share of what is left (Python's chunksize: len / (4 * workers),
// rounded up), however fast the calls.
func TestBatcherShareOfWhatIsLeft(t *testing.T) {
	b := &batcher{workers: 2, total: 1000, limit: bigLimit}
	b.observe(ran(1, time.Microsecond))
	for _, c := range []struct{ left, want int }{{1000, 125}, {999, 125}, {100, 13}, {9, 2}, {8, 1}, {1, 1}} {
		assert.Equal(t, c.want, b.size(c.left), "%d left", c.left)
	}
	// Slow calls: the time rule is the smaller.
	b = &batcher{workers: 2, total: 1000, limit: bigLimit}
	b.observe(ran(1, 10*time.Millisecond))
	assert.Equal(t, 20, b.size(1000))
}

// Batches stay within MaxTasksPerChild and within what fits a message;
// ChunkSize fixes their size, within those, whatever is measured.
func TestBatcherLimits(t *testing.T) {
	p := &Pool{n: 2, o: options{maxTasks: 3}}
	b := newBatcher(p, -1, 4096)
	b.observe(ran(1, time.Microsecond))
	assert.Equal(t, 3, b.size(-1), "MaxTasksPerChild(3)")

	b = newBatcher(&Pool{n: 2}, -1, 50)
	b.observe(ran(1, time.Microsecond))
	assert.Equal(t, 50, b.size(-1), "50 values fit a message")

	// Arguments of 100 KB: a batch takes at most a quarter of a message.
	b = newBatcher(&Pool{n: 2}, -1, 4096)
	b.observe(ran(1, time.Microsecond))
	b.observeSize(100<<10, 1)
	k := b.size(-1)
	assert.Positive(t, k)
	assert.LessOrEqual(t, k*100<<10, maxMessage/4, "batches of %d", k)
	b.observeSize(400<<10, 1) // larger ones: the estimate follows at once
	assert.Equal(t, 1, b.size(-1))

	for _, c := range []struct{ chunk, fit, maxTasks, want int }{{7, 4096, 0, 7}, {1000, 100, 0, 100}, {10, 4096, 4, 4}, {1, 4096, 0, 1}} {
		b := newBatcher(&Pool{n: 2, o: options{chunk: c.chunk, maxTasks: c.maxTasks}}, 10000, c.fit)
		assert.Equal(t, c.want, b.size(10000), "ChunkSize(%d), %d fit, MaxTasksPerChild(%d): before any answer", c.chunk, c.fit, c.maxTasks)
		b.observe(ran(1, time.Second))
		assert.Equal(t, c.want, b.size(10000), "ChunkSize(%d), %d fit, MaxTasksPerChild(%d): after slow calls", c.chunk, c.fit, c.maxTasks)
	}
}

// The window of batches in flight: one probe per worker before the first
// measure, then many small batches or a few large ones.
func TestBatcherWindow(t *testing.T) {
	b := &batcher{workers: 2, total: -1, limit: bigLimit}
	assert.Equal(t, 2, b.window())
	b.observe(ran(1, time.Second))
	assert.Equal(t, maxWindow, b.window(), "batches of 1")
	b = &batcher{workers: 2, total: -1, limit: bigLimit}
	b.observe(ran(1, time.Millisecond))
	assert.Equal(t, 6, b.window(), "batches of 200: 2 per worker and 2")
	fixed := newBatcher(&Pool{n: 2, o: options{chunk: 1}}, -1, 4096)
	assert.Equal(t, maxWindow, fixed.window(), "ChunkSize(1): no probing")
}
