package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/internal/futex"
	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/race"
	"github.com/xproc-go/xproc/internal/region"
	"github.com/xproc-go/xproc/internal/spin"
	"github.com/xproc-go/xproc/internal/wait"
	xsync "github.com/xproc-go/xproc/sync"
)

// Errors. Packages queue and pipe wrap or translate them.
var (
	ErrFull     = errors.New("ring full")
	ErrEmpty    = errors.New("ring empty")
	ErrTooLarge = errors.New("message larger than the maximum")
	ErrShutdown = errors.New("ring shut down")
	ErrCorrupt  = errors.New("ring corrupt")
	ErrClosed   = errors.New("ring's segment closed")
	ErrNotOwner = errors.New("record not held by this process")
)

// ShortBufferError is returned when the caller's buffer is smaller than
// the next message, which stays where it was (Python's BufferTooShort).
// It matches io.ErrShortBuffer. Packages queue and pipe return it.
type ShortBufferError struct {
	Need int // the message's length
}

func (e *ShortBufferError) Error() string {
	return fmt.Sprintf("buffer too small: the message has %d bytes", e.Need)
}

// Is makes errors.Is(err, io.ErrShortBuffer) true.
func (e *ShortBufferError) Is(target error) bool { return target == io.ErrShortBuffer }

// Error records a failed operation of package queue or pipe.
type Error struct {
	Pkg  string // "queue" or "pipe"
	Op   string // "put", "recv", ...
	Name string // the queue's or pipe's name; "" if anonymous
	Err  error
}

