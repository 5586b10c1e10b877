package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/qbench"
	"github.com/xproc-go/xproc/internal/torture"
	"github.com/xproc-go/xproc/pipe"
	"github.com/xproc-go/xproc/process"
	"github.com/xproc-go/xproc/queue"
	"github.com/xproc-go/xproc/shm"
)

// Queues and pipes in the command: "xproc torture queue", the demo's
// producer/consumer workload, what "xproc inspect" says about a queue or
// a pipe, and the message-passing rows of "xproc bench".

func init() {
	commands["torture"] = cmdTorture
	workers[torture.RoleProducer] = torture.Producer
	workers[torture.RoleConsumer] = torture.Consumer
	workers["demo-queue"] = demoQueueWorker
	for _, role := range qbench.Roles {
		workers[role] = func(args []string) error { return qbench.Worker(role, args, process.File) }
	}
}

// --- torture ---

func cmdTorture(args []string, w io.Writer) error {
	fs := newFlags("torture", "queue")
	cycles := fs.Int("cycles", 1000, "processes killed with SIGKILL, one per cycle")
	producers := fs.Int("producers", 2, "producer processes running at any time")
	consumers := fs.Int("consumers", 2, "consumer processes running at any time")
	delay := fs.Duration("max-delay", 10*time.Millisecond, "longest random wait before each kill")
	stall := fs.Duration("stall", 30*time.Second, "time without progress that counts as a hang")
	what := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		what, args = args[0], args[1:] // xproc torture queue [flags]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 1 && what == "" {
		what = fs.Arg(0) // xproc torture [flags] queue
	} else if fs.NArg() != 0 {
		what = ""
	}
	switch {
	case what != "queue":
		return usageError(fs, "what to torture? only \"queue\" (got %q)", strings.Join(append([]string{what}, fs.Args()...), " "))
	case *cycles < 1:
		return usageError(fs, "-cycles %d: want at least 1", *cycles)
	case *producers < 1:
		return usageError(fs, "-producers %d: want at least 1", *producers)
	case *consumers < 1:
		return usageError(fs, "-consumers %d: want at least 1", *consumers)
	case *delay < 0:
		return usageError(fs, "-max-delay %v: want 0 or more", *delay)
	case *stall <= 0:
		return usageError(fs, "-stall %v: want more than 0", *stall)
	}
	fmt.Fprintf(w, "xproc torture queue: %d cycles, each killing one of %d producers and %d consumers at random with SIGKILL\n",
		*cycles, *producers, *consumers)
	res, err := torture.Run(torture.Config{
		Name: fmt.Sprintf("xproc-torture-%d", os.Getpid()), Cycles: *cycles,
		Producers: *producers, Consumers: *consumers, MaxDelay: *delay, Stall: *stall,
		Progress: w, Seed: uint64(time.Now().UnixNano()),
	}, func(role string, args ...string) (torture.Proc, error) {
		return startWorker(role, nil, args...)
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, res)
	if !res.OK() {
		return errors.New("torture: the queue lost, tore or duplicated messages, or hung")
	}
	return nil
}

// --- demo: producers and consumers ---

// demoQueue runs half the workers as producers putting tasks into a
// queue and half as consumers taking them as leases, adding up their
// results in an array. The last producer to finish shuts the queue down,
// so that the consumers stop once it is drained.
func demoQueue(w io.Writer, p demoParams) error {
	prod := max(1, p.workers/2)
	cons := max(1, p.workers-prod)
	workers := prod + cons
	total := p.tasks / prod * prod
	fmt.Fprintf(w, "4. Producer/consumer: %d producers put %d tasks into a queue.Queue, %d consumers take them as leases\n", prod, total, cons)
	q, err := queue.CreateAnonymous(queue.Options{MaxMessages: 4096})
	if err != nil {
		return err
	}
	defer q.Close()
	// results[0]: finished producers; [1]: tasks done; [2]: sum of results.
	results, err := array.CreateAnonymous[int64](3)
	if err != nil {
		return err
	}
	defer results.Close()
	pq := p
	pq.workers = workers
	took, err := run("queue", "demo-queue", pq, int64(total), []*os.File{q.File(), results.Segment().File()},
		strconv.Itoa(prod), strconv.Itoa(total/prod))
	if err != nil {
		return err
	}
	done, sum := results.AtomicLoad(1), results.AtomicLoad(2)
	want := int64(total) * int64(total-1) / 2
	fmt.Fprintf(w, "   %d of %d tasks done, sum of results %d, expected %d: %s\n", done, total, sum, want, verdict(done == int64(total) && sum == want))
	fmt.Fprintf(w, "   %d processes: %v (%.2f M tasks/s through the queue)\n", workers, round(took), rate(int64(total), took))
	if done != int64(total) || sum != want {
		return fmt.Errorf("queue: %d tasks done, sum %d; want %d, %d", done, sum, total, want)
	}
	return nil
}

