//go:build linux

package xproc_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/pipe"
	"github.com/xproc-go/xproc/queue"
	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
	"github.com/xproc-go/xproc/value"
)

// Full disks and leftovers: the resource cases of the hardening issue.

// smallTmpfs mounts a tmpfs of size bytes for the test, as a container's
// /dev/shm is (Docker's default is 64 MiB), or skips the test where it
// cannot mount (not root).
func smallTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("skipped: cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func init() {
	// create-full DIR: try every kind of Create in DIR, a 1 MiB tmpfs
	// nearly full, and print what each returned. Before segments
	// reserved their space, the first write into a segment larger than
	// the free space killed the process with SIGBUS.
	testproc.Register("create-full", func(args []string) error {
		dir := shm.Dir(args[0])
		big := make([]float64, 1<<18) // 2 MiB
		tries := []struct {
			what string
			f    func() (interface{ Close() error }, error)
		}{
			{"shm.Create", func() (interface{ Close() error }, error) {
				ty, _ := shm.TypeOf[byte]()
				return shm.Create("raw", shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 2 << 20}, dir)
			}},
			{"value.Create", func() (interface{ Close() error }, error) {
				return value.Create("value", [1 << 18]float64{1: 1}, dir)
			}},
			{"array.Create", func() (interface{ Close() error }, error) {
				a, err := array.Create[float64]("array", len(big), dir)
				if err == nil {
					a.Slice()[len(big)-1] = 1 // the first write past the free space
				}
				return a, err
			}},
			{"array.CreateFrom", func() (interface{ Close() error }, error) {
				return array.CreateFrom("array-from", big, dir)
			}},
			{"array.CreateFunc", func() (interface{ Close() error }, error) {
				return array.CreateFunc("array-func", len(big), func(s []float64) error { s[len(s)-1] = 1; return nil }, dir)
			}},
			{"array.CreateShape", func() (interface{ Close() error }, error) {
				return array.CreateShape[float64]("array-shape", []int{512, 512}, dir)
			}},
			{"value.CreateFunc", func() (interface{ Close() error }, error) {
				return value.CreateFunc("value-func", func(p *[1 << 18]float64) error { p[len(p)-1] = 1; return nil }, dir)
			}},
			{"xsync.CreateMutex", func() (interface{ Close() error }, error) {
				return xsync.CreateMutex("mutex", dir)
			}},
			{"xsync.CreateReentrantMutex", func() (interface{ Close() error }, error) {
				return xsync.CreateReentrantMutex("rmutex", dir)
			}},
			{"xsync.CreateSemaphore", func() (interface{ Close() error }, error) {
				return xsync.CreateSemaphore("semaphore", 1, false, dir)
			}},
			{"xsync.CreateEvent", func() (interface{ Close() error }, error) {
				return xsync.CreateEvent("event", dir)
			}},
			{"xsync.CreateCond", func() (interface{ Close() error }, error) {
				return xsync.CreateCond("cond", dir)
			}},
			{"xsync.CreateBarrier", func() (interface{ Close() error }, error) {
				return xsync.CreateBarrier("barrier", 2, 0, dir)
			}},
			{"queue.Create", func() (interface{ Close() error }, error) {
				return queue.Create("queue", queue.Options{}, dir)
			}},
			{"queue.CreateOf", func() (interface{ Close() error }, error) {
				return queue.CreateOf[int64]("queue-of", queue.Options{}, dir)
			}},
			{"pipe.Create", func() (interface{ Close() error }, error) {
				return pipe.Create("pipe", pipe.Options{}, dir)
			}},
		}
		for _, try := range tries {
			h, err := try.f()
			switch {
			case err == nil:
				h.Close()
				testproc.Say(try.what + ": created")
			case errors.Is(err, syscall.ENOSPC):
				testproc.Say(try.what + ": ENOSPC: " + err.Error())
			default:
				testproc.Say(try.what + ": " + err.Error())
			}
		}
		testproc.Say("done")
		return nil
	})
}

