package pipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/region"
	"github.com/xproc-go/xproc/internal/ring"
	"github.com/xproc-go/xproc/shm"
)

// Errors returned by this package, wrapped in an *Error naming the
// operation and the pipe. Compare with errors.Is. Recv returns io.EOF
// itself, unwrapped, as io.Reader does.
var (
	// ErrBusy: both ends of the pipe are taken.
	ErrBusy = errors.New("pipe already has both ends")
	// ErrPeerClosed: Send after the other end closed or died.
	ErrPeerClosed = errors.New("the other end of the pipe is closed")
	// ErrDirection: Send on the receiving end of a one-way pipe, or a
	// receive call on its sending end.
	ErrDirection = errors.New("wrong direction for a one-way pipe")
	// ErrTooLarge: the message is larger than the pipe's MaxMessage.
	ErrTooLarge = errors.New("message larger than the pipe's maximum")
	// ErrCorrupt is shm.ErrCorrupt: the pipe's rings are not what any
	// correct process writes.
	ErrCorrupt = shm.ErrCorrupt
	// ErrClosed is shm.ErrClosed: this end was closed.
	ErrClosed = shm.ErrClosed
)

// Error records a failed pipe operation: Pkg is "pipe", Op the operation
// ("put", "recv", ...), Name the pipe's name ("" if anonymous), Err the
// cause. It formats as "pipe: op name: cause".
type Error = ring.Error

// ShortBufferError is returned when a buffer is smaller than the next
// message, whose length is Need; the message stays. It matches
// io.ErrShortBuffer (Python's BufferTooShort).
type ShortBufferError = ring.ShortBufferError

// Direction says which way a pipe carries messages.
type Direction int

const (
	// Duplex pipes carry messages both ways (Python's Pipe()).
	Duplex Direction = iota
	// CreatorSends pipes carry messages from the end made by Create to the
	// end made by Open only (Python's Pipe(duplex=False), with the
	// creator holding the sending end).
	CreatorSends
	// OpenerSends pipes carry messages from the opener to the creator.
	OpenerSends
)

// Options choose a pipe's shape. The zero value is a duplex pipe with a
// 256 KiB ring per direction and messages of up to 1 GiB.
type Options struct {
	Direction Direction
	// Size is each direction's ring in bytes, rounded up to a power of
	// two from 4 KiB to 2 GiB; 0 means 256 KiB. Messages larger than a
	// quarter of it travel in chunks.
	Size int
	// MaxMessage is the largest message in bytes; 0 means 1 GiB. A
	// receiver allocates a message's length before its bytes arrive, so
	// this bounds what a peer can make it allocate.
	MaxMessage int
}

// Defaults.
const (
	DefaultSize       = 256 << 10
	DefaultMaxMessage = 1 << 30
)

// Params recorded in the segment header.
const (
	paramSize = iota
	paramDirection
	paramMaxMessage
	paramRingVersion
	paramSalt
)

const ringVersion = 1

// End words in the first ring's control block: the creator's and the
// opener's identity, with endClosed once that end closed.
const (
	endCreator = 0
	endOpener  = 1
	noEnd      = -1 // Stat: look, take no end
	endClosed  = 1 << 31
)