// demoQueueWorker args: index, producers, tasks per producer; the queue
// is data file 0, the results data file 1.
func demoQueueWorker(args []string) error {
	idx, prod, per := atoiArg(args[0]), atoiArg(args[1]), atoiArg(args[2])
	q, err := queue.OpenFile(dataFile(0))
	if err != nil {
		return err
	}
	defer q.Close()
	results, err := array.OpenFile[int64](dataFile(1), 3)
	if err != nil {
		return err
	}
	defer results.Close()
	ctx := context.Background()
	return openControl(func(progress *atomic.Int64) error {
		if idx < prod {
			var msg [8]byte
			for i := range per {
				binary.LittleEndian.PutUint64(msg[:], uint64(idx*per+i))
				if err := q.Put(ctx, msg[:]); err != nil {
					return err
				}
			}
			if results.Add(0, 1) == int64(prod) {
				return q.Shutdown(false)
			}
			return nil
		}
		for {
			l, err := q.GetLease(ctx)
			if errors.Is(err, queue.ErrShutdown) {
				return nil
			}
			if err != nil {
				return err
			}
			task := int64(binary.LittleEndian.Uint64(l.Data()))
			results.Add(2, task) // the "work"
			results.Add(1, 1)
			progress.Add(1)
			if err := l.Ack(); err != nil {
				return err
			}
		}
	})
}

