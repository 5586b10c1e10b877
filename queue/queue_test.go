package queue_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/race"
	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/queue"
	"github.com/xproc-go/xproc/shm"
)

func init() {
	testproc.Register("lease-and-die", func(args []string) error {
		q, err := queue.Open(args[0])
		if err != nil {
			return err
		}
		l, err := q.GetLease(bg)
		if err != nil {
			return err
		}
		testproc.Say("leased " + string(l.Data()))
		return testproc.Await("never")
	})
	testproc.Register("reserve-and-die", func(args []string) error {
		q, err := queue.Open(args[0])
		if err != nil {
			return err
		}
		r, err := q.Reserve(bg, 5)
		if err != nil {
			return err
		}
		copy(r.Bytes(), "torn!")
		testproc.Say("reserved")
		return testproc.Await("never")
	})
	testproc.Register("lease-reserve-close", func(args []string) error {
		// Two handles: closing the one that holds a lease and a
		// reservation gives both back while the process lives on.
		keep, err := queue.Open(args[0])
		if err != nil {
			return err
		}
		defer keep.Close()
		q, err := queue.Open(args[0])
		if err != nil {
			return err
		}
		l, err := q.GetLease(bg)
		if err != nil {
			return err
		}
		r, err := q.Reserve(bg, 5)
		if err != nil {
			return err
		}
		copy(r.Bytes(), "torn!")
		testproc.Say("leased " + string(l.Data()))
		if err := testproc.Await("close"); err != nil {
			return err
		}
		if err := q.Close(); err != nil {
			return err
		}
		testproc.Say("closed")
		return testproc.Await("exit")
	})
	testproc.Register("get-until-shutdown", func(args []string) error {
		q, err := queue.Open(args[0])
		if err != nil {
			return err
		}
		testproc.Say("ready")
		for {
			if _, err := q.Get(bg); err != nil {
				if errors.Is(err, queue.ErrShutdown) {
					testproc.Say("shutdown")
					return nil
				}
				return err
			}
		}
	})
	// put-until-shutdown fills the queue, then waits in Put for room
	// until the queue is shut down.
	testproc.Register("put-until-shutdown", func(args []string) error {
		q, err := queue.Open(args[0])
		if err != nil {
			return err
		}
		for q.TryPut(make([]byte, 100)) == nil {
		}
		testproc.Say("full")
		if err := q.Put(bg, make([]byte, 100)); !errors.Is(err, queue.ErrShutdown) {
			return fmt.Errorf("Put on a full queue shut down: %v", err)
		}
		testproc.Say("shutdown")
		return nil
	})
	// get-echo prints every message it gets, until shutdown, sleeping at
	// once (no spinning) whenever the queue is empty.
	testproc.Register("get-echo", func(args []string) error {
		q, err := queue.Open(args[0])
		if err != nil {
			return err
		}
		q.SetSpin(0)
		testproc.Say("ready")
		for {
			msg, err := q.Get(bg)
			if errors.Is(err, queue.ErrShutdown) {
				return nil
			}
			if err != nil {
				return err
			}
			testproc.Say("got " + string(msg))
		}
	})
	testproc.Register("typed-put", func(args []string) error {
		q, err := queue.OpenOf[point](args[0])
		if err != nil {
			return err
		}
		for i := range 100 {
			if err := q.Put(bg, point{X: int64(i), Y: float64(i) / 2}); err != nil {
				return err
			}
		}
		return nil
	})
}

type point struct {
	X int64
	Y float64
}

// TestLeaseRedeliveredAfterConsumerDies: a consumer killed holding a
// lease gives the message back, to a consumer that blocks in GetLease and
// to one that only polls with TryGetLease.
func TestLeaseRedeliveredAfterConsumerDies(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(map[bool]string{false: "blocking", true: "polling"}[poll], func(t *testing.T) {
			name, q := create(t, queue.Options{})
			require.NoError(t, q.Put(bg, []byte("task")))
			child := testproc.Start(t, "lease-and-die", name)
			child.Expect("leased task")
			_, err := q.TryGetLease()
			require.ErrorIs(t, err, queue.ErrEmpty, "leased by the child")
			child.Kill()
			var l *queue.Lease
			testproc.Within(t, 5*time.Second, "redelivery", func() {
				l = getBy(t, poll, q.GetLease, q.TryGetLease)
			})
			assert.Equal(t, "task", string(l.Data()))
			assert.True(t, l.Redelivered())
			assert.Equal(t, 2, l.NumDelivered())
			assert.Equal(t, child.Pid(), l.DeadConsumer())
			assert.Equal(t, uint64(1), l.Seq())
			require.NoError(t, l.Ack())
			require.ErrorIs(t, l.Ack(), queue.ErrLeaseDone)
			require.ErrorIs(t, l.Nak(), queue.ErrLeaseDone)
			assert.Equal(t, 0, q.Len())
		})
	}
}