func (o Options) config() (ring.Config, uint64, error) {
	size := uint64(DefaultSize)
	switch {
	case o.Size < 0:
		return ring.Config{}, 0, fmt.Errorf("%w: Options.Size %d (want 0 or more)", shm.ErrInvalid, o.Size)
	case o.MaxMessage < 0:
		return ring.Config{}, 0, fmt.Errorf("%w: Options.MaxMessage %d (want 0 or more)", shm.ErrInvalid, o.MaxMessage)
	case o.Direction < Duplex || o.Direction > OpenerSends:
		return ring.Config{}, 0, fmt.Errorf("%w: Options.Direction %d (want Duplex, CreatorSends or OpenerSends)", shm.ErrInvalid, o.Direction)
	}
	if uint64(o.Size) > ring.MaxSize {
		return ring.Config{}, 0, fmt.Errorf("%w: Options.Size %d (want 0 to %d)", shm.ErrInvalid, o.Size, uint64(ring.MaxSize))
	}
	if o.Size > 0 {
		size = max(ring.MinSize, uint64(1)<<bits.Len64(uint64(o.Size)-1))
	}
	maxMsg := uint64(DefaultMaxMessage)
	if o.MaxMessage > 0 {
		maxMsg = uint64(o.MaxMessage)
	}
	cfg := ring.Config{Size: size, MaxPayload: chunkFor(size), Salt: ring.NewSalt(), SingleProducer: true}
	if err := cfg.Check(); err != nil {
		return ring.Config{}, 0, fmt.Errorf("%w: %v", shm.ErrInvalid, err)
	}
	return cfg, maxMsg, nil
}

// chunkFor is the largest record payload of a ring of size bytes: a
// quarter of it, so that the sender writes one chunk while the receiver
// reads another.
func chunkFor(size uint64) uint64 { return size/4 - ring.HeaderSize }

// End is one end of a pipe. Its methods are safe for concurrent use by
// goroutines; messages sent by concurrent Sends do not interleave.
type End struct {
	seg     *shm.Segment
	name    string
	send    *ring.Ring // nil on the receiving end of a one-way pipe
	recv    *ring.Ring // nil on the sending end of a one-way pipe
	ends    *ring.Control
	reg     *region.Region
	me, you int // indexes of our end word and the peer's
	maxMsg  uint64
	sendMu  sync.Mutex
	recvMu  sync.Mutex
	readMu  sync.Mutex
	pending []byte // bytes of a message Read has not returned yet, under readMu
	// A chunked message whose Recv was cancelled half-way, under recvMu:
	// the chunks that arrived (a copy, not the caller's buffer) and the
	// message's length. The next Recv goes on with it.
	partial      []byte
	partialTotal uint64
	hasPartial   bool
	afterChunk   func() // a test's hook, run after each chunk of a message is taken

	// The peer's exit, watched (see watchPeer) once its identity is known.
	watched   atomic.Bool // set once watchPeer has done what it can
	watchMu   sync.Mutex  // guards stopWatch and unwatched
	stopWatch func()
	unwatched bool // Close has stopped the watch
}

var byteType = func() shm.Type {
	t, err := shm.TypeOf[byte]()
	if err != nil {
		panic(err)
	}
	return t
}()

func spec(o Options, cfg ring.Config, maxMsg uint64) shm.Spec {
	sp := shm.Spec{Kind: shm.KindPipe, Type: byteType, Len: 1, DataSize: 2 * ring.MemSize(cfg)}
	sp.Params[paramSize] = cfg.Size
	sp.Params[paramDirection] = uint64(o.Direction)
	sp.Params[paramMaxMessage] = maxMsg
	sp.Params[paramRingVersion] = ringVersion
	sp.Params[paramSalt] = cfg.Salt
	// The creator's end is taken before the name exists.
	sp.Init = func(s *shm.Segment) error {
		c, err := shm.View[ring.Control](s, 0)
		if err != nil {
			return err
		}
		c.User[endCreator].Store(uint64(owner.Self()))
		return nil
	}
	return sp
}

// Create makes a new named pipe and returns its first end; the other
// process takes the second end with Open. It fails with shm.ErrExist if
// the name is taken, shm.ErrInvalid for options out of range, and with
// the errors of shm.Create.
func Create(name string, o Options, opts ...shm.Option) (*End, error) {
	cfg, maxMsg, err := o.config()
	if err != nil {
		return nil, &Error{Pkg: "pipe", Op: "create", Name: name, Err: err}
	}
	seg, err := shm.Create(name, spec(o, cfg, maxMsg), opts...)
	if err != nil {
		return nil, err
	}
	return wrap(seg, "create", name, endCreator)
}

