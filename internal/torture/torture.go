// Package torture kills queue producers and consumers with SIGKILL at
// random points while others run, and checks afterwards that nothing was
// torn, duplicated or lost and that nobody hung. The queue tests run it
// briefly; "xproc torture queue -cycles N" runs it long. Workers are
// separate processes that the caller starts (the test binary or xproc,
// re-executed) and that run Producer or Consumer.
//
// Accounting lives in shared arrays so that it survives the kills:
//
//   - a producer incarnation k puts messages (k, seq, checksum, length,
//     random bytes), half with Put and half with Reserve and Commit, and,
//     after each returns, stores seq+1 in committed[k];
//   - consumer incarnations alternate between two kinds. A lease consumer
//     takes each message with GetLease, checks its checksum, counts it in
//     recv[k*PerProducer+seq], sets bit NumDelivered-1 in mask[...], and
//     only then acknowledges it. A Get consumer takes each message with
//     plain GetInto straight into its own inbox, a slot of a shared
//     array, then checks and counts it in recv and in got[...].
//
// A message with seq < committed[k] that was never counted, and is not
// whole in the inbox of a Get consumer killed after its GetInto returned
// but before it counted, is lost. (A message a Get consumer was killed
// holding, copied but not yet removed, is whole in its inbox too, and
// should come back to another consumer; were it never to, the check
// would count it as taken, not lost: at most one message per killed Get
// consumer, reported apart as InInbox.) One counted twice under the same
// delivery number was handed to two consumers at once (duplicated); so
// is one delivered again although no consumer died holding it, and one
// that GetInto returned twice or that a lease consumer got after
// GetInto returned it (Get acknowledges before it returns: a message it
// returned is gone). A lease consumer killed between counting
// and acknowledging makes the queue deliver the message again, with a
// higher delivery number: that is at-least-once delivery, reported as
// redelivered, not as an error. A worker that stops with an error (not
// killed) is a failure.
package torture

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/queue"
	"github.com/xproc-go/xproc/shm"
)

// Ledger slots.
const (
	slotStop = iota
	slotTorn
	slotDup
	slotSpurious
	slotCounted
	slotStarted
	slotRedelivered
	slotFailed
	slotCommitted = 16 // committed[k] from here on
)

// PerProducer is the most messages one producer incarnation puts.
const PerProducer = 4096

const maxMsg = 512

// hdrLen is a message's header: producer incarnation, sequence number,
// checksum of the rest, length of the whole message (4 bytes each).
const hdrLen = 16

// Roles of the worker processes.
const (
	RoleProducer = "torture-producer"
	RoleConsumer = "torture-consumer"
)

// Proc is a started worker process.
type Proc interface {
	Kill()       // SIGKILL; returns once it is dead
	Wait() error // reap; the error of a killed process is ignored
}

// Starter starts role as a worker process with args.
type Starter func(role string, args ...string) (Proc, error)

// Config of a run.
type Config struct {
	Name      string // prefix of the segment names
	Cycles    int    // kills
	Producers int
	Consumers int
	// MaxDelay bounds the random time between kills.
	MaxDelay time.Duration
	// Stall is how long the consumers may go without progress while
	// messages wait before the run counts a hang.
	Stall time.Duration
	// Progress, if set, gets a line every few hundred cycles.
	Progress io.Writer
	Seed     uint64
}

// check reports a configuration that cannot run.
func (cfg Config) check() error {
	for _, f := range []struct {
		name string
		v    int64
		min  int64
	}{{"Cycles", int64(cfg.Cycles), 0}, {"Producers", int64(cfg.Producers), 1}, {"Consumers", int64(cfg.Consumers), 1},
		{"MaxDelay", int64(cfg.MaxDelay), 0}, {"Stall", int64(cfg.Stall), 1}} {
		if f.v < f.min {
			return fmt.Errorf("%w: torture: Config.%s %d (want at least %d)", shm.ErrInvalid, f.name, f.v, f.min)
		}
	}
	return nil
}