// Error formats the error as "pkg: op name: cause".
func (e *Error) Error() string {
	name := e.Name
	if name == "" {
		name = "(anonymous)"
	}
	return e.Pkg + ": " + e.Op + " " + name + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Sizes.
const (
	// HeaderSize is the size of a record header.
	HeaderSize = 32
	// ControlSize is the size of the control block before the records.
	ControlSize = 1024
	// MinSize is the smallest ring.
	MinSize = 4096
	// MaxSize is the largest ring (a record length must fit in 32 bits).
	MaxSize = 1 << 31
)

// Record flags (word 1, bits 48-63).
const (
	// FlagPad marks a padding record.
	FlagPad = 1 << 0
	// FlagReturned marks a record that went back to READY after a claim
	// (Nak, or its consumer died).
	FlagReturned = 1 << 1
	// FlagDied marks a record whose consumer died holding it; word 3 is
	// that consumer's identity.
	FlagDied = 1 << 2
	// FlagFirst, FlagMore and FlagChunk frame a message sent in chunks
	// (pipe): the first chunk has FlagFirst and word 3 holds the total
	// length; every chunk but the last has FlagMore.
	FlagFirst = 1 << 3
	FlagMore  = 1 << 4
	// FlagChunk marks every chunk of a chunked message but the first.
	FlagChunk = 1 << 5
	// flagUser are the flags a producer may set.
	flagUser = FlagFirst | FlagMore | FlagChunk
)

// Ring flags (Control.Flags).
const (
	// NoPut: producers get ErrShutdown; consumers get it once the ring
	// is empty.
	NoPut = 1 << 0
	// NoGet: consumers get ErrShutdown at once (and so do producers).
	NoGet = 1 << 1
)

// State word encoding.
const (
	stWriting = 0
	stReady   = 1 << 30
	stLeased  = 2 << 30
	stDone    = 3 << 30
	stMask    = 3 << 30
)

// tag names the position pos in a state word: pos>>3 spread over bits
// 0-29 and 32-63, mixed with the ring's salt. The salt (random, chosen at
// creation) keeps bytes that happen to hold another ring's state words
// (a queue carrying a dump of another queue) from passing for this
// ring's.
func (r *Ring) tag(pos uint64) uint64 {
	x := pos >> 3
	return (x&(1<<30-1) | (x>>30)<<32) ^ r.salt
}

func (r *Ring) ready(pos uint64) uint64 { return stReady | r.tag(pos) }
func (r *Ring) done(pos uint64) uint64  { return stDone | r.tag(pos) }
func leased(id owner.ID) uint64 {
	return stLeased | uint64(id)
}

// Control is the ring's control block, ControlSize bytes at the start of
// the ring's memory. Its zero value is an empty ring.
type Control struct {
	// Producers' line. Lock guards the writes of everything on this line
	// except Void, and the writing of record headers.
	Lock    xsync.Mutex
	Tail    atomic.Uint64 // end of the last claimed record
	Head    atomic.Uint64 // start of the oldest record not yet freed
	Put     atomic.Uint64 // messages claimed (the last one's sequence number)
	LastRec atomic.Uint64 // position of the last record claimed
	Void    atomic.Uint64 // claimed records that never became messages
	_       [128 - 48]byte

	// Consumers' line.
	Read     atomic.Uint64 // read cursor: every record below it was claimed
	Returned atomic.Uint64 // hint: records went back to READY below Read
	Removed  atomic.Uint64 // messages acknowledged
	_        [128 - 24]byte

	// Wake-ups: consumers sleep on DataSeq, producers on SpaceSeq.
	DataSeq      atomic.Uint32
	DataWaiters  atomic.Uint32
	SpaceSeq     atomic.Uint32
	SpaceWaiters atomic.Uint32
	_            [128 - 16]byte

	// Queue state.
	Flags       atomic.Uint64
	LastScan    atomic.Int64 // Unix ns of the last dead-owner scan
	TaskDone    atomic.Uint64
	Discarded   atomic.Uint64
	JoinSeq     atomic.Uint32
	JoinWaiters atomic.Uint32
	_           [128 - 40]byte

	// User is free for the ring's owner (pipe ends).
	User [(ControlSize - 4*128) / 8]atomic.Uint64
}

// Header is a record's header as read: word 1 (length, deliveries,
// flags), the sequence number and the aux word. Three words, so that a
// Slot and an error come back from a claim in registers.
type Header struct {
	W1  uint64
	Seq uint64 // sequence number (messages), 0 for padding
	Aux uint64 // see the package doc
}

// Len returns the payload's length in bytes.
func (h Header) Len() int { return int(uint32(h.W1)) }

// Deliveries returns how many times the record was claimed, this claim
// included.
func (h Header) Deliveries() int { return int(uint16(h.W1 >> 32)) }

// Flags returns the record's Flag* bits.
func (h Header) Flags() uint16 { return uint16(h.W1 >> 48) }

// DiedOwner returns the consumer that died holding the record before, if
// FlagDied is set.
func (h Header) DiedOwner() owner.ID {
	if h.Flags()&FlagDied == 0 {
		return 0
	}
	return owner.ID(h.Aux)
}

// Slot is a claimed record: reserved by a producer or leased by a consumer.
type Slot struct {
	Pos  uint64
	Hdr  Header
	Data []byte // the payload, in the ring: valid until released
}

// Ring is one process's handle on a ring. Its methods are safe for
// concurrent use.
type Ring struct {
	c          *Control
	buf        []byte
	size, mask uint64
	maxPayload uint64
	maxMsgs    uint64
	salt       uint64
	single     bool // one producer process: no lock
	reg        *region.Region
	// Spin bounds the spinning before a blocked call sleeps.
	Spin time.Duration
	// OnCheck, if set, runs (at most every CheckInterval) in blocked
	// calls, before the dead-owner scan; pipes check their peer in it.
	OnCheck func()
	// alive decides whether a record's owner may still use the ring.
	alive func(owner.ID) bool
	// headHint is where this process last saw the head, so that Release
	// can tell when to advance it without reading the producers' line.
	headHint atomic.Uint64
	batch    uint64
}

// Config is what a ring's creator chose; the opener reads it back from
// the segment header, not from the ring.
type Config struct {
	Size        uint64 // bytes of records: a power of two in [MinSize, MaxSize]
	MaxPayload  uint64 // largest message
	MaxMessages uint64 // 0: no limit on the number of messages
	// Salt mixes the position tags of state words (see NewSalt).
	Salt uint64
	// SingleProducer rings (a pipe's) have one producing process, whose
	// goroutines the caller serialises: producers take no lock, and a
	// dead producer ends the ring rather than being recovered from.
	SingleProducer bool
}

// NewSalt returns a random salt for a new ring.
func NewSalt() uint64 { return rand.Uint64() &^ stMask }

// Check validates c.
func (c Config) Check() error {
	if c.Size < MinSize || c.Size > MaxSize || c.Size&(c.Size-1) != 0 {
		return fmt.Errorf("ring size %d: must be a power of two from %d to %d", c.Size, MinSize, uint64(MaxSize))
	}
	if RecordLen(c.MaxPayload) > c.Size/2 || c.MaxPayload > c.Size {
		return fmt.Errorf("maximum message %d: a record of it must fit in half the ring (%d bytes)", c.MaxPayload, c.Size)
	}
	if c.Salt&stMask != 0 {
		return fmt.Errorf("salt %#x has bits 30-31 set", c.Salt)
	}
	return nil
}

// MaxPayloadFor returns the largest payload a ring of size bytes takes.
func MaxPayloadFor(size uint64) uint64 { return size/2 - HeaderSize }

// RecordLen returns the length of a record carrying n payload bytes.
func RecordLen(n uint64) uint64 { return (HeaderSize + n + 7) &^ 7 }

// MemSize returns the bytes of memory a ring of cfg.Size needs.
func MemSize(cfg Config) uint64 { return ControlSize + cfg.Size }

// New attaches to the ring in mem (MemSize(cfg) bytes, 8-byte aligned,
// zero for a new ring). cfg must pass Check.
func New(mem []byte, cfg Config) (*Ring, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if uint64(len(mem)) != MemSize(cfg) {
		return nil, fmt.Errorf("ring memory of %d bytes, want %d", len(mem), MemSize(cfg))
	}
	c, buf, err := view(mem)
	if err != nil {
		return nil, err
	}
	r := &Ring{
		c: c, buf: buf, size: cfg.Size, mask: cfg.Size - 1,
		maxPayload: cfg.MaxPayload, maxMsgs: cfg.MaxMessages,
		salt: cfg.Salt, single: cfg.SingleProducer,
		batch: min(max(cfg.Size/16, MinSize), 64<<10),
		reg:   region.Lookup(c), Spin: spin.Limit,
	}
	r.alive = r.reg.Alive
	return r, nil
}

// Control returns the control block.
func (r *Ring) Control() *Control { return r.c }

// Size returns the bytes of records.
func (r *Ring) Size() uint64 { return r.size }

// MaxPayload returns the largest message.
func (r *Ring) MaxPayload() uint64 { return r.maxPayload }

// MaxMessages returns the message limit, 0 for none.
func (r *Ring) MaxMessages() uint64 { return r.maxMsgs }

// Region returns the segment region the ring lives in (nil in ordinary
// memory).
func (r *Ring) Region() *region.Region { return r.reg }

// SetAlive replaces the liveness check (tests).
func (r *Ring) SetAlive(f func(owner.ID) bool) { r.alive = f }

// --- header access ---

// hdrWord returns word i of the header of the record at pos; the caller
// has checked that the header fits before the end of the ring.
func (r *Ring) hdrWord(pos uint64, i uint64) *atomic.Uint64 {
	return word(r.buf, pos&r.mask+8*i)
}

func (r *Ring) state(pos uint64) *atomic.Uint64 { return r.hdrWord(pos, 0) }

// room returns the bytes from pos to the end of the ring.
func (r *Ring) room(pos uint64) uint64 { return r.size - pos&r.mask }

func packW1(n uint64, deliveries int, flags uint16) uint64 {
	return n | uint64(deliveries)<<32 | uint64(flags)<<48
}

// header reads the header of the record at pos and its length, checking
// them. ok is false if they cannot be a record's.
func (r *Ring) header(pos uint64) (h Header, length uint64, ok bool) {
	if pos%8 != 0 {
		return h, 0, false // records start on words
	}
	room := r.room(pos)
	if room < HeaderSize {
		// Too close to the end for a header: only padding can be here.
		return Header{W1: packW1(0, 0, FlagPad)}, room, true
	}
	h.W1 = r.hdrWord(pos, 1).Load()
	n, pad := uint64(h.Len()), h.Flags()&FlagPad != 0
	length = RecordLen(n)
	if length > room || (!pad && n > r.maxPayload) || (pad && length != room) {
		return h, 0, false
	}
	h.Seq = r.hdrWord(pos, 2).Load()
	h.Aux = r.hdrWord(pos, 3).Load()
	return h, length, true
}

func (r *Ring) payload(pos uint64, n int) []byte {
	i := pos&r.mask + HeaderSize
	return r.buf[i : i+uint64(n) : i+uint64(n)]
}

func (r *Ring) corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// --- producers ---

// lock takes the producers' lock, repairing after a holder that died.
func (r *Ring) lock(ctx context.Context) error {
	err := r.c.Lock.LockContext(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, xsync.ErrOwnerDead):
		r.repair()
		return nil
	case errors.Is(err, xsync.ErrClosed):
		return ErrClosed
	}
	return err
}