// getBy takes a message with get (blocking) or, if poll is set, by calling
// try until it stops saying ErrEmpty, as a consumer that never blocks does.
func getBy[M any](t *testing.T, poll bool, get func(context.Context) (M, error), try func() (M, error)) M {
	t.Helper()
	if !poll {
		ctx, cancel := timeout(testproc.Bound)
		defer cancel()
		m, err := get(ctx)
		require.NoError(t, err)
		return m
	}
	for deadline := time.Now().Add(testproc.Bound); time.Now().Before(deadline); runtime.Gosched() {
		m, err := try()
		if !errors.Is(err, queue.ErrEmpty) {
			require.NoError(t, err)
			return m
		}
	}
	t.Fatalf("still ErrEmpty after polling for %v", testproc.Bound)
	panic("unreachable")
}

// TestCloseGivesBack: a process that closes the handle it took a lease
// and a reservation through, while it keeps the queue open through
// another handle (and so stays alive and attached), gives the message
// back and the reserved room up at once, without anyone's scan.
func TestCloseGivesBack(t *testing.T) {
	name, q := create(t, queue.Options{})
	require.NoError(t, q.Put(bg, []byte("task")))
	child := testproc.Start(t, "lease-reserve-close", name)
	child.Expect("leased task")
	require.NoError(t, q.Put(bg, []byte("after")))
	_, err := q.TryGet()
	require.ErrorIs(t, err, queue.ErrEmpty, "the lease is the child's, the reservation holds back what follows")
	child.Send("close")
	child.Expect("closed")
	l, err := q.TryGetLease()
	require.NoError(t, err, "given back by Close, not by a scan")
	assert.Equal(t, "task", string(l.Data()))
	assert.True(t, l.Redelivered())
	assert.Equal(t, child.Pid(), l.DeadConsumer())
	require.NoError(t, l.Ack())
	msg, err := q.TryGet()
	require.NoError(t, err, "the aborted reservation no longer holds back the next message")
	assert.Equal(t, "after", string(msg))
	assert.Zero(t, q.Len())
	assert.Zero(t, q.Stats().Writing)
	child.Send("exit")
	child.Wait()
}

// TestForeignLeaseHolder: a consumer in another PID namespace (another
// container sharing /dev/shm) holding a lease keeps it however often the
// others scan for dead consumers, and gives it back when it dies.
func TestForeignLeaseHolder(t *testing.T) {
	name, q := create(t, queue.Options{})
	require.NoError(t, q.Put(bg, []byte("task")))
	child := testproc.StartInPIDNamespace(t, "lease-and-die", name)
	child.Expect("leased task")
	for range 3 {
		n, err := q.Recover(bg)
		require.NoError(t, err)
		assert.Zero(t, n, "a live consumer of another namespace keeps its lease")
	}
	_, err := q.TryGetLease()
	require.ErrorIs(t, err, queue.ErrEmpty)
	child.Kill()
	ctx, cancel := timeout(testproc.Bound)
	defer cancel()
	l, err := q.GetLease(ctx)
	require.NoError(t, err)
	assert.Equal(t, "task", string(l.Data()))
	assert.True(t, l.Redelivered())
	require.NoError(t, l.Ack())
}

func TestNak(t *testing.T) {
	_, q := create(t, queue.Options{})
	for _, m := range []string{"a", "b"} {
		require.NoError(t, q.Put(bg, []byte(m)))
	}
	l, err := q.GetLease(bg)
	require.NoError(t, err)
	assert.False(t, l.Redelivered())
	assert.Equal(t, 1, l.NumDelivered())
	require.NoError(t, l.Nak())
	l, err = q.GetLease(bg)
	require.NoError(t, err)
	assert.Equal(t, "a", string(l.Data()), "a message put back comes first")
	assert.True(t, l.Redelivered())
	assert.Zero(t, l.DeadConsumer())
	require.NoError(t, l.Ack())
	msg, err := q.Get(bg)
	require.NoError(t, err)
	assert.Equal(t, "b", string(msg))
}

