// Package torture kills queue producers and consumers with SIGKILL at
// random points while others run, and checks afterwards that nothing was
// torn, duplicated or lost and that nobody hung. The queue tests run it
// briefly; "xproc torture queue -cycles N" runs it long. Workers are
// separate processes that the caller starts (the test binary or xproc,
// re-executed) and that run Producer or Consumer.
//
// Accounting lives in shared arrays so that it survives the kills:
//
//   - a producer incarnation k puts messages (k, seq, checksum, random
//     bytes) and, after each Put returns, stores seq+1 in committed[k];
//   - a consumer takes each message as a lease, checks its checksum,
//     counts it in recv[k*PerProducer+seq], sets bit NumDelivered-1 in
//     mask[...], and only then acknowledges it.
//
// A message with seq < committed[k] that was never counted is lost. One
// counted twice under the same delivery number was handed to two
// consumers at once (duplicated); one delivered again although no
// consumer died holding it is duplicated too. A consumer killed between
// counting and acknowledging makes the queue deliver the message again,
// with a higher delivery number: that is at-least-once delivery, reported
// as redelivered, not as an error.
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
	slotCommitted = 16 // committed[k] from here on
)

// PerProducer is the most messages one producer incarnation puts.
const PerProducer = 4096

const maxMsg = 512

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

// Result counts what a run saw.
type Result struct {
	Cycles, Kills        int
	Hangs                int
	Torn, Duplicated     int
	Lost                 int
	Messages             int // committed messages checked
	Redelivered          int // deliveries of messages whose consumer had died
	Recounted            int // messages counted twice (killed between count and Ack)
	ProducerKills        int
	ConsumerKills        int
	Elapsed              time.Duration
	ProducerIncarnations int
}

func (r Result) String() string {
	return fmt.Sprintf("cycles %d, hangs %d, torn %d, duplicated %d, lost %d (%d messages committed; %d deliveries after a consumer died, %d of them of a message already counted; %d producers and %d consumers killed) in %v",
		r.Cycles, r.Hangs, r.Torn, r.Duplicated, r.Lost, r.Messages, r.Redelivered, r.Recounted, r.ProducerKills, r.ConsumerKills, r.Elapsed.Round(time.Millisecond))
}

// OK reports whether nothing went wrong.
func (r Result) OK() bool { return r.Hangs+r.Torn+r.Duplicated+r.Lost == 0 }

type worker struct {
	p        Proc
	producer bool
	inc      int
}

// Run runs the torture. It returns an error only if it could not run
// (segments, processes); what went wrong with the queue is in Result.
func Run(cfg Config, start Starter) (Result, error) {
	var res Result
	t0 := time.Now()
	maxInc := cfg.Cycles + cfg.Producers + 1
	qname, lname, rname, mname := cfg.Name+"-q", cfg.Name+"-ledger", cfg.Name+"-recv", cfg.Name+"-mask"
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

	var workers []*worker
	defer func() {
		for _, w := range workers {
			w.p.Kill()
			w.p.Wait()
		}
	}()
	nextInc := 0
	startOne := func(producer bool) error {
		w := &worker{producer: producer}
		var p Proc
		var err error
		if producer {
			w.inc = nextInc
			nextInc++
			p, err = start(RoleProducer, qname, lname, strconv.Itoa(w.inc))
		} else {
			p, err = start(RoleConsumer, qname, lname, rname, mname)
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
	res.ProducerIncarnations = nextInc
	for k := range nextInc {
		committed := int(ledger.AtomicLoad(slotCommitted + k))
		res.Messages += committed
		for seq := range PerProducer {
			n := int(recv.AtomicLoad(k*PerProducer + seq))
			switch {
			case seq < committed && n == 0:
				res.Lost++
			case n > 1:
				res.Recounted += n - 1
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
	rng := rand.New(rand.NewPCG(uint64(k), uint64(os.Getpid())))
	ctx := context.Background()
	msg := make([]byte, maxMsg)
	for seq := 0; seq < PerProducer && ledger.AtomicLoad(slotStop) == 0; seq++ {
		n := 12 + rng.IntN(maxMsg-12+1)
		m := msg[:n]
		binary.LittleEndian.PutUint32(m, uint32(k))
		binary.LittleEndian.PutUint32(m[4:], uint32(seq))
		for j := 12; j < n; j++ {
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

// Consumer is the consumer worker: args are the queue, the ledger and
// the two counting arrays.
func Consumer(args []string) error {
	q, err := queue.Open(args[0])
	if err != nil {
		return err
	}
	ledger, err := array.Open[uint64](args[1], 0)
	if err != nil {
		return err
	}
	recv, err := array.Open[uint32](args[2], 0)
	if err != nil {
		return err
	}
	mask, err := array.Open[uint32](args[3], 0)
	if err != nil {
		return err
	}
	ledger.Add(slotStarted, 1)
	ctx := context.Background()
	for {
		l, err := q.GetLease(ctx)
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
		if len(m) < 12 || crc32.ChecksumIEEE(m[12:]) != binary.LittleEndian.Uint32(m[8:]) {
			ledger.Add(slotTorn, 1)
		} else {
			k, seq := int(binary.LittleEndian.Uint32(m)), int(binary.LittleEndian.Uint32(m[4:]))
			i := k*PerProducer + seq
			if seq >= PerProducer || i >= recv.Len() {
				ledger.Add(slotTorn, 1)
			} else {
				bit := uint32(1) << (min(l.NumDelivered(), 32) - 1)
				for {
					old := mask.AtomicLoad(i)
					if old&bit != 0 {
						ledger.Add(slotDup, 1)
						break
					}
					if mask.CompareAndSwap(i, old, old|bit) {
						break
					}
				}
				if l.Redelivered() {
					ledger.Add(slotRedelivered, 1)
					if l.DeadConsumer() == 0 {
						ledger.Add(slotSpurious, 1)
					}
				}
				recv.Add(i, 1)
				ledger.Add(slotCounted, 1)
			}
		}
		if err := l.Ack(); err != nil {
			return err
		}
	}
}