// Result counts what a run saw.
type Result struct {
	Cycles, Kills        int
	Hangs                int
	Torn, Duplicated     int
	Lost                 int
	Failed               int // workers that stopped with an error of their own
	InInbox              int // messages found whole in a killed Get consumer's inbox, not counted
	Messages             int // committed messages checked
	Redelivered          int // deliveries of messages whose consumer had died
	Recounted            int // messages counted twice (killed between count and Ack)
	ProducerKills        int
	ConsumerKills        int
	Elapsed              time.Duration
	ProducerIncarnations int
}

func (r Result) String() string {
	return fmt.Sprintf("cycles %d, hangs %d, torn %d, duplicated %d, lost %d, failed %d (messages committed: %d; deliveries after a consumer died: %d, of a message already counted: %d; taken by a Get consumer killed before it counted them: %d; killed: producers %d, consumers %d) in %v",
		r.Cycles, r.Hangs, r.Torn, r.Duplicated, r.Lost, r.Failed, r.Messages, r.Redelivered, r.Recounted, r.InInbox, r.ProducerKills, r.ConsumerKills, r.Elapsed.Round(time.Millisecond))
}

// OK reports whether nothing went wrong.
func (r Result) OK() bool { return r.Hangs+r.Torn+r.Duplicated+r.Lost+r.Failed == 0 }

type worker struct {
	p        Proc
	producer bool
	inc      int
}