// CreateAnonymous makes a pipe with no name and returns its first end.
// Hand e.File() to a child process through exec.Cmd.ExtraFiles; the
// child takes the second end with OpenFile.
func CreateAnonymous(o Options) (*End, error) {
	cfg, maxMsg, err := o.config()
	if err != nil {
		return nil, &Error{Pkg: "pipe", Op: "create", Err: err}
	}
	seg, err := shm.CreateAnonymous(spec(o, cfg, maxMsg))
	if err != nil {
		return nil, err
	}
	return wrap(seg, "create", "", endCreator)
}

// Open takes the second end of the named pipe. It fails with ErrBusy if
// another process took it (even one that has since closed it or died: a
// pipe connects two ends once), shm.ErrNotExist if there is no such pipe,
// shm.ErrKind if the segment holds something else (a queue, say), and
// shm.ErrCorrupt if the pipe's parameters are inconsistent.
func Open(name string, opts ...shm.Option) (*End, error) {
	seg, err := shm.Open(name, shm.Spec{Kind: shm.KindPipe}, opts...)
	if err != nil {
		return nil, err
	}
	return wrap(seg, "open", name, endOpener)
}

// OpenFile takes the second end of a pipe from an open segment file,
// typically one made by CreateAnonymous and inherited:
// os.NewFile(3, "pipe") for the first of exec.Cmd.ExtraFiles. The caller
// keeps f.
func OpenFile(f *os.File) (*End, error) {
	seg, err := shm.OpenFile(f, shm.Spec{Kind: shm.KindPipe})
	if err != nil {
		return nil, err
	}
	return wrap(seg, "open", "", endOpener)
}

func wrap(seg *shm.Segment, op, name string, me int) (*End, error) {
	e, err := build(seg, name, me)
	if err != nil {
		seg.Close()
		return nil, &Error{Pkg: "pipe", Op: op, Name: name, Err: err}
	}
	return e, nil
}

func build(seg *shm.Segment, name string, me int) (*End, error) {
	p := seg.Params()
	cfg := ring.Config{Size: p[paramSize], MaxPayload: chunkFor(p[paramSize]), Salt: p[paramSalt], SingleProducer: true}
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", shm.ErrCorrupt, err)
	}
	dir := Direction(p[paramDirection])
	switch {
	case p[paramRingVersion] != ringVersion:
		return nil, fmt.Errorf("%w: ring version %d (this build reads %d)", shm.ErrVersion, p[paramRingVersion], ringVersion)
	case dir < Duplex || dir > OpenerSends:
		return nil, fmt.Errorf("%w: direction %d", shm.ErrCorrupt, dir)
	case p[paramMaxMessage] == 0 || p[paramMaxMessage] > 1<<40:
		return nil, fmt.Errorf("%w: maximum message %d", shm.ErrCorrupt, p[paramMaxMessage])
	case uint64(len(seg.Data())) != 2*ring.MemSize(cfg):
		return nil, fmt.Errorf("%w: data size %d for two rings of %d", shm.ErrCorrupt, len(seg.Data()), cfg.Size)
	}
	for i, v := range p[paramSalt+1:] {
		if v != 0 {
			return nil, fmt.Errorf("%w: Params[%d] is %d, want 0", shm.ErrCorrupt, paramSalt+1+i, v)
		}
	}
	mem := seg.Data()
	half := ring.MemSize(cfg)
	r0, err := ring.New(mem[:half:half], cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", shm.ErrCorrupt, err)
	}
	r1, err := ring.New(mem[half:], cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", shm.ErrCorrupt, err)
	}
	e := &End{seg: seg, name: name, ends: r0.Control(), reg: r0.Region(), me: me, you: 1 - me, maxMsg: p[paramMaxMessage]}
	if me == noEnd {
		e.send, e.recv = r0, r1 // for Stat: creator to opener, opener to creator
		return e, nil
	}
	if me == endOpener {
		if !e.ends.User[endOpener].CompareAndSwap(0, uint64(owner.Self())) {
			return nil, ErrBusy
		}
	}
	// Ring 0 carries messages from the creator to the opener, ring 1 the
	// other way.
	out, in := r0, r1
	if me == endOpener {
		out, in = r1, r0
	}
	if dir != Duplex {
		if (dir == CreatorSends) == (me == endCreator) {
			in = nil
		} else {
			out = nil
		}
	}
	e.send, e.recv = out, in
	for _, r := range []*ring.Ring{out, in} {
		if r != nil {
			r.OnCheck = e.periodicCheck
		}
	}
	e.watchPeer() // the opener knows its peer, the creator, already
	return e, nil
}