func (r *Ring) unlock() { r.c.Lock.Unlock() }

// repair fixes the put count after a lock holder died between publishing
// a record (tail) and counting it (Put). Called with the lock held.
func (r *Ring) repair() {
	c := r.c
	lr, t, h := c.LastRec.Load(), c.Tail.Load(), c.Head.Load()
	if lr < h || lr >= t || lr%8 != 0 || r.room(lr) < HeaderSize {
		return // not published, or freed since: counted long ago
	}
	if seq := r.hdrWord(lr, 2).Load(); seq == c.Put.Load()+1 {
		relaxed(&c.Put, seq)
	}
}

// walkDone returns the end of the run of DONE records from h up to rc,
// and false if a record on the way is not one (the head moved under a
// walk without the lock, or the ring is corrupt).
func (r *Ring) walkDone(h, rc uint64) (uint64, bool) {
	if h%8 != 0 {
		return h, false
	}
	for h < rc && rc-h <= r.size {
		if r.room(h) >= HeaderSize && r.state(h).Load() != r.done(h) {
			return h, true
		}
		_, n, ok := r.header(h)
		if !ok || h+n > rc {
			return h, false
		}
		h += n
	}
	return h, true
}

// advance moves the head over DONE records below the read cursor. Called
// by producers short of room, with the lock held (so that freed records
// are not reused while it walks them). Consumers advance the head too
// (advanceBatch), so the head moves by CAS.
func (r *Ring) advance() error {
	c := r.c
	for {
		start, rc, t := c.Head.Load(), c.Read.Load(), c.Tail.Load()
		if rc < start || rc > t || t-start > r.size || (start|rc|t)%8 != 0 {
			return r.corrupt("head %d, read cursor %d, tail %d", start, rc, t)
		}
		h, ok := r.walkDone(start, rc)
		if !ok && c.Head.Load() == start {
			return r.corrupt("record at %d", h)
		}
		if h == start || c.Head.CompareAndSwap(start, h) {
			return nil
		}
	}
}