// TestReservationOfDeadProducerSkipped: a producer killed between Reserve
// and Commit holds back the messages behind its record until a consumer,
// blocking or only polling, finds it dead and skips the record.
func TestReservationOfDeadProducerSkipped(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(map[bool]string{false: "blocking", true: "polling"}[poll], func(t *testing.T) {
			name, q := create(t, queue.Options{})
			child := testproc.Start(t, "reserve-and-die", name)
			child.Expect("reserved")
			require.NoError(t, q.Put(bg, []byte("after")))
			_, err := q.TryGet()
			require.ErrorIs(t, err, queue.ErrEmpty, "held back by the reservation")
			child.Kill()
			testproc.Within(t, 5*time.Second, "skipping the dead reservation", func() {
				msg := getBy(t, poll, q.Get, q.TryGet)
				assert.Equal(t, "after", string(msg))
			})
			assert.Equal(t, 0, q.Len())
			assert.Zero(t, q.Stats().Writing)
		})
	}
}

func TestZeroCopy(t *testing.T) {
	_, q := create(t, queue.Options{})
	r, err := q.Reserve(bg, 5)
	require.NoError(t, err)
	copy(r.Bytes(), "hello")
	r2, err := q.Reserve(bg, 3)
	require.NoError(t, err)
	require.NoError(t, r2.Abort())
	require.ErrorIs(t, r2.Commit(), queue.ErrLeaseDone)
	require.NoError(t, r.Commit())
	l, err := q.GetLease(bg)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(l.Data()))
	require.NoError(t, l.Ack())
	_, err = q.TryGet()
	require.ErrorIs(t, err, queue.ErrEmpty, "the aborted reservation is no message")
	assert.Equal(t, 0, q.Len())
}

func TestShutdown(t *testing.T) {
	name, q := create(t, queue.Options{})
	child := testproc.Start(t, "get-until-shutdown", name)
	child.Expect("ready")
	require.NoError(t, q.Shutdown(false))
	child.Expect("shutdown")
	child.Wait()

	// A producer waiting for room in a full queue is let go too.
	name, q = create(t, queue.Options{Size: 4096})
	child = testproc.Start(t, "put-until-shutdown", name)
	child.Expect("full")
	require.NoError(t, q.Shutdown(false))
	child.Expect("shutdown")
	child.Wait()

	_, q = create(t, queue.Options{})
	require.NoError(t, q.Put(bg, []byte("a")))
	require.NoError(t, q.Put(bg, []byte("b")))
	require.NoError(t, q.Shutdown(false))
	assert.True(t, q.IsShutdown())
	require.ErrorIs(t, q.Put(bg, []byte("c")), queue.ErrShutdown)
	for _, want := range []string{"a", "b"} {
		msg, err := q.Get(bg)
		require.NoError(t, err, "drains first")
		assert.Equal(t, want, string(msg))
	}
	_, err := q.Get(bg)
	require.ErrorIs(t, err, queue.ErrShutdown)

	_, q = create(t, queue.Options{})
	require.NoError(t, q.Put(bg, []byte("a")))
	require.NoError(t, q.Put(bg, []byte("b")))
	require.NoError(t, q.Shutdown(true))
	_, err = q.Get(bg)
	require.ErrorIs(t, err, queue.ErrShutdown, "immediate: nothing left")
	assert.Equal(t, 0, q.Len())
	ctx, cancel := timeout(testproc.Bound)
	defer cancel()
	require.NoError(t, q.Join(ctx), "discarded messages count as done")
}

func TestTyped(t *testing.T) {
	name := testproc.Name(t)
	q, err := queue.CreateOf[point](name, queue.Options{Size: 4096})
	require.NoError(t, err)
	defer q.Close()
	child := testproc.Start(t, "typed-put", name)
	for i := range 100 {
		p, err := q.Get(bg)
		require.NoError(t, err)
		assert.Equal(t, point{X: int64(i), Y: float64(i) / 2}, p)
	}
	child.Wait()
	_, err = queue.OpenOf[int64](name)
	require.ErrorIs(t, err, shm.ErrTypeMismatch)
	require.NoError(t, q.TryPut(point{1, 2}))
	v, err := q.TryGet()
	require.NoError(t, err)
	assert.Equal(t, point{1, 2}, v)

	// A message of another size, put through the byte queue, is
	// reported and removed.
	require.NoError(t, q.Queue().Put(bg, []byte("short")))
	require.NoError(t, q.TryPut(point{3, 4}))
	_, err = q.Get(bg)
	var de *queue.DecodeError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, uint64(102), de.Seq)
	v, err = q.Get(bg)
	require.NoError(t, err)
	assert.Equal(t, point{3, 4}, v)

	_, err = queue.CreateOf[string](testproc.Name(t), queue.Options{})
	require.ErrorIs(t, err, shm.ErrUnsupportedType)
}