// watchPeer has the peer's death mark the rings at once (see peerGone):
// a Send then fails with ErrPeerClosed, even with room in the ring, and a
// blocked receive returns io.EOF, within about a millisecond. The exit is
// seen through the peer's pidfd in Go's network poller (owner.ExitContext:
// no thread waits). Where it cannot be watched (a peer in another PID
// namespace, a kernel without pidfds), and for a peer that execs rather
// than dies, blocked calls still find out within 100 ms (checkPeer). It
// runs when the opener opens, and for the creator at each call (and each
// periodic check of a blocked one) until the peer has opened its end.
func (e *End) watchPeer() {
	e.watchMu.Lock()
	defer e.watchMu.Unlock()
	if e.watched.Load() || e.unwatched { // unwatched: Close has begun
		return
	}
	id := owner.ID(e.ends.User[e.you].Load() &^ endClosed)
	if id == 0 {
		return // not opened yet
	}
	if ctx, release, ok := owner.ExitContext(id); ok {
		if ctx.Err() != nil {
			// Gone already: mark the rings before the call that asked
			// goes on.
			release()
			e.checkPeer()
		} else {
			stop := context.AfterFunc(ctx, func() {
				e.watchMu.Lock()
				defer e.watchMu.Unlock()
				if !e.unwatched { // the segment is still mapped
					e.checkPeer()
				}
			})
			e.stopWatch = func() { stop(); release() }
		}
	}
	e.watched.Store(true)
}

// periodicCheck is the rings' OnCheck, run every 100ms by blocked calls:
// it starts the watch of a peer that opened while the call was blocked,
// and checks the peer.
func (e *End) periodicCheck() {
	if !e.watched.Load() {
		e.watchPeer()
	}
	e.checkPeer()
}

// checkPeer runs in blocked calls every 100ms, and when the peer's process
// exits (watchPeer): if the peer closed its end, died or no longer maps
// the pipe, it marks the rings as the peer's Close would have.
func (e *End) checkPeer() {
	w := e.ends.User[e.you].Load()
	id := owner.ID(w &^ endClosed)
	if id == 0 {
		return // not opened yet
	}
	if w&endClosed != 0 || !e.reg.Alive(id) {
		e.peerGone()
	}
}

// peerGone marks the rings: nothing more will come from the peer, and
// nothing we send will be read.
func (e *End) peerGone() {
	// Send's flag first: a receiver that sees the end of the stream
	// (woken by the second) finds Send failing too.
	if e.send != nil {
		e.send.SetFlags(ring.NoGet)
	}
	if e.recv != nil {
		e.recv.SetFlags(ring.NoPut)
	}
}

// Name returns the pipe's name, "" if anonymous.
func (e *End) Name() string { return e.name }

// File returns the file of an anonymous pipe, to hand to the child that
// takes the other end; nil for a named pipe.
func (e *End) File() *os.File { return e.seg.File() }

// Unlink removes the pipe's name. The ends keep working.
func (e *End) Unlink() error { return e.seg.Unlink() }