// advanceBatch is the consumers' advance of the head: best effort, after
// a release that leaves at least batch bytes of records behind the head.
// The records it walks are the ones this consumer just read, usually
// still in its cache, where the producer's walk would fetch every one of
// them from the consumer's core; and it touches the producers' line once
// per batch, not once per message. Measured with 64-byte messages between
// two processes, this took a queue from 3.4 to 8-24 M messages/s.
func (r *Ring) advanceBatch() {
	c := r.c
	start := c.Head.Load()
	h, _ := r.walkDone(start, c.Read.Load())
	r.headHint.Store(h)
	if h != start {
		c.Head.CompareAndSwap(start, h)
	}
}

// tryReserve claims a record for n payload bytes. It returns ErrFull if
// there is no room (or the message limit is reached).
func (r *Ring) tryReserve(ctx context.Context, n uint64, flags uint16, s *Slot) error {
	c := r.c
	need := RecordLen(n)
	// Obviously full (nothing claimed, so nothing to free): fail without
	// taking the lock, so that blocked producers polling do not contend.
	// Indices that cannot be (a corrupt ring) and a shut-down ring go on
	// to the checks below.
	if t, h := c.Tail.Load(), c.Head.Load(); t >= h && t-h <= r.size && (t|h)%8 == 0 && t+need > h+r.size && c.Read.Load() == h && c.Flags.Load() == 0 {
		return ErrFull
	}
	if !r.single {
		if !c.Lock.TryLock() { // the uncontended case, inlined
			if err := r.lock(ctx); err != nil {
				return err
			}
		}
		err := r.reserveLocked(n, flags, s)
		c.Lock.Unlock()
		return err
	}
	return r.reserveLocked(n, flags, s)
}

// reserveLocked is tryReserve under the lock (or for the single producer).
func (r *Ring) reserveLocked(n uint64, flags uint16, s *Slot) error {
	c := r.c
	need := RecordLen(n)
	if f := c.Flags.Load(); f != 0 {
		return ErrShutdown
	}
	if r.maxMsgs != 0 {
		in := int64(c.Put.Load() - c.Void.Load() - c.Removed.Load())
		if in > int64(r.size/HeaderSize) {
			// More messages than records fit: the counts are corrupt.
			// (Fewer than none can be: a process killed between its
			// count and its change leaves an over-count of Void or
			// Removed, or a Put for the lock's next holder to repair.)
			return r.corrupt("counts: %d put, %d void, %d removed", c.Put.Load(), c.Void.Load(), c.Removed.Load())
		}
		if in >= int64(r.maxMsgs) {
			return ErrFull
		}
	}
	self := uint64(owner.Self())
	for advanced := false; ; {
		t, h := c.Tail.Load(), c.Head.Load()
		if t < h || t-h > r.size || (t|h)%8 != 0 {
			return r.corrupt("head %d, tail %d", h, t)
		}
		if room := r.room(t); room < need {
			// Pad to the end of the ring first, if the padding fits.
			if t+room <= h+r.size {
				if room >= HeaderSize {
					relaxed(r.hdrWord(t, 1), packW1(room-HeaderSize, 0, FlagPad))
				}
				relaxed(r.state(t), r.done(t))
				r.publishTail(t + room)
				continue
			}
		} else if t+need <= h+r.size {
			// Plain stores: consumers read a header only after the
			// tail's release or the commit's, which publish it.
			seq := c.Put.Load() + 1
			relaxed(r.state(t), self) // WRITING by us
			relaxed(r.hdrWord(t, 1), packW1(n, 0, flags&flagUser))
			relaxed(r.hdrWord(t, 2), seq)
			relaxed(r.hdrWord(t, 3), 0)
			relaxed(&c.LastRec, t)
			r.publishTail(t + need)
			relaxed(&c.Put, seq)
			s.Pos, s.Hdr, s.Data = t, Header{W1: packW1(n, 0, flags&flagUser), Seq: seq}, r.payload(t, int(n))
			return nil
		}
		if advanced {
			return ErrFull
		}
		if err := r.advance(); err != nil {
			return err
		}
		advanced = true
	}
}

// publishTail moves the tail with a release, with or without the lock:
// consumers read the tail without the lock, to tell an empty ring from a
// record not yet committed, and then read the record's state word, which
// must be the one written before the tail moved (on arm64 a plain store
// could be seen after the tail and show last lap's word).
func (r *Ring) publishTail(t uint64) { release(&r.c.Tail, t) }

// Reserve claims a record for n payload bytes into s, waiting for room if
// block is set. The caller writes s.Data and then calls Commit or Abort.
// Aux is stored in word 3 (pipes: total length of a chunked message).
// Slots are filled through a pointer, not returned: a returned Slot is
// copied through memory with wide moves that stall on store forwarding,
// which measured at a third of a put's cost.
func (r *Ring) Reserve(ctx context.Context, n int, flags uint16, aux uint64, block bool, s *Slot) error {
	if n < 0 || uint64(n) > r.maxPayload {
		return ErrTooLarge
	}
	err := r.tryReserve(ctx, uint64(n), flags, s)
	if err == ErrFull {
		if block {
			err = r.reserveSlow(ctx, uint64(n), flags, s)
		} else {
			r.polled() // room held by a dead process, maybe
		}
	}
	if err == nil && aux != 0 {
		relaxed(r.hdrWord(s.Pos, 3), aux) // published by the commit
		s.Hdr.Aux = aux
	}
	return err
}