type job struct {
	ID    int
	Tags  map[string]int
	Items []string
}

func TestCodec(t *testing.T) {
	_, q := create(t, queue.Options{})
	for _, c := range []queue.Codec{nil, queue.GobCodec, queue.JSONCodec} {
		jq := queue.WithCodec[job](q, c)
		in := job{ID: 7, Tags: map[string]int{"a": 1}, Items: []string{"x", "y"}}
		require.NoError(t, jq.Put(bg, in))
		out, err := jq.Get(bg)
		require.NoError(t, err)
		assert.Equal(t, in, out)
	}

	// An encode error leaves the queue unchanged.
	cq := queue.WithCodec[chan int](q, nil)
	err := cq.Put(bg, make(chan int))
	var ee *queue.EncodeError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 0, q.Len())

	// A decode error names the message and loses no other.
	jq := queue.WithCodec[job](q, nil)
	require.NoError(t, q.Put(bg, []byte("not gob")))
	require.NoError(t, jq.Put(bg, job{ID: 8}))
	_, err = jq.Get(bg)
	var de *queue.DecodeError
	require.ErrorAs(t, err, &de)
	assert.NotZero(t, de.Seq)
	assert.Contains(t, err.Error(), fmt.Sprintf("message %d", de.Seq))
	out, err := jq.Get(bg)
	require.NoError(t, err)
	assert.Equal(t, 8, out.ID)
}

func TestBadInput(t *testing.T) {
	_, q := create(t, queue.Options{Size: 4096, MaxMessage: 100})
	require.NoError(t, q.Put(bg, []byte("keep")))
	err := q.Put(bg, make([]byte, 101))
	require.ErrorIs(t, err, queue.ErrTooLarge)
	assert.Contains(t, err.Error(), "at most 100 bytes")
	assert.Equal(t, 1, q.Len(), "nothing changed")

	buf := make([]byte, 2)
	_, err = q.GetInto(bg, buf)
	require.ErrorIs(t, err, io.ErrShortBuffer)
	var sb *queue.ShortBufferError
	require.ErrorAs(t, err, &sb)
	assert.Equal(t, 4, sb.Need)
	buf = make([]byte, 10)
	n, err := q.GetInto(bg, buf)
	require.NoError(t, err)
	assert.Equal(t, "keep", string(buf[:n]), "the message stayed")

	for _, o := range []queue.Options{{Size: -1}, {MaxMessage: 1 << 20, Size: 4096}, {Size: 1 << 40}} {
		_, err := queue.Create(testproc.Name(t), o)
		require.ErrorIs(t, err, shm.ErrInvalid, "%+v", o)
	}

	// A pipe is not a queue; a queue whose parameters are inconsistent
	// is corrupt.
	name := testproc.Name(t)
	ty, _ := shm.TypeOf[byte]()
	seg, err := shm.Create(name, shm.Spec{Kind: shm.KindPipe, Type: ty, Len: 1, DataSize: 8192})
	require.NoError(t, err)
	seg.Close()
	_, err = queue.Open(name)
	require.ErrorIs(t, err, shm.ErrKind)
	name = testproc.Name(t)
	sp := shm.Spec{Kind: shm.KindQueue, Type: ty, Len: 1, DataSize: 8192}
	sp.Params[0] = 5000
	seg, err = shm.Create(name, sp)
	require.NoError(t, err)
	seg.Close()
	_, err = queue.Open(name)
	require.ErrorIs(t, err, shm.ErrCorrupt)

	// Use after Close.
	require.NoError(t, q.Close())
	require.ErrorIs(t, q.Put(bg, nil), queue.ErrClosed)
	_, err = q.Get(bg)
	require.ErrorIs(t, err, queue.ErrClosed)
}

