package pool

import "time"

// batcher sizes the batches of one call (see ChunkSize).
type batcher struct {
	workers int
	total   int // inputs in all; -1 if unknown
	fixed   int // ChunkSize; 0: automatic
	limit   int // the most a message can carry, and MaxTasksPerChild
	perCall float64
	known   bool    // perCall has been measured
	perItem float64 // bytes of a task message per input, measured
}

// targetBatch is how long an automatic batch should take: joblib's
// MIN_IDEAL_BATCH_DURATION. Shorter batches spend a larger share on
// messages; longer ones balance worse.
const targetBatch = 200 * time.Millisecond

// unknownTotalBatch caps automatic batches when the number of inputs is
// unknown (Imap), so that only a bounded part of the input is read ahead.
const unknownTotalBatch = 1024

func newBatcher(p *Pool, total, fit int) *batcher {
	limit := fit
	if p.o.maxTasks > 0 {
		limit = min(limit, p.o.maxTasks)
	}
	return &batcher{workers: p.n, total: total, fixed: p.o.chunk, limit: max(1, limit)}
}

// size returns the size of the next batch, with left inputs left (if the
// total is known).
func (b *batcher) size(left int) int {
	if b.fixed > 0 {
		return min(b.fixed, b.limit)
	}
	if !b.known {
		return 1 // a probe: measure before growing
	}
	k := b.limit
	if b.perItem > 0 {
		// Leave room: arguments vary in size, and results may be larger.
		k = min(k, max(1, int(maxMessage/4/b.perItem)))
	}
	if b.perCall > 0 {
		k = min(k, max(1, int(float64(targetBatch)/b.perCall)))
	}
	if b.total >= 0 {
		// Python's default chunking: each worker's share of what is left,
		// in four.
		k = min(k, max(1, (left+4*b.workers-1)/(4*b.workers)))
	} else {
		k = min(k, unknownTotalBatch)
	}
	return max(1, k)
}

// window returns how many batches may be in flight at once: enough to
// keep every worker busy while answers travel, and more when batches are
// small, since each then costs a round trip.
func (b *batcher) window() int {
	if b.fixed == 0 && !b.known {
		return b.workers // one probe each
	}
	size := b.fixed
	if size == 0 {
		size = b.size(b.total)
	}
	return min(maxWindow, max(2*b.workers+2, 512/max(1, size)))
}

// observe takes the time the workers report for a batch into account.
func (b *batcher) observe(r *result) {
	if r.status != statusOK || r.count == 0 {
		return
	}
	t := float64(r.ns) / float64(r.count)
	if !b.known {
		b.perCall, b.known = t, true
		return
	}
	b.perCall = 0.7*b.perCall + 0.3*t
}

// observeSize takes the size of a task message of count inputs into
// account, to keep batches well within a message.
func (b *batcher) observeSize(bytes, count int) {
	t := float64(bytes) / float64(count)
	if b.perItem == 0 {
		b.perItem = t
		return
	}
	b.perItem = max(t, 0.7*b.perItem+0.3*t)
}