// reserveSlow is Reserve's waiting path.
//
//go:noinline
func (r *Ring) reserveSlow(ctx context.Context, n uint64, flags uint16, s *Slot) (err error) {
	if berr := r.block(ctx, &r.c.SpaceSeq, &r.c.SpaceWaiters, func() bool {
		err = r.tryReserve(ctx, n, flags, s)
		return err != ErrFull
	}); berr != nil {
		return berr
	}
	return err
}

// Commit publishes a reserved record. For the race detector a commit
// happens before the claims that follow it, as a channel send before its
// receive (the ordering itself lives in shared memory, which the detector
// does not see). The detector is told on DataSeq, a word no lock is
// annotated on (Control.Lock, at r.c itself, is), so that producers'
// locking adds no ordering of its own.
func (r *Ring) Commit(s *Slot) {
	r.CommitDeferred(s)
	r.wakeData()
}

// CommitDeferred is Commit without waking a consumer asleep waiting for
// a message: the caller wakes them later with WakeData, once for a run of
// commits (queue.PutDeferred and Flush).
func (r *Ring) CommitDeferred(s *Slot) {
	if race.Enabled {
		race.Release(&r.c.DataSeq)
	}
	release(r.state(s.Pos), r.ready(s.Pos))
}

// Abort gives up a reserved record: it becomes void padding.
func (r *Ring) Abort(s *Slot) {
	r.c.Void.Add(1)
	release(r.state(s.Pos), r.done(s.Pos))
	r.wakeData()
}

func (r *Ring) wakeData() { r.WakeData(1) }

// WakeData wakes up to n consumers asleep waiting for a message, if there
// are any (one atomic load otherwise).
func (r *Ring) WakeData(n int) {
	if r.c.DataWaiters.Load() != 0 {
		r.c.DataSeq.Add(1)
		futex.Wake(&r.c.DataSeq, n)
	}
}

func (r *Ring) wakeSpace() {
	if r.c.SpaceWaiters.Load() != 0 {
		r.c.SpaceSeq.Add(1)
		futex.Wake(&r.c.SpaceSeq, futex.All)
	}
}

// WakeWord wakes every sleeper on w, a word of the control block.
func (r *Ring) WakeWord(w *atomic.Uint32) { futex.Wake(w, futex.All) }

// WakeAll wakes every sleeper of both directions (after a flag change).
func (r *Ring) WakeAll() {
	r.c.DataSeq.Add(1)
	futex.Wake(&r.c.DataSeq, futex.All)
	r.c.SpaceSeq.Add(1)
	futex.Wake(&r.c.SpaceSeq, futex.All)
}

// --- consumers ---

// Check decides, before a claim, whether the caller takes the record; an
// error leaves the record READY and is returned by the claim.
type Check func(Header) error

// tryClaim leases the next READY record. It returns ErrEmpty if there is
// none (a record still being written counts as none).
func (r *Ring) tryClaim(check Check, s *Slot) error { return r.claim(check, false, s) }

// Drain claims the next READY record even after NoGet (an immediate
// shutdown discards the queue's messages with it); ErrEmpty if none.
func (r *Ring) Drain(s *Slot) error { return r.claim(nil, true, s) }

func (r *Ring) claim(check Check, drain bool, s *Slot) error {
	c := r.c
	if !drain && c.Flags.Load()&NoGet != 0 {
		return ErrShutdown
	}
	if c.Returned.Load() != 0 {
		if ok, err := r.claimReturned(check, s); ok || err != nil {
			return err
		}
	}
	self := owner.Self()
	for {
		rc := c.Read.Load()
		if rc%8 != 0 {
			if c.Read.Load() == rc {
				return r.corrupt("read cursor %d", rc)
			}
			continue
		}
		room := r.room(rc)
		var w uint64
		if room >= HeaderSize {
			w = r.state(rc).Load()
		}
		if w != r.ready(rc) {
			// Not a message at the cursor (as far as a load without the
			// tail can tell): consult the tail.
			t := c.Tail.Load()
			if rc >= t {
				if rc > t {
					if c.Read.Load() == rc {
						return r.corrupt("read cursor %d beyond tail %d", rc, t)
					}
					continue
				}
				if !drain && c.Flags.Load()&NoPut != 0 && r.drained() {
					return ErrShutdown
				}
				return ErrEmpty
			}
			if t-rc > r.size || t%8 != 0 {
				// Possible only if the cursor moved since we read it.
				if c.Read.Load() == rc {
					return r.corrupt("read cursor %d, tail %d", rc, t)
				}
				continue
			}
			// rc < t: the record at rc is published; read its state again.
			w = r.done(rc) // a short padding has no header words but word 0
			if room >= HeaderSize {
				w = r.state(rc).Load()
			}
		}
		switch {
		case w == r.ready(rc):
			// The tag shows the record at rc was committed in this lap:
			// its header, written before the commit, is visible.
			h, n, ok := r.header(rc)
			if !ok {
				if c.Read.Load() == rc {
					return r.corrupt("record at %d", rc)
				}
				continue
			}
			if check != nil {
				if err := check(h); err != nil {
					if r.state(rc).Load() == w {
						return err
					}
					continue
				}
			}
			if !r.state(rc).CompareAndSwap(w, leased(self)) {
				continue
			}
			// Invariant: the record at rc is ours and cannot be freed
			// (the head never passes a LEASED record), so h and n,
			// read while it was READY at rc, still hold.
			c.Read.CompareAndSwap(rc, rc+n)
			r.leased(rc, h, s)
			return nil
		case w&stMask == stLeased || w == r.done(rc):
			// Claimed (or padding, or void) but the cursor not yet moved
			// past it: help. rc < tail, so this is a header.
			_, n, ok := r.header(rc)
			if !ok {
				if c.Read.Load() == rc {
					return r.corrupt("record at %d", rc)
				}
				continue
			}
			c.Read.CompareAndSwap(rc, rc+n)
		case w&stMask == stWriting && w != 0:
			// Being written: wait for its commit. A single producer that
			// is gone (NoPut) will never commit it.
			if r.single && !drain && c.Flags.Load()&NoPut != 0 {
				return ErrShutdown
			}
			return ErrEmpty
		default:
			if c.Read.Load() == rc {
				return r.corrupt("state word %#x at %d", w, rc)
			}
		}
	}
}