func atoiArg(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// --- inspect ---

// messageState describes a queue or a pipe for xproc inspect; "" for
// other kinds.
func messageState(name string, kind shm.Kind, opts []shm.Option) (string, error) {
	switch kind {
	case shm.KindQueue:
		q, err := queue.Open(name, opts...)
		if err != nil {
			return "", err
		}
		defer q.Close()
		s := q.Stats()
		capacity := "no bound on messages"
		if s.MaxMessages > 0 {
			capacity = fmt.Sprintf("at most %d messages", s.MaxMessages)
		}
		st := fmt.Sprintf("depth %d (%d ready, %d leased, %d being written; %d back after a Nak or a dead consumer); capacity %s, ring %s (%s in use), messages up to %s; %d put in all, %d not yet done",
			s.Messages, s.Ready, s.Leased, s.Writing, s.Redelivered, capacity, byteSize(int64(s.Size)), byteSize(int64(s.UsedBytes)),
			byteSize(int64(s.MaxMessage)), s.Put, s.Unfinished)
		if s.Shutdown {
			st += map[bool]string{false: "; shut down", true: "; shut down (immediate)"}[s.Immediate]
		}
		return st, nil
	case shm.KindPipe:
		s, err := pipe.Stat(name, opts...)
		if err != nil {
			return "", err
		}
		end := func(pid int, closed bool) string {
			switch {
			case pid == 0:
				return "not taken"
			case closed:
				return fmt.Sprintf("pid %d, closed", pid)
			}
			return fmt.Sprintf("pid %d", pid)
		}
		return fmt.Sprintf("%s pipe, ring %s each way; creator %s, opener %s; %d messages waiting for the opener, %d for the creator",
			s.Direction, byteSize(int64(s.Size)), end(s.Creator, s.CreatorClosed), end(s.Opener, s.OpenerClosed), s.ToOpener, s.ToCreator), nil
	}
	return "", nil
}

// --- bench ---

// messageRows returns the message-passing rows of xproc bench: workloads
// of internal/qbench, each compared with what a user would pick instead
// (a Unix socket; a bare futex pair for a sleeping receiver).
func messageRows() []benchRow {
	start := func(role string, files []*os.File, args ...string) (qbench.Proc, error) {
		return startWorker(role, files, args...)
	}
	type fig int
	const (
		msgs fig = iota
		gbs
		rt
	)
	// Rows name a like reference (ref) and what a user would pick
	// instead (alt); the queue's and pipe's waiters spin before they
	// sleep.
	row := func(name, ref, alt, what string, f fig, run func(start qbench.Starter, name string, n int) (qbench.Result, error)) benchRow {
		r := benchRow{name: name, workload: name, ref: ref, alt: alt, what: what, spin: alt != ""}
		switch f {
		case msgs:
			r.units = "M msgs/s"
		case gbs:
			r.units = "GB/s"
		}
		r.run = func(n int) (measurement, error) {
			seg := fmt.Sprintf("xproc-bench-%d-%d", os.Getpid(), time.Now().UnixNano())
			res, err := run(start, seg, n)
			if err != nil {
				return measurement{}, err
			}
			m := measurement{took: res.Elapsed}
			switch f {
			case msgs:
				m.value = res.MsgRate() / 1e6
			case gbs:
				m.value = res.ByteRate() / 1e9
			case rt:
				m.value = float64(res.Median()) / 1e3
			}
			return m, nil
		}
		return r
	}
	return []benchRow{
		row("queue-64B", "", "socket-64B", "queue.Queue, 64-byte messages, 1 producer → 1 consumer process", msgs,
			func(start qbench.Starter, name string, n int) (qbench.Result, error) {
				return qbench.Queue(start, qbench.NoTimer{}, name, 1, 1, n, 64)
			}),
		row("queue-64B-2p2c", "", "socket-64B-2p2c", "queue.Queue, 64-byte messages, 2 producer → 2 consumer processes (total)", msgs,
			func(start qbench.Starter, name string, n int) (qbench.Result, error) {
				return qbench.Queue(start, qbench.NoTimer{}, name, 2, 2, n, 64)
			}),
		row("socket-64B-2p2c", "", "", "reference: Unix seqpacket socket pair, 2 producer → 2 consumer processes", msgs,
			func(start qbench.Starter, name string, n int) (qbench.Result, error) {
				return qbench.Socket(start, qbench.NoTimer{}, name, 2, 2, n, 64)
			}),
		row("socket-64B", "", "", "reference: Unix stream socket, 64-byte messages", msgs,
			func(start qbench.Starter, name string, n int) (qbench.Result, error) {
				return qbench.FD(start, qbench.NoTimer{}, "socket", n, 64)
			}),
		row("ospipe-64B", "", "", "reference: os.Pipe, 64-byte messages", msgs,
			func(start qbench.Starter, name string, n int) (qbench.Result, error) {
				return qbench.FD(start, qbench.NoTimer{}, "pipe", n, 64)
			}),
		row("channel-64B", "", "", "reference: buffered Go channel, 2 goroutines of one process, 64-byte arrays", msgs,
			func(start qbench.Starter, name string, n int) (qbench.Result, error) {
				return qbench.Chan(qbench.NoTimer{}, n, 64)
			}),
		{name: "queue-of-int64", ref: "channel-int64", units: "ns/op", what: "queue.Of[int64] put + get, one goroutine",
			run: func(n int) (measurement, error) {
				r, err := qbench.OfPutGet(qbench.NoTimer{}, fmt.Sprintf("xproc-bench-%d-%d", os.Getpid(), time.Now().UnixNano()), n)
				return measurement{value: float64(r.Elapsed.Nanoseconds()) / float64(max(r.Msgs, 1)), took: r.Elapsed}, err
			}},
		{name: "channel-int64", units: "ns/op", what: "reference: buffered Go channel, send + receive, one goroutine",
			run: func(n int) (measurement, error) {
				r, err := qbench.ChanPutGet(qbench.NoTimer{}, n)
				return measurement{value: float64(r.Elapsed.Nanoseconds()) / float64(max(r.Msgs, 1)), took: r.Elapsed}, err
			}},
		row("queue-4KiB", "", "socket-4KiB", "queue.Queue, 4 KiB messages, 1 → 1", gbs,
			func(start qbench.Starter, name string, n int) (qbench.Result, error) {
				return qbench.Queue(start, qbench.NoTimer{}, name, 1, 1, n, 4096)
			}),
		row("socket-4KiB", "", "", "reference: Unix stream socket, 4 KiB messages", gbs,
			func(start qbench.Starter, name string, n int) (qbench.Result, error) {
				return qbench.FD(start, qbench.NoTimer{}, "socket", n, 4096)
			}),
		row("pipe-pingpong", "futex-pingpong-spin", "socket-pingpong", "pipe.End ping-pong of 64 bytes, both running, waiters spinning first", rt,
			func(start qbench.Starter, name string, n int) (qbench.Result, error) {
				return qbench.PipePingPong(start, qbench.NoTimer{}, name, n, 20*time.Microsecond)
			}),
		row("socket-pingpong", "", "", "reference: Unix socket ping-pong of 64 bytes", rt,
			func(start qbench.Starter, name string, n int) (qbench.Result, error) {
				return qbench.FDPingPong(start, qbench.NoTimer{}, "socket", n)
			}),
		row("pipe-pingpong-asleep", "futex-pingpong", "", "pipe.End ping-pong, receiver always asleep", rt,
			func(start qbench.Starter, name string, n int) (qbench.Result, error) {
				return qbench.PipePingPong(start, qbench.NoTimer{}, name, n, 0)
			}),
	}
}
