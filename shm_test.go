//go:build linux

package xproc_test

// Integration tests across real processes: the packages used together the
// way a program uses them. Each child is this test binary re-executed in a
// role (see internal/testproc); the packages' own tests cover each piece.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/testproc"
	xsync "github.com/xproc-go/xproc/sync"
	"github.com/xproc-go/xproc/value"
)

func TestMain(m *testing.M) { testproc.Main(m) }

// fleet is the control block of a pool of worker processes, in a
// value.Value: a job counter under a lock, barriers to start and finish
// together, and an event that releases them.
type fleet struct {
	Mu      xsync.Mutex
	Next    int64 // next job to hand out; guarded by Mu
	Taken   int64 // jobs handed out; guarded by Mu
	Go      xsync.Event
	Start   xsync.Barrier
	Finish  xsync.Barrier
	Workers int64
}

const fleetJobs = 5000

// square is the work: each job's result is checked by the parent.
func square(job int64) int64 { return job*job + 1 }

func init() {
	// fleet-worker opens the control block and the two arrays by name,
	// meets the others at Start, takes jobs under the lock until none are
	// left, writes each result raw into its own slot of results, counts
	// its jobs with an atomic add, and meets the others at Finish.
	testproc.Register("fleet-worker", func(args []string) error {
		ctl, err := value.Open[fleet](args[0])
		if err != nil {
			return err
		}
		defer ctl.Close()
		results, err := array.Open[int64](args[1], fleetJobs)
		if err != nil {
			return err
		}
		defer results.Close()
		counts, err := array.Open[int64](args[2], 0)
		if err != nil {
			return err
		}
		defer counts.Close()
		me, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), testproc.Bound)
		defer cancel()

		f := ctl.Ptr()
		if err := f.Go.WaitContext(ctx); err != nil {
			return err
		}
		if _, err := f.Start.WaitContext(ctx); err != nil {
			return err
		}
		out := results.Slice()
		for {
			f.Mu.Lock()
			job := f.Next
			if job < fleetJobs {
				f.Next++
				f.Taken++
			}
			f.Mu.Unlock()
			if job >= fleetJobs {
				break
			}
			out[job] = square(job)
			counts.Add(me, 1)
		}
		_, err = f.Finish.WaitContext(ctx)
		return err
	})

	// anon-worker maps an anonymous Value and Array inherited as files 3
	// and 4, fills the array, and sets the event in the value.
	testproc.Register("anon-worker", func(args []string) error {
		ctl, err := value.OpenFile[fleet](os.NewFile(3, "control"))
		if err != nil {
			return err
		}
		defer ctl.Close()
		data, err := array.OpenFile[float64](os.NewFile(4, "data"), 0)
		if err != nil {
			return err
		}
		defer data.Close()
		data.Update(func(s []float64) {
			for i := range s {
				s[i] = float64(i) / 2
			}
		})
		ctl.Update(func(f *fleet) { f.Workers = int64(data.Len()) })
		ctl.Ptr().Go.Set()
		return nil
	})

	// stuck-holder joins the Finish barrier as a party, takes the lock,
	// says so, and waits for an order that never comes: the parent kills
	// it.
	testproc.Register("stuck-holder", func(args []string) error {
		ctl, err := value.Open[fleet](args[0])
		if err != nil {
			return err
		}
		f := ctl.Ptr()
		f.Finish.Join()
		f.Mu.Lock()
		f.Next = -1 // a half-done update, for the next holder to repair
		testproc.Say("locked")
		return testproc.Await("never")
	})

	// barrier-survivor waits on Finish and must get ErrBroken once the
	// killed party is noticed.
	testproc.Register("barrier-survivor", func(args []string) error {
		ctl, err := value.Open[fleet](args[0])
		if err != nil {
			return err
		}
		defer ctl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testproc.Bound)
		defer cancel()
		testproc.Say("waiting")
		_, err = ctl.Ptr().Finish.WaitContext(ctx)
		if !errors.Is(err, xsync.ErrBroken) {
			return fmt.Errorf("Finish.Wait returned %v, want ErrBroken", err)
		}
		return nil
	})
}