// TestCorruptFile damages the ring of a real queue file in its control
// words and in a record. An index, a count or a length that cannot be
// makes the calls that read it fail with ErrCorrupt: a blocking Put too,
// rather than wait for room that will never come. A state word
// overwritten with something that reads as a process's identity cannot be
// told from a record whose writer was killed writing it, and is skipped.
// Nothing panics or hangs, and no message is lost but the damaged one.
func TestCorruptFile(t *testing.T) {
	// Offsets in the data area (LAYOUT.md, "Queue and Pipe").
	const dataOff = 4096
	for _, c := range []struct {
		what    string
		off     int64
		val     uint64
		corrupt bool // some call says ErrCorrupt
	}{
		{"tail beyond the ring", 8, 1 << 40, true},
		{"tail behind head", 16, 1 << 20, true},
		{"put count", 24, 1 << 40, true},
		{"read cursor beyond tail", 128, 1 << 30, true},
		{"read cursor not on a word", 128, 12, true},
		{"tail not on a word", 8, 76, true},
		{"head not on a word", 16, 4, true},
		{"record length", 1024 + 8, 0xfffffff0, true},
		{"record state", 1024, 3 << 30, true},
		{"record state an identity", 1024, 0x12345678, false},
	} {
		t.Run(strings.ReplaceAll(c.what, " ", "-"), func(t *testing.T) {
			name, q := create(t, queue.Options{Size: 4096, MaxMessages: 8})
			require.NoError(t, q.Put(bg, []byte("one")))
			require.NoError(t, q.Put(bg, []byte("two")))
			f, err := os.OpenFile(q.Segment().Path(), os.O_RDWR, 0)
			require.NoError(t, err)
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], c.val)
			_, err = f.WriteAt(b[:], dataOff+c.off)
			require.NoError(t, err)
			f.Close()
			q2, err := queue.Open(name)
			require.NoError(t, err, "the header is intact")
			defer q2.Close()
			var got []string
			corrupt := 0
			testproc.Within(t, 10*time.Second, "calls on a corrupt ring", func() {
				for range 3 {
					ctx, cancel := timeout(200 * time.Millisecond)
					perr := q2.Put(ctx, []byte("three"))
					m, gerr := q2.Get(ctx)
					cancel()
					terr := q2.TryPut([]byte("four"))
					if gerr == nil {
						got = append(got, string(m))
					}
					for _, err := range []error{perr, gerr, terr} {
						if errors.Is(err, queue.ErrCorrupt) {
							corrupt++
						}
					}
					// Put fails only with ErrCorrupt (never waits for
					// room on a ring whose indices cannot be); Get may
					// find nothing it can read.
					if perr != nil {
						assert.ErrorIs(t, perr, queue.ErrCorrupt)
					}
					if gerr != nil && !errors.Is(gerr, queue.ErrCorrupt) && !errors.Is(gerr, context.DeadlineExceeded) {
						t.Errorf("Get: unexpected error %v", gerr)
					}
					if terr != nil && !errors.Is(terr, queue.ErrCorrupt) && (c.corrupt || !errors.Is(terr, queue.ErrFull)) {
						t.Errorf("TryPut: unexpected error %v", terr)
					}
				}
				q2.Stats()
				q2.Len()
			})
			if !c.corrupt {
				assert.Zero(t, corrupt)
				require.NotEmpty(t, got)
				assert.Equal(t, "two", got[0], "the damaged record is skipped, the next delivered")
				return
			}
			assert.Positive(t, corrupt, "no call reported the damage")
			if len(got) > 0 && c.off < 1024 {
				assert.Equal(t, "one", got[0], "records untouched by the damage are delivered as they were")
			}
		})
	}
}

