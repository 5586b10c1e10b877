// Package region keeps this process's table of mapped segments, so that a
// primitive that only knows its own address (a Mutex that is a field of a
// shared struct) can find the segment around it: to keep the mapping alive
// while it sleeps, to learn that the segment is being closed, and to ask
// whether a process attached to the segment has died.
package region

import (
	"context"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/owner"
)

// Region is one mapping of a segment in this process.
type Region struct {
	lo, hi uintptr
	// users counts operations that may touch the mapping while sleeping;
	// closingBit is set once Close has begun.
	users     atomic.Int64
	drained   chan struct{}
	drainOnce sync.Once
	stop      context.Context
	cancel    context.CancelFunc
	attach    []atomic.Uint64
	lock      *os.File // holds this process's liveness lock; nil if none
	slot      int
	party     atomic.Bool // this process has marked its entry a barrier party
}

// PartyBit marks an attach-table entry whose process is a barrier party
// (owner IDs never use bits 30 and 31).
const PartyBit = 1 << 30

// EntryID returns the process identity in an attach-table entry, without
// its flag bits.
func EntryID(e uint64) owner.ID { return owner.ID(e &^ (PartyBit | 1<<31)) }

const closingBit = 1 << 62

var (
	mu      sync.Mutex
	regions atomic.Pointer[[]*Region] // sorted by lo; replaced, never mutated
)

// Register records a mapping of mem whose attach table is attach (nil if
// none), and claims an attach slot for this process. lock is the open file
// through which this process holds its liveness lock on the segment
// (owner.Attach), or nil if it holds none; Alive asks through it. The
// caller keeps it open until after Close.
func Register(mem []byte, attach []atomic.Uint64, lock *os.File) *Region {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	ctx, cancel := context.WithCancel(context.Background())
	r := &Region{
		lo: lo, hi: lo + uintptr(len(mem)),
		drained: make(chan struct{}),
		stop:    ctx, cancel: cancel,
		attach: attach, lock: lock, slot: -1,
	}
	r.slot = r.claimSlot()
	mu.Lock()
	defer mu.Unlock()
	var next []*Region
	if cur := regions.Load(); cur != nil {
		next = slices.Clone(*cur)
	}
	i, _ := slices.BinarySearchFunc(next, lo, func(r *Region, lo uintptr) int { return cmpAddr(r.lo, lo) })
	next = slices.Insert(next, i, r)
	regions.Store(&next)
	return r
}

func cmpAddr(a, b uintptr) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Lookup returns the region containing p, or nil if p is not in a mapped
// segment (ordinary Go memory, for instance).
func Lookup[T any](p *T) *Region {
	cur := regions.Load()
	if cur == nil {
		return nil
	}
	a := uintptr(unsafe.Pointer(p))
	rs := *cur
	i, found := slices.BinarySearchFunc(rs, a, func(r *Region, a uintptr) int { return cmpAddr(r.lo, a) })
	if !found {
		i--
	}
	if i < 0 || a >= rs[i].hi {
		return nil
	}
	return rs[i]
}

// Enter marks the start of an operation that may sleep while touching the
// mapping. It reports false if the region is closing; the caller must
// then not touch the mapping. Every successful Enter needs a Leave. A nil
// region is always enterable.
func (r *Region) Enter() bool {
	if r == nil {
		return true
	}
	if r.users.Add(1)&closingBit != 0 {
		r.Leave()
		return false
	}
	return true
}

// Leave ends an operation begun by Enter.
func (r *Region) Leave() {
	if r == nil {
		return
	}
	if r.users.Add(-1) == closingBit {
		// Late Enters that failed also land here; close only once.
		r.drainOnce.Do(func() { close(r.drained) })
	}
}

// Stop returns a context that is done once Close has begun: sleeping
// operations return when it is.
func (r *Region) Stop() context.Context {
	if r == nil {
		return nil
	}
	return r.stop
}

// Close stops new operations, wakes the sleeping ones through Stop, waits
// until they have left, releases this process's attach slot and forgets
// the region. The caller unmaps afterwards.
func (r *Region) Close() {
	n := r.users.Add(closingBit)
	r.cancel()
	if n != closingBit {
		// Sleepers see the stop context when they next wake: now, or at
		// the next futex tick if one was just about to fall asleep.
		futex.WakeRange(r.lo, r.hi)
		<-r.drained
	}
	if r.slot >= 0 {
		if e := r.attach[r.slot].Load(); EntryID(e) == owner.Self() {
			r.attach[r.slot].CompareAndSwap(e, 0)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(*regions.Load()), func(x *Region) bool { return x == r })
	regions.Store(&next)
}

// claimSlot records this process in the attach table. If the table is
// full it first reaps entries of dead processes that are not barrier
// parties (a dead party's entry is how waiting parties learn of its
// death; Reset clears those); if it is still full the process is simply
// not recorded (see Attached).
func (r *Region) claimSlot() int {
	self := uint64(owner.Self())
	for range 2 {
		for i := range r.attach {
			if r.attach[i].Load() == 0 && r.attach[i].CompareAndSwap(0, self) {
				return i
			}
		}
		if r.reap(false) == 0 {
			break
		}
	}
	return -1
}

// Alive reports whether the process id still maps this segment: false
// once it has died, exec'd another program or closed the segment, none of
// which leaves it able to touch the segment again. The kernel answers,
// through the liveness locks (owner.Attached), so the answer is right
// across PID namespaces; it costs a system call. If the kernel cannot be
// asked this time, the answer is "alive": a lock is never taken on a
// guess. Without liveness locks at all (a nil region, for memory that is
// not a segment, or a file system without them, where every process
// falls back alike) it asks owner.Alive, which judges by /proc.
func (r *Region) Alive(id owner.ID) bool {
	if id == owner.Self() {
		return true
	}
	if r != nil && r.lock != nil {
		attached, err := owner.Attached(r.lock, id)
		return attached || err != nil
	}
	return owner.Alive(id)
}

// Attached returns the identities in the attach table.
func (r *Region) Attached() []owner.ID {
	var ids []owner.ID
	for i := range r.attach {
		if id := EntryID(r.attach[i].Load()); id != 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// MarkParty records in this process's attach entry that it is a barrier
// party, so that waiting parties notice if it dies. It costs one load
// after the first call.
func (r *Region) MarkParty() {
	if r == nil || r.slot < 0 || r.party.Load() {
		return
	}
	for {
		e := r.attach[r.slot].Load()
		if EntryID(e) != owner.Self() || r.attach[r.slot].CompareAndSwap(e, e|PartyBit) {
			break
		}
	}
	r.party.Store(true)
}

// DeadParty returns a process marked as a barrier party that has died
// without closing the segment, if there is one.
func (r *Region) DeadParty() (owner.ID, bool) {
	if r == nil {
		return 0, false
	}
	for i := range r.attach {
		e := r.attach[i].Load()
		if e&PartyBit != 0 && !r.Alive(EntryID(e)) {
			return EntryID(e), true
		}
	}
	return 0, false
}

// Reap clears the attach entries of dead processes and returns how many
// it cleared.
func (r *Region) Reap() int { return r.reap(true) }

// reap clears the entries of dead processes, those of barrier parties
// only if parties is true.
func (r *Region) reap(parties bool) int {
	if r == nil {
		return 0
	}
	n := 0
	for i := range r.attach {
		e := r.attach[i].Load()
		if e != 0 && (parties || e&PartyBit == 0) && !r.Alive(EntryID(e)) && r.attach[i].CompareAndSwap(e, 0) {
			n++
		}
	}
	return n
}