// Close closes this end. The peer's Recv returns io.EOF once it has read
// everything sent before, and its Send fails with ErrPeerClosed. Calls
// blocked on this end return ErrClosed. Close is idempotent.
func (e *End) Close() error {
	if e.seg.Closed() {
		return nil
	}
	e.watchMu.Lock()
	e.unwatched = true
	if e.stopWatch != nil {
		e.stopWatch()
	}
	e.watchMu.Unlock()
	// Mark our side done, as peerGone does for the peer.
	if e.send != nil {
		e.send.SetFlags(ring.NoPut)
	}
	if e.recv != nil {
		e.recv.SetFlags(ring.NoGet)
	}
	e.ends.User[e.me].Or(endClosed)
	return e.seg.Close()
}

func (e *End) err(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ring.ErrClosed):
		err = ErrClosed
	case errors.Is(err, ring.ErrCorrupt):
		err = fmt.Errorf("%w: %v", ErrCorrupt, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return &Error{Pkg: "pipe", Op: op, Name: e.name, Err: err}
}

func (e *End) check(op string, r *ring.Ring) error {
	if e.seg.Closed() {
		return &Error{Pkg: "pipe", Op: op, Name: e.name, Err: ErrClosed}
	}
	if r == nil {
		return &Error{Pkg: "pipe", Op: op, Name: e.name, Err: ErrDirection}
	}
	if !e.watched.Load() {
		e.watchPeer()
	}
	return nil
}

// Send sends msg (copied) as one message, waiting for room until ctx is
// done. A message larger than a quarter of the ring goes in chunks, the
// receiver reassembling it (a Recv cancelled half-way keeps what arrived,
// and the next Recv goes on with it); a Send cancelled half-way leaves the
// receiver a truncated message that it drops. It fails with ErrTooLarge,
// ErrPeerClosed once the other end closed or died (a death is seen at
// once through the peer's pidfd where it can be watched, else within
// about 100ms; see the package documentation), ErrDirection, ErrClosed or
// ctx.Err().
func (e *End) Send(ctx context.Context, msg []byte) error {
	if err := e.check("send", e.send); err != nil {
		return err
	}
	if uint64(len(msg)) > e.maxMsg {
		return &Error{Pkg: "pipe", Op: "send", Name: e.name, Err: fmt.Errorf("%w (at most %d bytes)", ErrTooLarge, e.maxMsg)}
	}
	e.sendMu.Lock()
	defer e.sendMu.Unlock()
	chunk := int(e.send.MaxPayload())
	var flags uint16
	var aux uint64
	if len(msg) > chunk {
		flags, aux = ring.FlagFirst, uint64(len(msg))
	}
	for {
		n := min(len(msg), chunk)
		f := flags
		if n < len(msg) {
			f |= ring.FlagMore
		}
		var s ring.Slot
		err := e.send.Reserve(ctx, n, f, aux, true, &s)
		if err != nil {
			if errors.Is(err, ring.ErrShutdown) {
				err = ErrPeerClosed
			}
			return e.err("send", err)
		}
		copy(s.Data, msg[:n])
		e.send.Commit(&s)
		msg = msg[n:]
		if len(msg) == 0 {
			return nil
		}
		flags, aux = ring.FlagChunk, 0
	}
}

// Recv returns the next message, waiting until ctx is done. It returns
// io.EOF once the other end has closed (or died) and every message it
// sent has been received. It fails with ErrDirection, ErrClosed,
// ErrCorrupt or ctx.Err().
func (e *End) Recv(ctx context.Context) ([]byte, error) {
	if err := e.check("recv", e.recv); err != nil {
		return nil, err
	}
	e.recvMu.Lock()
	defer e.recvMu.Unlock()
	return e.recvLocked(ctx, nil, -1)
}

// RecvInto receives the next message into buf and returns its length. If
// buf is too small it returns a *ShortBufferError (matching
// io.ErrShortBuffer) with the message's length, and the message stays in
// the pipe. Otherwise it behaves as Recv.
func (e *End) RecvInto(ctx context.Context, buf []byte) (int, error) {
	if err := e.check("recv", e.recv); err != nil {
		return 0, err
	}
	e.recvMu.Lock()
	defer e.recvMu.Unlock()
	msg, err := e.recvLocked(ctx, buf, len(buf))
	return len(msg), err
}