// drained reports, for a shut-down ring whose cursor reached the tail,
// whether no message can come any more: no record between the head and
// the tail is still being written, ready (given back) or leased (it may
// come back, by Nak or its consumer's death), and no producer holds the
// lock. It walks the records rather than trust the counts, which a
// process killed between a count and its change leaves one off.
func (r *Ring) drained() bool {
	if r.single {
		return true
	}
	// The lock first: once it is seen free, every claim made under it
	// before has moved the tail, and every later one sees the shutdown
	// flag and is refused.
	c := r.c
	if c.Lock.Locked() {
		return false
	}
	h, t := c.Head.Load(), c.Tail.Load()
	if t < h || t-h > r.size || (t|h)%8 != 0 {
		return false // moving under us, or corrupt: the claim reports that
	}
	for pos := h; pos < t; {
		_, n, ok := r.header(pos)
		if !ok {
			return false // freed and reused under the walk: look again later
		}
		if r.room(pos) >= HeaderSize && r.state(pos).Load() != r.done(pos) {
			return false
		}
		pos += n
	}
	return true
}

// leased completes a claim of the record at pos, read as h while READY.
func (r *Ring) leased(pos uint64, h Header, s *Slot) {
	if h.Deliveries() < 1<<16-1 {
		h.W1 += 1 << 32
	}
	// Ours while LEASED; the release that ends the lease publishes it.
	relaxed(r.hdrWord(pos, 1), h.W1)
	s.Pos, s.Hdr, s.Data = pos, h, r.payload(pos, h.Len())
}

// claimReturned looks below the read cursor for a record that went back
// to READY. ok reports a claim.
func (r *Ring) claimReturned(check Check, s *Slot) (ok bool, err error) {
	c := r.c
	ret := c.Returned.Load()
	h, rc := c.Head.Load(), c.Read.Load()
	self := owner.Self()
	for pos := h; pos < rc && rc-pos <= r.size && pos%8 == 0; {
		if r.room(pos) >= HeaderSize && r.state(pos).Load() == r.ready(pos) {
			hd, _, ok := r.header(pos)
			if ok && (check == nil || check(hd) == nil) && r.state(pos).CompareAndSwap(r.ready(pos), leased(self)) {
				r.leased(pos, hd, s)
				return true, nil
			}
			if ok && check != nil {
				if err := check(hd); err != nil {
					return false, err
				}
			}
		}
		_, n, ok := r.header(pos)
		if !ok {
			return false, nil // the head moved under us; try later
		}
		pos += n
	}
	c.Returned.CompareAndSwap(ret, 0)
	return false, nil
}

// Claim leases the next message into s, waiting for one if block is set.
func (r *Ring) Claim(ctx context.Context, check Check, block bool, s *Slot) error {
	err := r.tryClaim(check, s)
	if err == ErrEmpty {
		if block {
			err = r.claimSlow(ctx, check, s)
		} else if r.Len() > 0 || r.c.Lock.Locked() {
			r.polled() // a message, or the lock, held by a dead process, maybe
		}
	}
	if race.Enabled && err == nil {
		race.Acquire(&r.c.DataSeq) // see Commit
	}
	return err
}

// claimSlow is Claim's waiting path.
//
//go:noinline
func (r *Ring) claimSlow(ctx context.Context, check Check, s *Slot) (err error) {
	if berr := r.block(ctx, &r.c.DataSeq, &r.c.DataWaiters, func() bool {
		err = r.tryClaim(check, s)
		return err != ErrEmpty
	}); berr != nil {
		return berr
	}
	return err
}

// owns reports whether this process holds the record at pos.
func (r *Ring) owns(pos uint64) bool {
	return r.state(pos).Load() == leased(owner.Self())
}