// TestCreateOnFullDisk: on a /dev/shm without room, every Create fails
// with an error matching syscall.ENOSPC and leaves no file; none of them
// kills the process.
func TestCreateOnFullDisk(t *testing.T) {
	dir := smallTmpfs(t, 1<<20)
	// Fill all but one page: 256 pages in all, a filler of 255, so that
	// even a Mutex segment (two pages) does not fit.
	ty, err := shm.TypeOf[byte]()
	require.NoError(t, err)
	filler, err := shm.Create("filler", shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 1<<20 - 2*4096}, shm.Dir(dir))
	require.NoError(t, err)
	defer filler.Close()
	defer filler.Unlink()

	c := testproc.Start(t, "create-full", dir)
	c.Expect("done")
	c.Wait()
	for _, what := range []string{"shm.Create", "value.Create", "array.Create", "array.CreateFrom", "array.CreateFunc",
		"array.CreateShape", "value.CreateFunc", "xsync.CreateMutex", "xsync.CreateReentrantMutex", "xsync.CreateSemaphore",
		"xsync.CreateEvent", "xsync.CreateCond", "xsync.CreateBarrier", "queue.Create", "queue.CreateOf", "pipe.Create"} {
		assert.Contains(t, c.Output(), what+": ENOSPC: ")
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"filler"}, names, "failed creates leave nothing behind")

	// The same in this process, checking the error's shape.
	_, err = value.Create("here", [1 << 18]float64{}, shm.Dir(dir))
	require.ErrorIs(t, err, syscall.ENOSPC)
	var se *shm.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "create", se.Op)
	assert.Contains(t, err.Error(), "no space left on device")
}

func init() {
	// make-and-die DIR NAME: create the named segment, keep it mapped,
	// say "made", and wait to be killed.
	testproc.Register("make-and-die", func(args []string) error {
		_, err := value.Create(args[1], int64(7), shm.Dir(args[0]))
		if err != nil {
			return err
		}
		testproc.Say("made")
		return testproc.Await("never")
	})
	// open-and-hold DIR NAME: open the named segment, say "opened" and
	// keep it mapped until "exit".
	testproc.Register("open-and-hold", func(args []string) error {
		v, err := value.Open[int64](args[1], shm.Dir(args[0]))
		if err != nil {
			return err
		}
		defer v.Close()
		testproc.Say("opened")
		return testproc.Await("exit")
	})
}

