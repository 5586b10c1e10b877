// Package qbench holds the message-passing workloads that the benchmarks
// of packages queue and pipe and "xproc bench" measure, with the peers a
// user would pick instead (a Unix socket, os.Pipe, Go channels), so that
// the README's figures and a user's come from the same code.
//
// Every workload runs its other side in separate processes, which the
// caller starts (the test binary or xproc, re-executed) and which run
// Worker. Process start-up is not timed: each side says it is ready
// before the clock starts. Every workload checks what arrived (counts and
// sequence numbers) and fails if anything is wrong.
package qbench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/xproc-go/xproc/internal/bench"
	"github.com/xproc-go/xproc/pipe"
	"github.com/xproc-go/xproc/queue"
	"github.com/xproc-go/xproc/shm"
)

// Proc is a started worker process.
type Proc interface {
	Wait() error
	Kill()
}

// Starter starts role in a worker process with the files as fd 3, 4, ...
type Starter func(role string, files []*os.File, args ...string) (Proc, error)

// Timer is started when both sides are ready and stopped when the last
// message has arrived; *testing.B is one.
type Timer interface {
	StartTimer()
	StopTimer()
}

// Result of a workload.
type Result struct {
	Msgs    int
	Bytes   int64
	Elapsed time.Duration
	RTs     []time.Duration // round trips, for ping-pongs
}

// MsgRate returns messages per second.
func (r Result) MsgRate() float64 { return float64(r.Msgs) / r.Elapsed.Seconds() }

// ByteRate returns bytes per second.
func (r Result) ByteRate() float64 { return float64(r.Bytes) / r.Elapsed.Seconds() }

// Median returns the median round trip.
func (r Result) Median() time.Duration {
	s := slices.Clone(r.RTs)
	slices.Sort(s)
	return s[len(s)/2]
}

// Roles run by Worker.
const (
	RoleQueueProducer  = "qbench-queue-producer"
	RoleQueueConsumer  = "qbench-queue-consumer"
	RoleFDSink         = "qbench-fd-sink"
	RolePipeEcho       = "qbench-pipe-echo"
	RoleFDEcho         = "qbench-fd-echo"
	RoleFutexPong      = "qbench-futex-pong"
	RoleSocketProducer = "qbench-socket-producer"
	RoleSocketConsumer = "qbench-socket-consumer"
)

// Roles lists every role, for registration.
var Roles = []string{RoleQueueProducer, RoleQueueConsumer, RoleFDSink, RolePipeEcho, RoleFDEcho, RoleFutexPong,
	RoleSocketProducer, RoleSocketConsumer}

var bg = context.Background()

// fill writes message i of a run into m: its sequence number (8 bytes,
// if it fits) and a pattern of i.
func fill(m []byte, i uint64) {
	if len(m) >= 8 {
		binary.LittleEndian.PutUint64(m, i)
	}
}