// threads returns the number of OS threads of this process.
func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// TestThousandBlockedFewThreads: 1,000 goroutines blocked in Get on an
// empty queue and 1,000 in Put on a full one hold few OS threads, and all
// of them finish once the other side moves.
func TestThousandBlockedFewThreads(t *testing.T) {
	_, empty := create(t, queue.Options{})
	_, full := create(t, queue.Options{MaxMessages: 1})
	require.NoError(t, full.Put(bg, []byte{0}))
	base := threads(t)
	var wg sync.WaitGroup
	errs := make(chan error, 2000)
	for i := range 2000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, err := empty.Get(bg)
				errs <- err
			} else {
				errs <- full.Put(bg, []byte{1})
			}
		}()
	}
	peak := 0
	for range 50 {
		peak = max(peak, threads(t))
		time.Sleep(4 * time.Millisecond)
	}
	t.Logf("threads: %d before, peak %d while 2000 goroutines waited", base, peak)
	assert.LessOrEqual(t, peak-base, 16, "threads added by blocked goroutines")
	for range 1000 {
		require.NoError(t, empty.Put(bg, []byte{2}))
		_, err := full.Get(bg)
		require.NoError(t, err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestCloseWakesBlocked(t *testing.T) {
	name := testproc.Name(t)
	q, err := queue.Create(name, queue.Options{})
	require.NoError(t, err)
	done := make(chan error)
	go func() { _, err := q.Get(bg); done <- err }()
	for q.Segment().Closed() == false && !asleep(q) {
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, q.Close())
	require.ErrorIs(t, <-done, queue.ErrClosed)
}

func asleep(q *queue.Queue) bool { return queue.Sleepers(q) > 0 }

// MPMC across processes: producers put messages of random sizes, from 0
// bytes to the queue's maximum (every 1000th message of each producer is
// empty, the next of the maximum size). A message of 12 bytes or more
// carries its producer, sequence number and a checksum of the rest;
// consumers check each and count it in a shared array: every one must
// arrive exactly once, intact, in order per producer (as each consumer
// sees). A shorter one cannot say whose it is: its bytes all equal its
// length, and consumers count them by length, which must match what the
// producers sent (the parent replays their random sizes).

const (
	mpmcMax    = 2048
	mpmcHeader = 12
)

// mpmcSize returns the size of message i of a producer, drawn from its
// generator.
func mpmcSize(rng *rand.Rand, i int) int {
	n := rng.IntN(mpmcMax + 1)
	switch i % 1000 {
	case 0:
		return 0
	case 1:
		return mpmcMax
	}
	return n
}

func init() {
	testproc.Register("mpmc-producer", func(args []string) error {
		q, err := queue.Open(args[0])
		if err != nil {
			return err
		}
		p, per := testproc.Atoi(args[1]), testproc.Atoi(args[2])
		rng := rand.New(rand.NewPCG(uint64(p), 1))
		msg := make([]byte, mpmcMax+8)
		for i := range per {
			n := mpmcSize(rng, i)
			m := msg[:n]
			if n < mpmcHeader {
				for j := range m {
					m[j] = byte(n)
				}
			} else {
				binary.LittleEndian.PutUint32(m, uint32(p))
				binary.LittleEndian.PutUint32(m[4:], uint32(i))
				for j := mpmcHeader; j < n; j += 8 {
					binary.LittleEndian.PutUint64(msg[j:], rng.Uint64())
				}
				binary.LittleEndian.PutUint32(m[8:], crc32.ChecksumIEEE(m[mpmcHeader:]))
			}
			if err := q.Put(bg, m); err != nil {
				return err
			}
		}
		return nil
	})
	testproc.Register("mpmc-consumer", func(args []string) error {
		q, err := queue.Open(args[0])
		if err != nil {
			return err
		}
		seen, err := array.Open[uint32](args[1], 0)
		if err != nil {
			return err
		}
		producers, per := testproc.Atoi(args[2]), testproc.Atoi(args[3])
		short := producers * per // seen's counts of short messages, by length, start here
		last := make([]int, producers)
		for i := range last {
			last[i] = -1
		}
		buf := make([]byte, mpmcMax)
		for {
			n, err := q.GetInto(bg, buf)
			if errors.Is(err, queue.ErrShutdown) {
				return nil
			}
			if err != nil {
				return err
			}
			m := buf[:n]
			if n < mpmcHeader {
				for _, b := range m {
					if int(b) != n {
						return fmt.Errorf("torn message of %d bytes: %v", n, m)
					}
				}
				seen.Add(short+n, 1)
				continue
			}
			p, i := int(binary.LittleEndian.Uint32(m)), int(binary.LittleEndian.Uint32(m[4:]))
			if p >= producers || i >= per {
				return fmt.Errorf("message %d/%d out of range", p, i)
			}
			if crc32.ChecksumIEEE(m[mpmcHeader:]) != binary.LittleEndian.Uint32(m[8:]) {
				return fmt.Errorf("torn message %d/%d", p, i)
			}
			if i <= last[p] {
				return fmt.Errorf("message %d/%d after %d/%d", p, i, p, last[p])
			}
			last[p] = i
			seen.Add(p*per+i, 1)
		}
	})
}

func TestMPMCProcesses(t *testing.T) {
	const producers, consumers = 3, 3
	total := 1_000_000
	if race.Enabled || testing.Short() {
		total = 60_000 // the race detector makes each message ~20× slower
	}
	per := total / producers
	// A ring of 64 KiB: messages of up to 2 KiB wrap it often.
	name, q := create(t, queue.Options{Size: 64 << 10, MaxMessage: mpmcMax})
	seenName := testproc.Name(t)
	seen, err := array.Create[uint32](seenName, producers*per+mpmcHeader)
	require.NoError(t, err)
	defer seen.Close()
	var ps, cs []*testproc.Child
	for c := range consumers {
		_ = c
		cs = append(cs, testproc.Start(t, "mpmc-consumer", name, seenName, strconv.Itoa(producers), strconv.Itoa(per)))
	}
	start := time.Now()
	for p := range producers {
		ps = append(ps, testproc.Start(t, "mpmc-producer", name, strconv.Itoa(p), strconv.Itoa(per)))
	}
	for _, p := range ps {
		p.Wait()
	}
	require.NoError(t, q.Shutdown(false))
	for _, c := range cs {
		c.Wait()
	}
	t.Logf("%d messages through %d+%d processes in %v", producers*per, producers, consumers, time.Since(start))
	// What the producers sent: each long message once, short ones by
	// length.
	want := make([]uint32, producers*per+mpmcHeader)
	for p := range producers {
		rng := rand.New(rand.NewPCG(uint64(p), 1))
		for i := range per {
			n := mpmcSize(rng, i)
			if n < mpmcHeader {
				want[producers*per+n]++
				continue
			}
			want[p*per+i] = 1
			for j := mpmcHeader; j < n; j += 8 {
				rng.Uint64()
			}
		}
	}
	counts := seen.Slice()
	bad := 0
	for i, n := range counts[:producers*per] {
		if n != want[i] && bad < 10 {
			t.Errorf("message %d/%d arrived %d times", i/per, i%per, n)
			bad++
		}
	}
	assert.Equal(t, want[producers*per:], counts[producers*per:], "short messages received, by length")
	assert.Positive(t, want[producers*per], "empty messages were sent")
	assert.Equal(t, 0, q.Len())
}

func init() {
	testproc.Register("anon-put", func(args []string) error {
		q, err := queue.OpenFile(os.NewFile(3, "queue"))
		if err != nil {
			return err
		}
		for i := range 3 {
			if err := q.Put(bg, []byte{byte(i)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestAnonymous hands a queue with no name to an exec'd child.
func TestAnonymous(t *testing.T) {
	q, err := queue.CreateAnonymous(queue.Options{Size: 4096})
	require.NoError(t, err)
	defer q.Close()
	assert.Empty(t, q.Name())
	child := testproc.StartCmd(t, "anon-put", func(c *exec.Cmd) { c.ExtraFiles = []*os.File{q.File()} })
	for i := range 3 {
		msg, err := q.Get(bg)
		require.NoError(t, err)
		assert.Equal(t, []byte{byte(i)}, msg)
	}
	child.Wait()
}

// TestHappensBefore: goroutines of one process that hand Go memory over
// through a queue are ordered as through a channel (Put before the Get
// that returns the message, TaskDone before the Join it ends), so -race
// reports nothing. The ordering lives in shared memory, which the race
// detector does not see by itself.
func TestHappensBefore(t *testing.T) {
	_, q := create(t, queue.Options{MaxMessages: 4})
	shared := make([]int, 64)
	go func() {
		for i := range 64 {
			shared[i] = i * i // written before the Put that announces it
			if err := q.Put(bg, []byte{byte(i)}); err != nil {
				panic(err)
			}
		}
	}()
	for range 64 {
		msg, err := q.Get(bg)
		require.NoError(t, err)
		assert.Equal(t, int(msg[0])*int(msg[0]), shared[msg[0]])
		require.NoError(t, q.TaskDone())
	}

	total := 0
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				msg, err := q.Get(bg)
				if err != nil {
					return // shut down
				}
				shared[msg[0]] = -1 // each index is written by one consumer
				_ = q.TaskDone()
			}
		}()
	}
	for i := range 64 {
		require.NoError(t, q.Put(bg, []byte{byte(i)}))
	}
	require.NoError(t, q.Join(bg))
	for _, v := range shared {
		total += v
	}
	assert.Equal(t, -64, total)
	require.NoError(t, q.Shutdown(false))
	wg.Wait()
}

// PutDeferred and Flush, across processes: messages arrive whole and in
// order, and a consumer asleep in another process is woken by Flush, not
// left to find them when it next looks on its own (every 100ms): over ten
// rounds, the median from Flush to the consumer's line is far below that.
// A full queue flushes before it waits for room: a PutDeferred that finds
// the queue (of one) full returns once the consumer, woken, has taken
// the message before it, and not when the consumer would next look.
func TestPutDeferred(t *testing.T) {
	name, q := create(t, queue.Options{MaxMessages: 1})
	child := testproc.Start(t, "get-echo", name)
	child.Expect("ready")
	var lat []time.Duration
	for i := range 10 {
		msg := strconv.Itoa(i)
		sleeping(t, q)
		require.NoError(t, q.PutDeferred(bg, []byte(msg)))
		start := time.Now()
		q.Flush()
		child.Expect("got " + msg)
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("Flush to the consumer's line: median %v, max %v", lat[len(lat)/2], lat[len(lat)-1])
	assert.Less(t, lat[len(lat)/2], 30*time.Millisecond, "the sleeping consumer was woken by Flush")

	lat = lat[:0]
	for i := range 10 {
		first, second := "first "+strconv.Itoa(i), "second "+strconv.Itoa(i)
		sleeping(t, q)
		require.NoError(t, q.PutDeferred(bg, []byte(first)))
		start := time.Now()
		require.NoError(t, q.PutDeferred(bg, []byte(second))) // full: flushes, then waits
		lat = append(lat, time.Since(start))
		q.Flush()
		child.Expect("got " + first)
		child.Expect("got " + second)
	}
	slices.Sort(lat)
	t.Logf("PutDeferred on a full queue: median %v, max %v", lat[len(lat)/2], lat[len(lat)-1])
	assert.Less(t, lat[len(lat)/2], 30*time.Millisecond, "PutDeferred flushed before waiting for room")

	q.Flush() // nothing deferred: a no-op
	_, err := q.TryGet()
	assert.ErrorIs(t, err, queue.ErrEmpty)
	assert.ErrorIs(t, q.PutDeferred(bg, make([]byte, q.MaxMessage()+1)), queue.ErrTooLarge)
	require.NoError(t, q.Shutdown(false))
	child.Wait()
	assert.ErrorIs(t, q.PutDeferred(bg, []byte("late")), queue.ErrShutdown)
	require.NoError(t, q.Close())
	assert.ErrorIs(t, q.PutDeferred(bg, []byte("closed")), queue.ErrClosed)
	q.Flush() // after Close: does nothing
}

// sleeping waits until the consumer of q is in its sleeping path, and a
// little more for it to reach the futex: a message put before then is
// found without a wake-up, which would hide a missing one. The pause only
// makes the test sharper; the code under test passes without it.
func sleeping(t *testing.T, q *queue.Queue) {
	t.Helper()
	deadline := time.Now().Add(testproc.Bound)
	for !asleep(q) {
		require.True(t, time.Now().Before(deadline), "the consumer never went to sleep")
		time.Sleep(50 * time.Microsecond) // observing, not synchronising
	}
	time.Sleep(2 * time.Millisecond) // see above
}

// TestUseAfterClose: after Close, every method of a queue, and of a lease
// or reservation taken before, fails with ErrClosed (those that return no
// error panic with it, as Value's do); nothing faults; Close again does
// nothing.
func TestUseAfterClose(t *testing.T) {
	_, q := create(t, queue.Options{Size: 4096})
	require.NoError(t, q.Put(bg, []byte("leased")))
	l, err := q.GetLease(bg)
	require.NoError(t, err)
	r, err := q.Reserve(bg, 8)
	require.NoError(t, err)
	require.NoError(t, q.Close())
	require.NoError(t, q.Close(), "Close is idempotent")
	buf := make([]byte, 64)
	for op, f := range map[string]func() error{
		"Put":                func() error { return q.Put(bg, nil) },
		"TryPut":             func() error { return q.TryPut(nil) },
		"PutDeferred":        func() error { return q.PutDeferred(bg, nil) },
		"Get":                func() error { _, err := q.Get(bg); return err },
		"TryGet":             func() error { _, err := q.TryGet(); return err },
		"GetInto":            func() error { _, err := q.GetInto(bg, buf); return err },
		"TryGetInto":         func() error { _, err := q.TryGetInto(buf); return err },
		"GetLease":           func() error { _, err := q.GetLease(bg); return err },
		"TryGetLease":        func() error { _, err := q.TryGetLease(); return err },
		"Reserve":            func() error { _, err := q.Reserve(bg, 1); return err },
		"TaskDone":           func() error { return q.TaskDone() },
		"Join":               func() error { return q.Join(bg) },
		"Shutdown":           func() error { return q.Shutdown(false) },
		"Recover":            func() error { _, err := q.Recover(bg); return err },
		"Lease.Ack":          l.Ack,
		"Lease.Nak":          l.Nak,
		"Reservation.Commit": r.Commit,
		"Reservation.Abort":  r.Abort,
	} {
		assert.ErrorIs(t, f(), queue.ErrClosed, op)
	}
	for op, f := range map[string]func(){
		"Len":               func() { q.Len() },
		"IsShutdown":        func() { q.IsShutdown() },
		"Stats":             func() { q.Stats() },
		"Lease.Data":        func() { l.Data() },
		"Reservation.Bytes": func() { r.Bytes() },
	} {
		func() {
			defer func() {
				err, _ := recover().(error)
				assert.ErrorIs(t, err, queue.ErrClosed, "%s panics with ErrClosed", op)
			}()
			f()
		}()
	}
	q.Flush() // nothing to wake: does nothing
	assert.Positive(t, q.Size(), "what describes the queue still works")
}