// Run runs the torture. It returns an error only if it could not run
// (segments, processes); what went wrong with the queue is in Result.
func Run(cfg Config, start Starter) (Result, error) {
	var res Result
	if err := cfg.check(); err != nil {
		return res, err
	}
	t0 := time.Now()
	maxInc := cfg.Cycles + cfg.Producers + 1
	maxCons := cfg.Cycles + cfg.Consumers + 1
	qname, lname, rname, mname := cfg.Name+"-q", cfg.Name+"-ledger", cfg.Name+"-recv", cfg.Name+"-mask"
	gname, iname := cfg.Name+"-got", cfg.Name+"-inbox"
	q, err := queue.Create(qname, queue.Options{Size: 1 << 16, MaxMessage: maxMsg})
	if err != nil {
		return res, err
	}
	defer q.Close()
	defer q.Unlink()
	ledger, err := array.Create[uint64](lname, slotCommitted+maxInc)
	if err != nil {
		return res, err
	}
	defer ledger.Close()
	defer ledger.Unlink()
	recv, err := array.Create[uint32](rname, maxInc*PerProducer)
	if err != nil {
		return res, err
	}
	defer recv.Close()
	defer recv.Unlink()
	mask, err := array.Create[uint32](mname, maxInc*PerProducer)
	if err != nil {
		return res, err
	}
	defer mask.Close()
	defer mask.Unlink()
	got, err := array.Create[uint32](gname, maxInc*PerProducer)
	if err != nil {
		return res, err
	}
	defer got.Close()
	defer got.Unlink()
	inbox, err := array.Create[byte](iname, maxCons*maxMsg)
	if err != nil {
		return res, err
	}
	defer inbox.Close()
	defer inbox.Unlink()

	var workers []*worker
	defer func() {
		for _, w := range workers {
			w.p.Kill()
			w.p.Wait()
		}
	}()
	nextInc, nextCons := 0, 0
	startOne := func(producer bool) error {
		w := &worker{producer: producer}
		var p Proc
		var err error
		if producer {
			w.inc = nextInc
			nextInc++
			p, err = start(RoleProducer, qname, lname, strconv.Itoa(w.inc))
		} else {
			w.inc = nextCons
			nextCons++
			p, err = start(RoleConsumer, qname, lname, rname, mname, gname, iname, strconv.Itoa(w.inc))
		}
		if err != nil {
			return err
		}
		w.p = p
		workers = append(workers, w)
		return nil
	}
	for i := range cfg.Producers + cfg.Consumers {
		if err := startOne(i < cfg.Producers); err != nil {
			return res, err
		}
	}
	// Kill running workers, not ones still starting up: before each
	// kill, wait until every worker started so far has opened the queue.
	waitStarted := func(n int) error {
		for t := time.Now(); ledger.AtomicLoad(slotStarted) < uint64(n); time.Sleep(100 * time.Microsecond) {
			if time.Since(t) > cfg.Stall {
				return fmt.Errorf("%d of %d workers started", ledger.AtomicLoad(slotStarted), n)
			}
		}
		return nil
	}
	if err := waitStarted(cfg.Producers + cfg.Consumers); err != nil {
		return res, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	lastCounted, lastChange := ledger.AtomicLoad(slotCounted), time.Now()
	// Messages waiting (or held): the queue's own count, used only to
	// tell a hang from a lull; the checks at the end use the ledger.
	backlog := func() bool { return q.Len() > 0 }
	for cycle := 1; cycle <= cfg.Cycles; cycle++ {
		// The random delay is the kill point, not synchronisation.
		time.Sleep(time.Duration(rng.Int64N(int64(cfg.MaxDelay) + 1)))
		i := rng.IntN(len(workers))
		w := workers[i]
		w.p.Kill()
		w.p.Wait()
		workers = append(workers[:i], workers[i+1:]...)
		res.Kills++
		if w.producer {
			res.ProducerKills++
		} else {
			res.ConsumerKills++
		}
		if nextInc >= maxInc {
			w.producer = false // out of incarnations: replace with a consumer
		}
		if err := startOne(w.producer); err != nil {
			return res, err
		}
		if err := waitStarted(cfg.Producers + cfg.Consumers + cycle); err != nil {
			return res, err
		}
		res.Cycles = cycle
		if c := ledger.AtomicLoad(slotCounted); c != lastCounted {
			lastCounted, lastChange = c, time.Now()
		} else if time.Since(lastChange) > cfg.Stall && backlog() {
			res.Hangs++
			break
		}
		if cfg.Progress != nil && cycle%500 == 0 {
			fmt.Fprintf(cfg.Progress, "cycle %d: %d messages counted, %v\n", cycle, lastCounted, time.Since(t0).Round(time.Second))
		}
	}

	// Stop the producers, then let the consumers drain: a queue shut down
	// without immediate makes Get fail only once every message is gone,
	// leased ones included.
	ledger.AtomicStore(slotStop, 1)
	deadline := time.Now().Add(cfg.Stall)
	for _, w := range workers {
		if w.producer {
			if err := waitBy(w.p, deadline); err != nil {
				res.Hangs++
			}
		}
	}
	q.Shutdown(false)
	for _, w := range workers {
		if w.producer {
			continue
		}
		done := make(chan error, 1)
		go func() { done <- w.p.Wait() }()
	wait:
		for {
			select {
			case <-done:
				break wait
			case <-time.After(10 * time.Millisecond):
			}
			if c := ledger.AtomicLoad(slotCounted); c != lastCounted {
				lastCounted, lastChange = c, time.Now()
			} else if time.Since(lastChange) > cfg.Stall {
				res.Hangs++
				w.p.Kill()
				<-done
				break wait
			}
		}
	}
	workers = nil

	res.Torn = int(ledger.AtomicLoad(slotTorn))
	res.Duplicated = int(ledger.AtomicLoad(slotDup) + ledger.AtomicLoad(slotSpurious))
	res.Redelivered = int(ledger.AtomicLoad(slotRedelivered))
	res.Failed = int(ledger.AtomicLoad(slotFailed))
	res.ProducerIncarnations = nextInc
	// What Get consumers had taken when they were killed: the last
	// message each GetInto wrote into its inbox, if whole.
	taken := map[int]bool{}
	for c := range nextCons {
		if i, ok := parse(inbox.Slice()[c*maxMsg:(c+1)*maxMsg], recv.Len()); ok {
			taken[i] = true
		}
	}
	for k := range nextInc {
		committed := int(ledger.AtomicLoad(slotCommitted + k))
		res.Messages += committed
		for seq := range PerProducer {
			i := k*PerProducer + seq
			n := int(recv.AtomicLoad(i))
			switch {
			case seq < committed && n == 0 && taken[i]:
				res.InInbox++
			case seq < committed && n == 0:
				res.Lost++
			case n > 1:
				res.Recounted += n - 1
			}
			if got.AtomicLoad(i) > 1 {
				res.Duplicated++ // GetInto returned it twice
			}
		}
	}
	res.Elapsed = time.Since(t0)
	return res, nil
}

// waitBy waits for p to exit until deadline, killing it then.
func waitBy(p Proc, deadline time.Time) error {
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Until(deadline)):
		p.Kill()
		<-done
		return errors.New("did not exit in time")
	}
}