// seq reads the sequence number of a message.
func seq(m []byte) uint64 {
	if len(m) >= 8 {
		return binary.LittleEndian.Uint64(m)
	}
	return 0
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// Queue moves n messages of size bytes through a queue from producers
// to consumers (worker processes each), and returns once every message
// has been consumed and checked: the count and the sum of the sequence
// numbers must be right. name prefixes the segments.
func Queue(start Starter, t Timer, name string, producers, consumers, n, size int) (Result, error) {
	qname := name + "-q"
	// The ring holds about 1,000 messages of 4 KiB, or 16,000 of 64 bytes.
	q, err := queue.Create(qname, queue.Options{Size: 4 << 20, MaxMessage: max(size, 8)})
	if err != nil {
		return Result{}, err
	}
	defer q.Close()
	defer q.Unlink()
	return many(start, t, name, producers, consumers, n, size, manyRun{
		producer: RoleQueueProducer, consumer: RoleQueueConsumer, args: []string{qname},
		done: func() { q.Shutdown(false) }, // consumers stop once they have all
	})
}

// Socket moves n messages of size bytes from producers to consumers
// (worker processes each) through one Unix socket pair of kind
// SOCK_SEQPACKET, the producers sharing one end and the consumers the
// other (the kernel hands each message to one reader, whole), and checks
// them as Queue does: what a user would pick for a pool of workers
// without shared memory.
func Socket(start Starter, t Timer, name string, producers, consumers, n, size int) (Result, error) {
	w, r, err := seqpacketPair()
	if err != nil {
		return Result{}, err
	}
	closeBoth := func() { w.Close(); r.Close() }
	defer closeBoth()
	return many(start, t, name, producers, consumers, n, size, manyRun{
		producer: RoleSocketProducer, consumer: RoleSocketConsumer, args: []string{"-"},
		producerFiles: []*os.File{w}, consumerFiles: []*os.File{r},
		// Consumers read end of file once every producer has closed
		// its end: this process must not hold one.
		started: closeBoth,
	})
}

// manyRun is what differs between the multi-process workloads.
type manyRun struct {
	producer, consumer           string   // roles
	args                         []string // before the control queues' names
	producerFiles, consumerFiles []*os.File
	started                      func() // once every worker has started
	done                         func() // once every producer is done
}

// many runs a workload of producers and consumers: they say they are
// ready on a control queue, the producers start on a second one, report
// when done, and the consumers report their counts and sums of sequence
// numbers, which must be right.
func many(start Starter, t Timer, name string, producers, consumers, n, size int, run manyRun) (Result, error) {
	cname, gname := name+"-ctl", name+"-go"
	var ctl, gos *queue.Coded[[2]int]
	for _, x := range []struct {
		name string
		q    **queue.Coded[[2]int]
	}{{cname, &ctl}, {gname, &gos}} {
		c, err := queue.Create(x.name, queue.Options{Size: 1 << 16})
		if err != nil {
			return Result{}, err
		}
		defer c.Close()
		defer c.Unlink()
		*x.q = queue.WithCodec[[2]int](c, queue.JSONCodec)
	}
	per := n / producers
	n = per * producers
	var procs []Proc
	defer func() {
		for _, p := range procs {
			p.Kill()
			p.Wait()
		}
	}()
	args := append(slices.Clone(run.args), cname, gname)
	for range consumers {
		p, err := start(run.consumer, run.consumerFiles, append(args, strconv.Itoa(size))...)
		if err != nil {
			return Result{}, err
		}
		procs = append(procs, p)
	}
	for range producers {
		pr, err := start(run.producer, run.producerFiles, append(args, strconv.Itoa(per), strconv.Itoa(size))...)
		if err != nil {
			return Result{}, err
		}
		procs = append(procs, pr)
	}
	if run.started != nil {
		run.started()
	}
	// Everyone is ready...
	for range producers + consumers {
		if _, err := ctl.Get(bg); err != nil {
			return Result{}, err
		}
	}
	// ...go.
	t.StartTimer()
	t0 := time.Now()
	for range producers {
		if err := gos.Put(bg, [2]int{}); err != nil {
			return Result{}, err
		}
	}
	// Producers report when done; then the consumers drain, stop and
	// report their counts and sums.
	for range producers {
		if v, err := ctl.Get(bg); err != nil || v[0] != -1 {
			return Result{}, fmt.Errorf("producer: %v %v", v, err)
		}
	}
	if run.done != nil {
		run.done()
	}
	var count, sum int
	for range consumers {
		v, err := ctl.Get(bg)
		if err != nil {
			return Result{}, err
		}
		count += v[0]
		sum += v[1]
	}
	elapsed := time.Since(t0)
	t.StopTimer()
	for _, p := range procs {
		if err := p.Wait(); err != nil {
			return Result{}, err
		}
	}
	procs = nil
	want := producers * per * (per - 1) / 2
	if count != n || (size >= 8 && sum != want) {
		return Result{}, fmt.Errorf("%d messages (sum %d), want %d (sum %d)", count, sum, n, want)
	}
	return Result{Msgs: n, Bytes: int64(n) * int64(size), Elapsed: elapsed}, nil
}

// openControls opens a workload's two control queues.
func openControls(cname, gname string) (ctl, gos *queue.Coded[[2]int], err error) {
	c, err := queue.Open(cname)
	if err != nil {
		return nil, nil, err
	}
	g, err := queue.Open(gname)
	if err != nil {
		return nil, nil, err
	}
	return queue.WithCodec[[2]int](c, queue.JSONCodec), queue.WithCodec[[2]int](g, queue.JSONCodec), nil
}

// produce says ready, waits for the start, sends per messages of size
// bytes with put, and says done.
func produce(ctl, gos *queue.Coded[[2]int], per, size int, put func(msg []byte) error) error {
	if err := ctl.Put(bg, [2]int{}); err != nil {
		return err
	}
	if _, err := gos.Get(bg); err != nil {
		return err
	}
	msg := make([]byte, size)
	for i := range per {
		fill(msg, uint64(i))
		if err := put(msg); err != nil {
			return err
		}
	}
	return ctl.Put(bg, [2]int{-1, 0})
}

// consume says ready, then takes messages of size bytes with get (which
// returns io.EOF at the end) and reports their count and the sum of
// their sequence numbers.
func consume(ctl *queue.Coded[[2]int], size int, get func(buf []byte) (int, error)) error {
	if err := ctl.Put(bg, [2]int{}); err != nil {
		return err
	}
	buf := make([]byte, max(size, 8))
	count, sum := 0, 0
	for {
		n, err := get(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("message of %d bytes, want %d", n, size)
		}
		count++
		sum += int(seq(buf[:n]))
	}
	return ctl.Put(bg, [2]int{count, sum})
}

// Worker arguments of the multi-process workloads: the queue's name (or
// "-"), the control queues' names, then the producer's count and both's
// size.

func queueProducer(args []string) error {
	q, err := queue.Open(args[0])
	if err != nil {
		return err
	}
	ctl, gos, err := openControls(args[1], args[2])
	if err != nil {
		return err
	}
	return produce(ctl, gos, atoi(args[3]), atoi(args[4]), func(msg []byte) error { return q.Put(bg, msg) })
}

func queueConsumer(args []string) error {
	q, err := queue.Open(args[0])
	if err != nil {
		return err
	}
	ctl, _, err := openControls(args[1], args[2])
	if err != nil {
		return err
	}
	return consume(ctl, atoi(args[3]), func(buf []byte) (int, error) {
		n, err := q.GetInto(bg, buf)
		if errors.Is(err, queue.ErrShutdown) {
			return 0, io.EOF
		}
		return n, err
	})
}

func socketProducer(args []string, w *os.File) error {
	ctl, gos, err := openControls(args[1], args[2])
	if err != nil {
		return err
	}
	err = produce(ctl, gos, atoi(args[3]), atoi(args[4]), func(msg []byte) error {
		_, err := w.Write(msg)
		return err
	})
	w.Close() // the consumers' end of file comes once every producer closed
	return err
}

func socketConsumer(args []string, r *os.File) error {
	ctl, _, err := openControls(args[1], args[2])
	if err != nil {
		return err
	}
	return consume(ctl, atoi(args[3]), func(buf []byte) (int, error) {
		n, err := r.Read(buf)
		if n == 0 && err == nil {
			return 0, io.EOF
		}
		return n, err
	})
}

// FD moves n messages of size bytes over a Unix stream socket ("socket")
// or a pipe ("pipe") to a worker process that reads them (in size-byte
// reads, checking sequence numbers) and answers with one byte.
func FD(start Starter, t Timer, kind string, n, size int) (Result, error) {
	mine, theirs, err := fdPair(kind)
	if err != nil {
		return Result{}, err
	}
	defer mine[0].Close()
	defer mine[1].Close()
	p, err := start(RoleFDSink, theirs[:], strconv.Itoa(n), strconv.Itoa(size))
	for _, f := range theirs {
		f.Close()
	}
	if err != nil {
		return Result{}, err
	}
	defer p.Wait()
	one := []byte{0}
	if _, err := io.ReadFull(mine[0], one); err != nil { // ready
		p.Kill()
		return Result{}, err
	}
	msg := make([]byte, size)
	t.StartTimer()
	t0 := time.Now()
	for i := range n {
		fill(msg, uint64(i))
		if _, err := mine[1].Write(msg); err != nil {
			p.Kill()
			return Result{}, err
		}
	}
	if _, err := io.ReadFull(mine[0], one); err != nil || one[0] != 1 {
		p.Kill()
		return Result{}, fmt.Errorf("sink: %v %v", one, err)
	}
	elapsed := time.Since(t0)
	t.StopTimer()
	return Result{Msgs: n, Bytes: int64(n) * int64(size), Elapsed: elapsed}, nil
}

func fdSink(args []string, in, out *os.File) error {
	n, size := atoi(args[0]), atoi(args[1])
	if _, err := out.Write([]byte{0}); err != nil {
		return err
	}
	buf := make([]byte, size)
	for i := range n {
		if _, err := io.ReadFull(in, buf); err != nil {
			return err
		}
		if size >= 8 && seq(buf) != uint64(i) {
			return fmt.Errorf("message %d has sequence number %d", i, seq(buf))
		}
	}
	_, err := out.Write([]byte{1})
	return err
}

// OfPutGet puts n int64s into a queue.Of[int64] in this process, taking
// each back at once, and checks their sum; Elapsed over Msgs is the cost
// of one put and one get. name names the queue.
func OfPutGet(t Timer, name string, n int) (Result, error) {
	q, err := queue.CreateOf[int64](name, queue.Options{Size: 1 << 16})
	if err != nil {
		return Result{}, err
	}
	defer q.Close()
	defer q.Queue().Unlink()
	sum := int64(0)
	t.StartTimer()
	t0 := time.Now()
	for i := range int64(n) {
		if err := q.TryPut(i); err != nil {
			return Result{}, err
		}
		v, err := q.TryGet()
		if err != nil {
			return Result{}, err
		}
		sum += v
	}
	elapsed := time.Since(t0)
	t.StopTimer()
	if want := int64(n) * int64(n-1) / 2; sum != want {
		return Result{}, fmt.Errorf("sum %d, want %d", sum, want)
	}
	return Result{Msgs: n, Bytes: 8 * int64(n), Elapsed: elapsed}, nil
}

// ChanPutGet is OfPutGet on a buffered Go channel.
func ChanPutGet(t Timer, n int) (Result, error) {
	ch := make(chan int64, 1024)
	sum := int64(0)
	t.StartTimer()
	t0 := time.Now()
	for i := range int64(n) {
		ch <- i
		sum += <-ch
	}
	elapsed := time.Since(t0)
	t.StopTimer()
	if want := int64(n) * int64(n-1) / 2; sum != want {
		return Result{}, fmt.Errorf("sum %d, want %d", sum, want)
	}
	return Result{Msgs: n, Bytes: 8 * int64(n), Elapsed: elapsed}, nil
}

// Chan moves n messages of size bytes (64 or 4096) through a buffered Go
// channel of arrays between two goroutines of this process.
func Chan(t Timer, n, size int) (Result, error) {
	t.StartTimer()
	t0 := time.Now()
	var bad error
	switch size {
	case 64:
		bad = chanRun(n, func(a *[64]byte) []byte { return a[:] })
	case 4096:
		bad = chanRun(n, func(a *[4096]byte) []byte { return a[:] })
	default:
		return Result{}, fmt.Errorf("channel messages of %d bytes: 64 or 4096 only", size)
	}
	elapsed := time.Since(t0)
	t.StopTimer()
	return Result{Msgs: n, Bytes: int64(n) * int64(size), Elapsed: elapsed}, bad
}

// chanRun sends n arrays (copied in and out, as a ring copies messages)
// through a buffered channel; bytes views an array.
func chanRun[A any](n int, bytes func(*A) []byte) error {
	ch := make(chan A, 1024)
	go func() {
		var a A
		for i := range n {
			fill(bytes(&a), uint64(i))
			ch <- a
		}
		close(ch)
	}()
	i := uint64(0)
	for a := range ch {
		if s := seq(bytes(&a)); s != i {
			return fmt.Errorf("message %d has sequence number %d", i, s)
		}
		i++
	}
	return nil
}

// PipePingPong bounces a 64-byte message n times over a pipe to an echo
// worker and records each round trip. spin is both ends' spin limit (0:
// the receiver always sleeps).
func PipePingPong(start Starter, t Timer, name string, n int, spin time.Duration) (Result, error) {
	e, err := pipe.Create(name, pipe.Options{Size: 1 << 16})
	if err != nil {
		return Result{}, err
	}
	defer e.Close()
	defer e.Unlink()
	e.SetSpin(spin)
	p, err := start(RolePipeEcho, nil, name, strconv.Itoa(n), spin.String())
	if err != nil {
		return Result{}, err
	}
	if _, err := e.Recv(bg); err != nil { // ready
		return Result{}, echoFailed(p, err)
	}
	msg, buf := make([]byte, 64), make([]byte, 64)
	r, err := pingLoop(t, n, func(i int) (uint64, error) {
		fill(msg, uint64(i))
		if err := e.Send(bg, msg); err != nil {
			return 0, err
		}
		_, err := e.RecvInto(bg, buf)
		return seq(buf), err
	})
	if err != nil {
		return Result{}, echoFailed(p, err)
	}
	return r, p.Wait()
}

// echoFailed stops the echo worker p after err and says how it ended:
// an io.EOF is the worker's exit, whose reason is in its own error.
func echoFailed(p Proc, err error) error {
	p.Kill()
	return fmt.Errorf("%w (the echo worker: %v)", err, p.Wait())
}

// pingLoop runs n round trips, each an exchange of message i that must
// come back as i+1, and records their times.
func pingLoop(t Timer, n int, exchange func(i int) (uint64, error)) (Result, error) {
	rts := make([]time.Duration, 0, min(n, 1<<20))
	t.StartTimer()
	t0 := time.Now()
	for i := range n {
		s := time.Now()
		back, err := exchange(i)
		if err != nil {
			return Result{}, err
		}
		if back != uint64(i)+1 {
			return Result{}, fmt.Errorf("round trip %d came back as %d", i, back)
		}
		if len(rts) < cap(rts) {
			rts = append(rts, time.Since(s))
		}
	}
	elapsed := time.Since(t0)
	t.StopTimer()
	return Result{Msgs: n, Elapsed: elapsed, RTs: rts}, nil
}

func pipeEcho(args []string) error {
	e, err := pipe.Open(args[0])
	if err != nil {
		return err
	}
	defer e.Close()
	spin, err := time.ParseDuration(args[2])
	if err != nil {
		return err
	}
	e.SetSpin(spin)
	if err := e.Send(bg, nil); err != nil {
		return err
	}
	buf := make([]byte, 64)
	for range atoi(args[1]) {
		if _, err := e.RecvInto(bg, buf); err != nil {
			return err
		}
		binary.LittleEndian.PutUint64(buf, seq(buf)+1)
		if err := e.Send(bg, buf); err != nil {
			return err
		}
	}
	return nil
}

// FDPingPong bounces a 64-byte message n times over a Unix socket or a
// pair of pipes to an echo worker.
func FDPingPong(start Starter, t Timer, kind string, n int) (Result, error) {
	mine, theirs, err := fdPair(kind)
	if err != nil {
		return Result{}, err
	}
	defer mine[0].Close()
	defer mine[1].Close()
	p, err := start(RoleFDEcho, theirs[:], strconv.Itoa(n))
	for _, f := range theirs {
		f.Close()
	}
	if err != nil {
		return Result{}, err
	}
	defer p.Wait()
	msg := make([]byte, 64)
	if _, err := io.ReadFull(mine[0], msg[:1]); err != nil { // ready
		p.Kill()
		return Result{}, err
	}
	r, err := pingLoop(t, n, func(i int) (uint64, error) {
		fill(msg, uint64(i))
		if _, err := mine[1].Write(msg); err != nil {
			return 0, err
		}
		_, err := io.ReadFull(mine[0], msg)
		return seq(msg), err
	})
	if err != nil {
		p.Kill()
	}
	return r, err
}

func fdEcho(args []string, in, out *os.File) error {
	if _, err := out.Write([]byte{0}); err != nil {
		return err
	}
	buf := make([]byte, 64)
	for range atoi(args[0]) {
		if _, err := io.ReadFull(in, buf); err != nil {
			return err
		}
		binary.LittleEndian.PutUint64(buf, seq(buf)+1)
		if _, err := out.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// FutexPingPong is the floor a sleeping ping-pong is compared with: two
// processes bouncing a flag through bare FUTEX_WAIT and FUTEX_WAKE
// (internal/bench's "futex-pingpong").
func FutexPingPong(start Starter, t Timer, name string, n int) (Result, error) {
	ty, err := shm.TypeOf[bench.Shared]()
	if err != nil {
		return Result{}, err
	}
	seg, err := shm.Create(name, shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 1})
	if err != nil {
		return Result{}, err
	}
	defer seg.Close()
	defer seg.Unlink()
	sh, err := shm.View[bench.Shared](seg, 0)
	if err != nil {
		return Result{}, err
	}
	if err := sh.Init(); err != nil {
		return Result{}, err
	}
	p, err := start(RoleFutexPong, nil, name, strconv.Itoa(n))
	if err != nil {
		return Result{}, err
	}
	lat := make([]time.Duration, min(n, 1<<20))
	sw := &split{t: t}
	runErr := bench.Run(sh, "futex-pingpong", n, lat, sw)
	if runErr != nil {
		p.Kill()
	}
	if err := p.Wait(); err != nil && runErr == nil {
		runErr = err
	}
	return Result{Msgs: n, Elapsed: sw.elapsed, RTs: lat[:min(n, len(lat))]}, runErr
}

// split times between StartTimer and StopTimer and passes them on.
type split struct {
	t       Timer
	start   time.Time
	elapsed time.Duration
}

func (s *split) StartTimer() { s.t.StartTimer(); s.start = time.Now() }
func (s *split) StopTimer()  { s.elapsed += time.Since(s.start); s.t.StopTimer() }

func futexPong(args []string) error {
	ty, err := shm.TypeOf[bench.Shared]()
	if err != nil {
		return err
	}
	seg, err := shm.Open(args[0], shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 1})
	if err != nil {
		return err
	}
	defer seg.Close()
	sh, err := shm.View[bench.Shared](seg, 0)
	if err != nil {
		return err
	}
	return bench.Peer(sh, "futex-pingpong", atoi(args[1]))
}

// Worker runs role in a worker process; file(i) returns the i-th file the
// parent handed it (the Starter's files).
func Worker(role string, args []string, file func(i int) *os.File) error {
	switch role {
	case RoleQueueProducer:
		return queueProducer(args)
	case RoleQueueConsumer:
		return queueConsumer(args)
	case RoleFDSink:
		return fdSink(args, file(0), file(1))
	case RolePipeEcho:
		return pipeEcho(args)
	case RoleFDEcho:
		return fdEcho(args, file(0), file(1))
	case RoleFutexPong:
		return futexPong(args)
	case RoleSocketProducer:
		return socketProducer(args, file(0))
	case RoleSocketConsumer:
		return socketConsumer(args, file(0))
	}
	return fmt.Errorf("qbench: unknown role %q", role)
}

// NoTimer is a Timer that does nothing.
type NoTimer struct{}

func (NoTimer) StartTimer() {}
func (NoTimer) StopTimer()  {}