// Release marks a leased record DONE: the message is gone.
func (r *Ring) Release(s *Slot) error {
	if !r.owns(s.Pos) {
		return ErrNotOwner
	}
	// Count first: a process killed between the two over-counts (the
	// message is delivered again and counted again), which can let a
	// bounded queue hold one message more, but never fewer.
	n := r.c.Removed.Add(1)
	release(r.state(s.Pos), r.done(s.Pos))
	if s.Pos-r.headHint.Load() >= r.batch {
		r.advanceBatch()
	}
	r.wakeSpace()
	if n%1024 == 0 {
		// Busy consumers never block, so they run the dead-owner scan
		// now and then too (at most every CheckInterval, any process).
		r.maintain(context.Background(), false)
	}
	if r.c.Flags.Load()&NoPut != 0 {
		// Consumers of a shut-down ring wait for the last message.
		r.c.DataSeq.Add(1)
		futex.Wake(&r.c.DataSeq, futex.All)
	}
	return nil
}

// Return puts a leased record back to READY: Nak, or recovery of a
// record whose consumer died (died is then that consumer).
func (r *Ring) Return(s *Slot, died owner.ID) error {
	if !r.owns(s.Pos) {
		return ErrNotOwner
	}
	h, _, ok := r.header(s.Pos)
	if !ok {
		return r.corrupt("record at %d", s.Pos)
	}
	h.W1 |= FlagReturned << 48
	if died != 0 {
		h.W1 |= FlagDied << 48
		relaxed(r.hdrWord(s.Pos, 3), uint64(died))
	}
	relaxed(r.hdrWord(s.Pos, 1), h.W1)
	if race.Enabled {
		race.Release(&r.c.DataSeq) // the record is published again, as by Commit
	}
	release(r.state(s.Pos), r.ready(s.Pos))
	r.c.Returned.Add(1)
	r.c.DataSeq.Add(1)
	futex.Wake(&r.c.DataSeq, 1)
	return nil
}

// --- waiting and recovery ---

// block waits on seq until try reports done. It returns nil when try
// did; try's own result is then the caller's to read. Otherwise it
// returns ctx.Err() or ErrClosed.
func (r *Ring) block(ctx context.Context, seq, waiters *atomic.Uint32, try func() bool) error {
	w, err := wait.Start(ctx, seq)
	if err != nil {
		return ErrClosed
	}
	defer w.Done()
	if spinFor(r.Spin, try) {
		return nil
	}
	waiters.Add(1)
	defer waiters.Add(^uint32(0))
	last := time.Now()
	for {
		v := seq.Load()
		if try() {
			return nil
		}
		if err := w.Sleep(seq, v); err != nil {
			if try() {
				return nil
			}
			// We may have taken a wake-up meant for another sleeper.
			if waiters.Load() > 1 {
				seq.Add(1)
				futex.Wake(seq, 1)
			}
			if err == wait.ErrClosed {
				return ErrClosed
			}
			return err
		}
		if time.Since(last) >= wait.CheckInterval {
			last = time.Now()
			r.maintain(ctx, true)
		}
	}
}

// Wait blocks on seq (with its sleeper count) until try reports true,
// spinning first and checking for dead owners while it sleeps. It returns
// nil when try did, ctx.Err() or ErrClosed otherwise. Queues wait for
// Join with it.
func (r *Ring) Wait(ctx context.Context, seq, waiters *atomic.Uint32, try func() bool) error {
	if try() {
		return nil
	}
	return r.block(ctx, seq, waiters, try)
}

// maintain runs the dead-owner scan if none ran in the last
// CheckInterval, in this process or another. Unless block is set it does
// not wait for the lock.
func (r *Ring) maintain(ctx context.Context, block bool) {
	if r.OnCheck != nil {
		r.OnCheck()
	}
	if r.single {
		return // a dead producer ends the ring (OnCheck); no lock to scan under
	}
	now := time.Now().UnixNano()
	last := r.c.LastScan.Load()
	// A clock that went backwards must not stop the scans.
	if now >= last && now-last < int64(wait.CheckInterval) {
		return
	}
	if !block {
		// Without waiting; but a producer that died holding the lock
		// is taken over, or a queue whose callers all poll would stay
		// blocked behind it.
		if ok, err := r.c.Lock.TryLockRobust(); !ok {
			return
		} else if err != nil {
			r.repair()
		}
	} else if r.lock(ctx) != nil {
		return
	}
	defer r.unlock()
	// Claim the scan only once the lock is held, so that a caller that
	// could not take it does not put off everyone's scan.
	if !r.c.LastScan.CompareAndSwap(last, now) {
		return
	}
	r.recoverLocked()
}

// polled runs the dead-owner scan (at most every CheckInterval, any
// process) for a caller that polls instead of blocking: TryGet on a ring
// whose only messages are a dead consumer's lease or a dead producer's
// reservation, or TryPut on one they fill, would otherwise never see them
// recovered.
func (r *Ring) polled() {
	if !r.single {
		r.maintain(context.Background(), false)
	}
}

// Recover runs the dead-owner scan now, waiting for the lock, and
// returns how many records it voided and returned.
func (r *Ring) Recover(ctx context.Context) (voided, returned int, err error) {
	if r.single {
		return 0, 0, nil
	}
	if err := r.lock(ctx); err != nil {
		return 0, 0, err
	}
	defer r.unlock()
	v, ret := r.recoverLocked()
	return v, ret, nil
}