// maxPrealloc bounds the memory a receive takes before the chunks of a
// message have arrived.
const maxPrealloc = 16 << 20

// recvLocked receives one message into buf[:0] (limit >= 0: fail if it
// is longer than limit) or into a new slice (limit < 0).
func (e *End) recvLocked(ctx context.Context, buf []byte, limit int) ([]byte, error) {
	fits := func(h ring.Header) error {
		need := uint64(h.Len())
		if h.Flags()&ring.FlagFirst != 0 {
			need = h.Aux
		}
		if limit >= 0 && need > uint64(limit) {
			return &ShortBufferError{Need: int(need)}
		}
		return nil
	}
	var out []byte
	var total uint64
	first := true
	if e.hasPartial {
		// Go on with the message a cancelled receive left half-way.
		if limit >= 0 && e.partialTotal > uint64(limit) {
			return nil, &Error{Pkg: "pipe", Op: "recv", Name: e.name, Err: &ShortBufferError{Need: int(e.partialTotal)}}
		}
		total, first = e.partialTotal, false
		if limit >= 0 {
			out = append(buf[:0], e.partial...)
		} else {
			out = e.partial
		}
		e.partial, e.partialTotal, e.hasPartial = nil, 0, false
	}
	for {
		var check ring.Check
		if first && limit >= 0 {
			check = fits
		}
		var s ring.Slot
		var err error
		if !first {
			err = ctx.Err() // a chunk already there would be taken whatever ctx says
		}
		if err == nil {
			err = e.recv.Claim(ctx, check, true, &s)
		}
		if err != nil {
			var sb *ShortBufferError
			switch {
			case errors.As(err, &sb):
				return nil, &Error{Pkg: "pipe", Op: "recv", Name: e.name, Err: err}
			case errors.Is(err, ring.ErrShutdown):
				return nil, io.EOF // a message cut short by death is dropped
			case !first && ctx.Err() != nil:
				// Cancelled half-way through a message: keep what
				// arrived for the next receive, which goes on with it.
				if limit >= 0 {
					out = slices.Clone(out) // buf is the caller's again
				}
				e.partial, e.partialTotal, e.hasPartial = out, total, true
			}
			return nil, e.err("recv", err)
		}
		h := s.Hdr
		switch {
		case first && h.Flags()&ring.FlagChunk != 0:
			// The rest of a message whose first chunk was never seen
			// (a faulty or hostile peer's): drop it.
			e.recv.Release(&s)
			continue
		case first && h.Flags()&ring.FlagFirst != 0:
			total = h.Aux
			if total > e.maxMsg || total < uint64(h.Len()) {
				e.recv.Release(&s)
				return nil, e.err("recv", fmt.Errorf("%w: message of %d bytes (at most %d)", ring.ErrCorrupt, total, e.maxMsg))
			}
			if limit >= 0 {
				out = buf[:0]
			} else {
				// The announced length is the sender's word, up to the
				// pipe's maximum (recorded in the file, so as large as a
				// damaged one says): take memory as the chunks arrive.
				out = make([]byte, 0, min(total, maxPrealloc))
			}
		case first:
			total = uint64(h.Len())
			if limit >= 0 {
				out = buf[:0]
			} else {
				out = make([]byte, 0, total)
			}
		case h.Flags()&ring.FlagChunk == 0:
			// The sender's Send was cut short (cancelled) and this is
			// the next message: drop what we have and start over.
			e.recv.Return(&s, 0)
			out, first = nil, true
			continue
		}
		if uint64(len(out))+uint64(h.Len()) > total {
			e.recv.Release(&s)
			return nil, e.err("recv", fmt.Errorf("%w: chunks exceed the message's %d bytes", ring.ErrCorrupt, total))
		}
		first = false
		out = append(out, s.Data...)
		more := h.Flags()&ring.FlagMore != 0
		e.recv.Release(&s)
		if more && e.afterChunk != nil {
			e.afterChunk()
		}
		if !more {
			if uint64(len(out)) != total {
				return nil, e.err("recv", fmt.Errorf("%w: message of %d bytes, %d arrived", ring.ErrCorrupt, total, len(out)))
			}
			return out, nil
		}
	}
}