// Producer is the producer worker: args are the queue, the ledger and
// the incarnation number.
func Producer(args []string) error {
	q, err := queue.Open(args[0])
	if err != nil {
		return err
	}
	ledger, err := array.Open[uint64](args[1], 0)
	if err != nil {
		return err
	}
	k, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	ledger.Add(slotStarted, 1)
	if err := produce(q, ledger, k); err != nil {
		ledger.Add(slotFailed, 1)
		return err
	}
	return nil
}

func produce(q *queue.Queue, ledger *array.Array[uint64], k int) error {
	rng := rand.New(rand.NewPCG(uint64(k), uint64(os.Getpid())))
	ctx := context.Background()
	msg := make([]byte, maxMsg)
	for seq := 0; seq < PerProducer && ledger.AtomicLoad(slotStop) == 0; seq++ {
		n := hdrLen + rng.IntN(maxMsg-hdrLen+1)
		m := msg[:n]
		binary.LittleEndian.PutUint32(m, uint32(k))
		binary.LittleEndian.PutUint32(m[4:], uint32(seq))
		binary.LittleEndian.PutUint32(m[12:], uint32(n))
		for j := hdrLen; j < n; j++ {
			m[j] = byte(rng.Uint32())
		}
		binary.LittleEndian.PutUint32(m[8:], crc32.ChecksumIEEE(m[12:]))
		if seq%2 == 0 {
			if err := q.Put(ctx, m); err != nil {
				return err
			}
		} else {
			r, err := q.Reserve(ctx, n)
			if err != nil {
				return err
			}
			copy(r.Bytes(), m)
			if err := r.Commit(); err != nil {
				return err
			}
		}
		ledger.AtomicStore(slotCommitted+k, uint64(seq+1))
		if seq%64 == 63 {
			// Pace the producers so that a long run's accounting stays
			// small; this is load shaping, not synchronisation.
			time.Sleep(200 * time.Microsecond)
		}
	}
	for ledger.AtomicLoad(slotStop) == 0 {
		time.Sleep(time.Millisecond)
	}
	return nil
}

// parse checks a message and returns its index in the counting arrays
// (k*PerProducer+seq), if it is whole and names a message that can be.
func parse(m []byte, slots int) (int, bool) {
	if len(m) < hdrLen {
		return 0, false
	}
	n := int(binary.LittleEndian.Uint32(m[12:]))
	if n < hdrLen || n > len(m) || crc32.ChecksumIEEE(m[12:n]) != binary.LittleEndian.Uint32(m[8:]) {
		return 0, false
	}
	k, seq := int(binary.LittleEndian.Uint32(m)), int(binary.LittleEndian.Uint32(m[4:]))
	i := k*PerProducer + seq
	if seq >= PerProducer || i >= slots {
		return 0, false
	}
	return i, true
}