// TestSweep: a segment left by a process killed with SIGKILL is stale and
// swept; one whose creator is dead but that another process still maps
// is not, nor one whose creator lives though it closed its mapping.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	opt := shm.Dir(dir)

	// Left by a crash.
	crashed := testproc.Start(t, "make-and-die", dir, "crashed")
	crashed.Expect("made")
	crashed.Kill()
	crashed.WaitKilled()

	// Its creator crashed, but a live process still maps it.
	held := testproc.Start(t, "make-and-die", dir, "held")
	held.Expect("made")
	holder := testproc.Start(t, "open-and-hold", dir, "held")
	holder.Expect("opened")
	held.Kill()
	held.WaitKilled()

	// Made here and closed: its creator lives.
	v, err := value.Create("closed", int64(1), opt)
	require.NoError(t, err)
	require.NoError(t, v.Close())

	infos, err := shm.List(opt)
	require.NoError(t, err)
	stale := map[string]bool{}
	for _, in := range infos {
		stale[in.Name] = in.Stale()
	}
	assert.Equal(t, map[string]bool{"crashed": true, "held": false, "closed": false}, stale)

	// Hidden leftovers of a creator or remover killed half-way: old ones
	// go, a fresh one (its process may be at work) stays.
	for _, h := range []string{".xproc-tmp-0123", ".xproc-rm-4567", ".xproc-rm-fresh"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, h), []byte("XPROCSEG"), 0o600))
		if h != ".xproc-rm-fresh" {
			old := time.Now().Add(-time.Hour)
			require.NoError(t, os.Chtimes(filepath.Join(dir, h), old, old))
		}
	}

	removed, err := shm.Sweep(opt)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{".xproc-tmp-0123", ".xproc-rm-4567", "crashed"}, removed)
	_, err = os.Stat(filepath.Join(dir, ".xproc-rm-fresh"))
	assert.NoError(t, err)
	os.Remove(filepath.Join(dir, ".xproc-rm-fresh"))
	_, err = os.Stat(filepath.Join(dir, "crashed"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	// Once the last process lets go, the crashed creator's segment goes.
	holder.Send("exit")
	holder.Wait()
	removed, err = shm.Sweep(opt)
	require.NoError(t, err)
	assert.Equal(t, []string{"held"}, removed)

	ok, err := shm.RemoveStale("closed", opt)
	require.NoError(t, err)
	assert.False(t, ok, "a live creator's segment is not stale")
	require.NoError(t, shm.Remove("closed", opt))
}

// TestSweepRacesOpen: a sweep and an Open of the same stale segment at
// once: either the Open wins and the segment stays, mapped, or the sweep
// wins and the Open fails with ErrNotExist. Never is a mapped segment
// unlinked.
func TestSweepRacesOpen(t *testing.T) {
	dir := t.TempDir()
	opt := shm.Dir(dir)
	for i := range 20 {
		name := fmt.Sprintf("race-%d", i)
		c := testproc.Start(t, "make-and-die", dir, name)
		c.Expect("made")
		c.Kill()
		c.WaitKilled()

		type result struct {
			v   *value.Value[int64]
			err error
		}
		opened := make(chan result, 1)
		go func() {
			v, err := value.Open[int64](name, opt)
			opened <- result{v, err}
		}()
		_, serr := shm.RemoveStale(name, opt)
		require.NoError(t, serr)
		r := <-opened
		if r.err != nil {
			require.ErrorIs(t, r.err, shm.ErrNotExist)
		} else {
			_, err := os.Stat(filepath.Join(dir, name))
			assert.NoError(t, err, "a segment was swept while mapped")
			r.v.Close()
		}
		shm.Remove(name, opt)
	}
}

func init() {
	// anon-lock: map the anonymous segment inherited as file 3 and lock
	// the Mutex at its start; say "locked", or "refused: " and the error.
	testproc.Register("anon-lock", func(args []string) error {
		ty, err := shm.TypeOf[xsync.Mutex]()
		if err != nil {
			return err
		}
		seg, err := shm.OpenFile(os.NewFile(3, "segment"), shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 1})
		if err != nil {
			testproc.Say(fmt.Sprintf("refused: %v: %v", errors.Is(err, shm.ErrLiveness), err))
			return testproc.Await("exit")
		}
		mu, err := shm.View[xsync.Mutex](seg, 0)
		if err != nil {
			return err
		}
		mu.Lock()
		testproc.Say("locked")
		return testproc.Await("exit")
	})
}

// TestNoLivenessLockNoMapping: a process that cannot hold its liveness
// lock (here: an inherited segment where /proc is not mounted, so that
// it cannot get an open file of its own) is refused the mapping, with
// ErrLiveness. It used to map the segment without the lock, and the
// others, asking the kernel, took its locks while it ran.
func TestNoLivenessLockNoMapping(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: hiding /proc (unshare -m) needs root (CI runs as root)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("skipped: unshare(1) is not installed")
	}
	ty, err := shm.TypeOf[xsync.Mutex]()
	require.NoError(t, err)
	seg, err := shm.CreateAnonymous(shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 1})
	require.NoError(t, err)
	defer seg.Close()
	c := testproc.StartCmd(t, "anon-lock", func(cmd *exec.Cmd) {
		cmd.Args = append([]string{unshare, "-m", "sh", "-c", `mount -t tmpfs none /proc && exec "$@"`, "sh"}, cmd.Args...)
		cmd.Path = unshare
		cmd.ExtraFiles = []*os.File{seg.File()}
	})
	line := c.ExpectPrefix("refused: ")
	assert.True(t, strings.HasPrefix(line, "true: "), "%s", line)
	assert.Contains(t, line, "/proc")
	c.Send("exit")
	c.Wait()
}