// recoverLocked voids the records whose producer died while writing them
// and returns those whose consumer died holding them. Called with the
// lock held, so every position in [head, tail) is a record's.
func (r *Ring) recoverLocked() (voided, returned int) {
	c := r.c
	h, t := c.Head.Load(), c.Tail.Load()
	if t < h || t-h > r.size || (t|h)%8 != 0 {
		return 0, 0
	}
	dead := map[owner.ID]bool{}
	isDead := func(id owner.ID) bool {
		d, ok := dead[id]
		if !ok {
			d = !r.alive(id)
			dead[id] = d
		}
		return d
	}
	self := owner.Self()
	for pos := h; pos < t; {
		_, n, ok := r.header(pos)
		if !ok {
			break
		}
		if r.room(pos) >= HeaderSize {
			w := r.state(pos).Load()
			switch id := owner.ID(w &^ stMask); w & stMask {
			case stWriting:
				if id != 0 && isDead(id) {
					// Count first, as Release does: a scanner killed
					// here over-counts, never under-counts.
					c.Void.Add(1)
					if r.state(pos).CompareAndSwap(w, r.done(pos)) {
						voided++
					} else {
						c.Void.Add(^uint64(0))
					}
				}
			case stLeased:
				if id != self && isDead(id) && r.state(pos).CompareAndSwap(w, leased(self)) {
					if r.Return(&Slot{Pos: pos}, id) == nil {
						returned++
					}
				}
			}
		}
		pos += n
	}
	if voided > 0 {
		c.DataSeq.Add(1)
		futex.Wake(&c.DataSeq, futex.All)
	}
	return voided, returned
}

// Stats is a snapshot of a ring, for inspection.
type Stats struct {
	Head, Read, Tail uint64
	// Messages is the number of messages put and not yet removed.
	Messages int64
	// Ready, Leased and Writing count records in those states; Returned
	// counts the READY ones that were handed out before.
	Ready, Leased, Writing, Returned int
	Put, Removed, Void               uint64
	Flags                            uint64
}

// Len returns the number of messages put and not yet removed (leased
// ones included), never less than 0.
func (r *Ring) Len() int {
	c := r.c
	// Removed first: it only grows, so a later Put keeps the difference
	// from going below its true value by a concurrent removal.
	rem := c.Removed.Load()
	void := c.Void.Load()
	n := int64(c.Put.Load() - void - rem)
	return int(max(n, 0))
}

// Stats walks the ring without the lock. Records freed and reused during
// the walk make it stop early; every read is bounds-checked.
func (r *Ring) Stats() Stats {
	c := r.c
	s := Stats{Head: c.Head.Load(), Read: c.Read.Load(), Tail: c.Tail.Load(),
		Put: c.Put.Load(), Removed: c.Removed.Load(), Void: c.Void.Load(), Flags: c.Flags.Load()}
	s.Messages = int64(r.Len())
	for pos := s.Head; pos < s.Tail && s.Tail-pos <= r.size; {
		h, n, ok := r.header(pos)
		if !ok {
			break
		}
		if r.room(pos) >= HeaderSize {
			switch w := r.state(pos).Load(); {
			case w == r.ready(pos):
				s.Ready++
				if h.Flags()&FlagReturned != 0 {
					s.Returned++
				}
			case w&stMask == stLeased:
				s.Leased++
			case w&stMask == stWriting:
				s.Writing++
			}
		}
		pos += n
	}
	return s
}

// Peek reports whether a Claim would find a message (or a shutdown)
// without waiting, without claiming it.
func (r *Ring) Peek() bool {
	c := r.c
	if c.Flags.Load() != 0 || c.Returned.Load() != 0 {
		return true
	}
	for {
		rc, t := c.Read.Load(), c.Tail.Load()
		if (rc|t)%8 != 0 {
			return true // let the claim report it
		}
		if rc >= t {
			return false
		}
		if t-rc > r.size {
			return true // let the claim report it
		}
		w := r.done(rc)
		if r.room(rc) >= HeaderSize {
			w = r.state(rc).Load()
		}
		switch {
		case w == r.ready(rc):
			return true
		case w&stMask == stWriting:
			return false
		}
		_, n, ok := r.header(rc)
		if !ok {
			return true // let the claim report it
		}
		c.Read.CompareAndSwap(rc, rc+n)
	}
}

// SetFlags sets ring flags and wakes every sleeper.
func (r *Ring) SetFlags(f uint64) {
	r.c.Flags.Or(f)
	r.WakeAll()
}

// spinFor polls try for at most limit and reports whether it returned
// true. It pauses once between polls (tens of nanoseconds), not in
// bursts: a message's arrival should be seen within a fraction of the
// time the message took to cross, and a poll of an empty ring is two
// loads.
func spinFor(limit time.Duration, try func() bool) bool {
	if limit <= 0 {
		return false
	}
	start := time.Now()
	for i := 1; ; i++ {
		if try() {
			return true
		}
		spin.Pause(1)
		if i%256 == 0 && time.Since(start) >= limit {
			return false
		}
	}
}