// Poll reports whether a Recv would return at once: a message (an empty
// one counts) or io.EOF. It waits until then or until ctx is done, and
// then returns false with a nil error: poll(timeout) in Python. It fails
// with ErrDirection or ErrClosed.
func (e *End) Poll(ctx context.Context) (bool, error) {
	if err := e.check("poll", e.recv); err != nil {
		return false, err
	}
	c := e.recv.Control()
	err := e.recv.Wait(ctx, &c.DataSeq, &c.DataWaiters, e.recv.Peek)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false, nil
	}
	return false, e.err("poll", err)
}

// Read reads the messages as one byte stream, io.Reader's way: message
// boundaries are not kept, and empty messages add nothing (Read waits
// past them rather than return 0 bytes and no error). It returns io.EOF
// as Recv does. Do not mix it with Recv on the same end.
func (e *End) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	e.readMu.Lock()
	defer e.readMu.Unlock()
	for len(e.pending) == 0 {
		msg, err := e.Recv(context.Background())
		if err != nil {
			return 0, err
		}
		e.pending = msg
	}
	n := copy(p, e.pending)
	e.pending = e.pending[n:]
	return n, nil
}

// Write sends p as one message (io.Writer). It returns len(p) or an
// error from Send.
func (e *End) Write(p []byte) (int, error) {
	if err := e.Send(context.Background(), p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// SetSpin sets how long this end's blocked calls spin before they sleep
// (default 20µs on a multi-core machine; 0 sleeps at once). Call it
// before using the end.
func (e *End) SetSpin(d time.Duration) {
	for _, r := range []*ring.Ring{e.send, e.recv} {
		if r != nil {
			r.Spin = d
		}
	}
}

var _ io.ReadWriteCloser = (*End)(nil)

// Stats describes a pipe, for monitoring (xproc inspect).
type Stats struct {
	Direction Direction
	Size      int // bytes of ring per direction
	// Creator and Opener are the pids of the two ends (0: not taken yet)
	// and whether they have closed.
	Creator, Opener             int
	CreatorClosed, OpenerClosed bool
	// ToOpener and ToCreator count the messages (chunks of large ones)
	// sent and not yet received, each way.
	ToOpener, ToCreator int
}

// Stat describes the named pipe without taking an end.
func Stat(name string, opts ...shm.Option) (Stats, error) {
	seg, err := shm.Open(name, shm.Spec{Kind: shm.KindPipe}, opts...)
	if err != nil {
		return Stats{}, err
	}
	defer seg.Close()
	e, err := build(seg, name, noEnd)
	if err != nil {
		return Stats{}, &Error{Pkg: "pipe", Op: "stat", Name: name, Err: err}
	}
	c, o := e.ends.User[endCreator].Load(), e.ends.User[endOpener].Load()
	return Stats{
		Direction: Direction(seg.Params()[paramDirection]), Size: int(e.send.Size()),
		Creator: owner.ID(c &^ endClosed).Pid(), Opener: owner.ID(o &^ endClosed).Pid(),
		CreatorClosed: c&endClosed != 0, OpenerClosed: o&endClosed != 0,
		ToOpener: e.send.Len(), ToCreator: e.recv.Len(),
	}, nil
}

// String names the direction.
func (d Direction) String() string {
	switch d {
	case Duplex:
		return "duplex"
	case CreatorSends:
		return "creator sends"
	case OpenerSends:
		return "opener sends"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}