// TestWorkerFleet: worker processes share a control block, take jobs
// under its lock, write results raw into a shared array and count them
// atomically; every job is done exactly once and every result arrives.
func TestWorkerFleet(t *testing.T) {
	const workers = 4
	ctlName, resName, cntName := testproc.Name(t), testproc.Name(t), testproc.Name(t)
	ctl, err := value.Create(ctlName, fleet{Workers: workers})
	require.NoError(t, err)
	defer ctl.Close()
	f := ctl.Ptr()
	require.NoError(t, f.Start.Init(workers+1, 0))
	require.NoError(t, f.Finish.Init(workers+1, 0))
	results, err := array.Create[int64](resName, fleetJobs)
	require.NoError(t, err)
	defer results.Close()
	counts, err := array.Create[int64](cntName, workers)
	require.NoError(t, err)
	defer counts.Close()

	var kids []*testproc.Child
	for w := range workers {
		kids = append(kids, testproc.Start(t, "fleet-worker", ctlName, resName, cntName, strconv.Itoa(w)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), testproc.Bound)
	defer cancel()
	f.Go.Set()
	_, err = f.Start.WaitContext(ctx)
	require.NoError(t, err)
	_, err = f.Finish.WaitContext(ctx)
	require.NoError(t, err)
	for _, k := range kids {
		k.Wait()
	}

	assert.Equal(t, int64(fleetJobs), ctl.Load().Taken)
	var total int64
	for w := range workers {
		total += counts.AtomicLoad(w)
	}
	assert.Equal(t, int64(fleetJobs), total, "each job counted once")
	got := make([]int64, fleetJobs)
	require.Equal(t, fleetJobs, results.ReadAt(got, 0))
	for job, r := range got {
		if r != square(int64(job)) {
			t.Fatalf("result %d is %d, want %d", job, r, square(int64(job)))
		}
	}
	assert.False(t, f.Mu.Locked())
	assert.False(t, f.Start.Broken() || f.Finish.Broken())
}

// TestAnonymousSegmentsToChild: a Value and an Array with no name reach a
// child as inherited files; the child's writes, and its Set of the event
// inside the Value, reach the parent.
func TestAnonymousSegmentsToChild(t *testing.T) {
	ctl, err := value.CreateAnonymous(fleet{})
	require.NoError(t, err)
	defer ctl.Close()
	data, err := array.CreateAnonymous[float64](1000)
	require.NoError(t, err)
	defer data.Close()

	child := testproc.StartCmd(t, "anon-worker", func(cmd *exec.Cmd) {
		cmd.ExtraFiles = []*os.File{ctl.Segment().File(), data.Segment().File()}
	})
	ctx, cancel := context.WithTimeout(context.Background(), testproc.Bound)
	defer cancel()
	require.NoError(t, ctl.Ptr().Go.WaitContext(ctx))
	child.Wait()
	assert.Equal(t, int64(1000), ctl.Load().Workers)
	for i, x := range data.Slice() {
		require.Equal(t, float64(i)/2, x, "element %d", i)
	}
}

// TestKilledHolderStrandsNobody: a process killed while it holds the
// control block's lock, as a party of its barrier, leaves neither the
// lock nor the barrier stuck. The next locker gets the lock with an
// error naming the dead process; the barrier breaks for the party still
// waiting in another process and for the parent.
func TestKilledHolderStrandsNobody(t *testing.T) {
	name := testproc.Name(t)
	ctl, err := value.Create(name, fleet{})
	require.NoError(t, err)
	defer ctl.Close()
	f := ctl.Ptr()
	require.NoError(t, f.Finish.Init(3, 0)) // holder, survivor, parent

	holder := testproc.Start(t, "stuck-holder", name)
	holder.Expect("locked")
	survivor := testproc.Start(t, "barrier-survivor", name)
	survivor.Expect("waiting")
	holder.Kill()

	ctx, cancel := context.WithTimeout(context.Background(), testproc.Bound)
	defer cancel()
	err = f.Mu.LockContext(ctx)
	require.ErrorIs(t, err, xsync.ErrOwnerDead)
	var dead *xsync.OwnerDeadError
	require.ErrorAs(t, err, &dead)
	assert.Equal(t, holder.Pid(), dead.PID)
	assert.Equal(t, int64(-1), f.Next, "the dead holder's half-done update is there to repair")
	f.Next = 0
	f.Mu.Unlock()

	_, err = f.Finish.WaitContext(ctx)
	assert.ErrorIs(t, err, xsync.ErrBroken)
	survivor.Wait()
}