// consumer is a consumer worker's shared state.
type consumer struct {
	q               *queue.Queue
	ledger          *array.Array[uint64]
	recv, mask, got *array.Array[uint32]
	inbox           []byte // this incarnation's slot of the inbox array
	getter          bool   // takes messages with GetInto, not GetLease
}

// Consumer is the consumer worker: args are the queue, the ledger, the
// counting arrays (recv, mask, got), the inbox array and the incarnation
// number (even: lease consumer; odd: Get consumer).
func Consumer(args []string) error {
	var c consumer
	var err error
	if c.q, err = queue.Open(args[0]); err != nil {
		return err
	}
	if c.ledger, err = array.Open[uint64](args[1], 0); err != nil {
		return err
	}
	for i, a := range []**array.Array[uint32]{&c.recv, &c.mask, &c.got} {
		if *a, err = array.Open[uint32](args[2+i], 0); err != nil {
			return err
		}
	}
	inbox, err := array.Open[byte](args[5], 0)
	if err != nil {
		return err
	}
	inc, err := strconv.Atoi(args[6])
	if err != nil {
		return err
	}
	if (inc+1)*maxMsg > inbox.Len() {
		return fmt.Errorf("consumer %d: no inbox for it", inc)
	}
	c.inbox = inbox.Slice()[inc*maxMsg : (inc+1)*maxMsg]
	c.getter = inc%2 == 1
	c.ledger.Add(slotStarted, 1)
	if err := c.run(); err != nil {
		c.ledger.Add(slotFailed, 1)
		return err
	}
	return nil
}

func (c *consumer) run() error {
	ctx := context.Background()
	for {
		if c.getter {
			// Straight into shared memory: a kill after GetInto
			// returned leaves the message there for the check.
			n, err := c.q.GetInto(ctx, c.inbox)
			if errors.Is(err, queue.ErrShutdown) {
				return nil
			}
			if err != nil {
				return err
			}
			if i, ok := c.check(c.inbox[:n]); ok {
				c.got.Add(i, 1)
				c.count(i)
			}
			continue
		}
		l, err := c.q.GetLease(ctx)
		if errors.Is(err, queue.ErrShutdown) {
			return nil
		}
		if err != nil {
			return err
		}
		m := l.Data()
		// Work on some messages while holding the lease, so that kills
		// often land on held leases and producers often wait for room.
		if rand.IntN(2) == 0 {
			for t := time.Now(); time.Since(t) < 20*time.Microsecond; {
				crc32.ChecksumIEEE(m)
			}
		}
		if i, ok := c.check(m); ok {
			if c.got.AtomicLoad(i) != 0 {
				// GetInto returned it (and so removed it) already.
				c.ledger.Add(slotDup, 1)
			}
			bit := uint32(1) << (min(l.NumDelivered(), 32) - 1)
			for {
				old := c.mask.AtomicLoad(i)
				if old&bit != 0 {
					c.ledger.Add(slotDup, 1)
					break
				}
				if c.mask.CompareAndSwap(i, old, old|bit) {
					break
				}
			}
			if l.Redelivered() {
				c.ledger.Add(slotRedelivered, 1)
				if l.DeadConsumer() == 0 {
					c.ledger.Add(slotSpurious, 1)
				}
			}
			c.count(i)
		}
		if err := l.Ack(); err != nil {
			return err
		}
	}
}

// check parses m, counting it as torn if it is not a whole message.
func (c *consumer) check(m []byte) (int, bool) {
	i, ok := parse(m, c.recv.Len())
	if !ok || int(binary.LittleEndian.Uint32(m[12:])) != len(m) {
		c.ledger.Add(slotTorn, 1)
		return 0, false
	}
	return i, true
}

func (c *consumer) count(i int) {
	c.recv.Add(i, 1)
	c.ledger.Add(slotCounted, 1)
}
