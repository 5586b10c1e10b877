package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/pipe"
	"github.com/xproc-go/xproc/queue"
	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
	"github.com/xproc-go/xproc/value"
)

// xproc runs the command line args and returns its exit status, standard
// output and standard error.
func xproc(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = execute(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func init() {
	// Creates a segment of its own (a Value) and lives until killed or
	// told to "exit".
	testproc.Register("cmd-create-live", func(args []string) error {
		v, err := value.Create[int64](args[0], 1)
		if err != nil {
			return err
		}
		defer v.Close()
		testproc.Say("created")
		return testproc.Await("exit")
	})
	// Says "idle" and lives until killed.
	testproc.Register("cmd-hog", func(args []string) error {
		testproc.Say("hogging")
		for x := uint64(1); ; x = x*6364136223846793005 + 1 {
			if x == 0 {
				return nil // never: keeps the loop from being removed
			}
		}
	})
	testproc.Register("cmd-idle", func(args []string) error {
		testproc.Say("idle")
		return testproc.Await("never")
	})
	// Locks the named primitive or value args[1] of kind args[0] and
	// lives until killed, told to "exit" (still holding the lock), or
	// told to "exec" cmd-idle (the same process, another program).
	testproc.Register("cmd-lock-live", func(args []string) error {
		switch args[0] {
		case "mutex":
			m, err := xsync.OpenMutex(args[1])
			if err != nil {
				return err
			}
			m.Lock()
		case "rmutex":
			r, err := xsync.OpenReentrantMutex(args[1])
			if err != nil {
				return err
			}
			r.Lock()
			r.Lock()
		case "value":
			v, err := value.Open[int64](args[1])
			if err != nil {
				return err
			}
			v.Lock()
		}
		testproc.Say("locked")
		for {
			switch cmd, err := testproc.Next(); {
			case err != nil:
				return err
			case cmd == "exit":
				return nil
			case cmd == "exec":
				return testproc.Exec("cmd-idle")
			}
		}
	})
}

// TestHelp: -h, --help and help print the usage on standard output and
// exit 0; mistakes print it on standard error and exit 2.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-help"}, {"--help"}, {"help"}, {"help", "help"}, {"help", "-h"}, {"help", "--help"}, {"help", "-help"}} {
		code, out, errOut := xproc(args...)
		assert.Equal(t, 0, code, "%q", args)
		assert.Contains(t, out, "usage: xproc <command>", "%q", args)
		assert.Empty(t, errOut, "%q", args)
	}
	cmds := []string{"demo", "bench", "ls", "inspect", "rm", "torture"}
	for name := range commands {
		assert.Contains(t, cmds, name, "a command the test does not cover")
	}
	for _, cmd := range cmds {
		variants := [][]string{{cmd, "-h"}, {cmd, "--help"}, {"help", cmd}}
		switch cmd {
		case "ls", "inspect", "rm":
			variants = append(variants, []string{cmd, "-dir", "x", "-h"}, []string{cmd, "name", "-h"})
		case "torture":
			variants = append(variants, []string{cmd, "queue", "-h"}, []string{cmd, "-cycles", "3", "-h"})
		}
		for _, args := range variants {
			code, out, errOut := xproc(args...)
			assert.Equal(t, 0, code, "%q", args)
			assert.Contains(t, out, "usage: xproc "+cmd, "%q", args)
			assert.Contains(t, out, "-", "%q: the flags are listed", args)
			assert.Empty(t, errOut, "%q", args)
		}
	}

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{nil, "usage: xproc <command>"},
		{[]string{"nosuch"}, `unknown command "nosuch"`},
		{[]string{"help", "nosuch"}, `unknown command "nosuch"`},
		{[]string{"ls", "-nosuch"}, "flag provided but not defined: -nosuch"},
		{[]string{"ls", "extra"}, `ls takes no arguments, got ["extra"]`},
		{[]string{"rm"}, "no segment named"},
		{[]string{"rm", "-stale", "-force"}, "-stale and -force exclude each other"},
		{[]string{"inspect"}, "inspect takes one segment name, got 0"},
		{[]string{"inspect", "a", "b"}, "inspect takes one segment name, got 2"},
		{[]string{"bench", "-runs", "2"}, "-runs 2: min, median and max need at least 3 runs"},
		{[]string{"demo", "-workers", "0"}, "-workers 0: want 1 to 65534"},
		{[]string{"demo", "-samples", "3", "-workers", "4"}, "-samples 3: want at least 4"},
	} {
		code, out, errOut := xproc(c.args...)
		assert.Equal(t, 2, code, "%q", c.args)
		assert.Empty(t, out, "%q", c.args)
		assert.Contains(t, errOut, c.msg, "%q", c.args)
		assert.Contains(t, errOut, "usage: xproc", "%q", c.args)
	}
}

// TestFlagsAfterNames: flags may follow the names; after "--" all are
// names.
func TestFlagsAfterNames(t *testing.T) {
	dir := t.TempDir()
	m, err := xsync.CreateMutex("after", shm.Dir(dir))
	require.NoError(t, err)
	defer m.Close()
	code, out, errOut := xproc("inspect", "after", "-dir", dir)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, filepath.Join(dir, "after"))
	code, out, errOut = xproc("inspect", "-dir", dir, "--", "after")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "unlocked")
	code, _, errOut = xproc("rm", "-dir", dir, "--", "-dir")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "invalid segment name: starts with '-'")
	code, _, errOut = xproc("rm", "after", "-dir", dir)
	require.Equal(t, 0, code, errOut)
}

// TestMissingDirectory: the directory is named, not the segment.
func TestMissingDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	code, _, errOut := xproc("ls", "-dir", missing)
	assert.Equal(t, 1, code)
	assert.Equal(t, "xproc: shm: list "+missing+": segment directory: no such file or directory\n", errOut)
	t.Setenv(shm.DirEnv, missing)
	code, _, errOut = xproc("inspect", "x")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "segment directory "+missing+" (from $XPROC_SHM_DIR): no such file or directory")
}

// TestRemoveStale: rm -stale never removes a segment whose creator runs,
// named or not; once the creator is dead, it does.
func TestRemoveStale(t *testing.T) {
	name := testproc.Name(t)
	c := testproc.Start(t, "cmd-create-live", name)
	c.Expect("created")
	mine := testproc.Name(t)
	v, err := value.Create[int64](mine, 0)
	require.NoError(t, err)
	defer v.Close()

	code, out, errOut := xproc("rm", "-stale", name)
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, fmt.Sprintf("%s is not stale (its creator, pid %d, is running); it was left alone", name, c.Pid()))
	code, out, errOut = xproc("rm", "-stale")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "nothing stale to remove\n", out)
	for _, n := range []string{name, mine} {
		_, err := shm.Stat(n)
		require.NoError(t, err, "%s is still there", n)
	}

	c.Kill() // dead, not yet reaped: a zombie
	code, out, errOut = xproc("rm", "-stale", mine, name)
	assert.Equal(t, 1, code, "mine is not stale")
	assert.Equal(t, "removed "+name+"\n", out)
	assert.Contains(t, errOut, mine+" is not stale (its creator, pid "+strconv.Itoa(os.Getpid())+", is running)")
	_, err = shm.Stat(name)
	assert.ErrorIs(t, err, shm.ErrNotExist)
	_, err = shm.Stat(mine)
	assert.NoError(t, err)
	c.WaitKilled()

	// rm without -stale removes the name of a segment in use, and says
	// who keeps its memory.
	code, out, errOut = xproc("rm", mine)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, fmt.Sprintf("removed %s (still mapped by process %d, which keeps it until it closes it; no process can open it any more)\n", mine, os.Getpid()), out)
}

// TestRemoveRefusesNonSegments: rm removes segments, damaged ones
// included, and leaves other files alone unless forced; never a
// directory.
func TestRemoveRefusesNonSegments(t *testing.T) {
	dir := t.TempDir()
	notes := filepath.Join(dir, "notes")
	require.NoError(t, os.WriteFile(notes, []byte("my notes"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "damaged"), []byte("XPROCSEG but damaged"), 0o600))

	code, out, errOut := xproc("rm", "-dir", dir, "notes")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "is not a segment; it was left alone (rm -force removes it anyway)")
	assert.FileExists(t, notes)

	code, out, errOut = xproc("rm", "-dir", dir, "damaged")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "removed damaged\n", out)

	code, out, errOut = xproc("rm", "-dir", dir, "-force", "notes", "sub")
	assert.Equal(t, 1, code)
	assert.Equal(t, "removed notes\n", out)
	assert.Contains(t, errOut, "is a directory")
	assert.NoFileExists(t, notes)
	assert.DirExists(t, filepath.Join(dir, "sub"))
}

// TestInspectLockHolder: inspect names the process holding a lock and
// says whether it still maps the segment and whether it runs: one that
// exec'd another program runs, but can never unlock.
func TestInspectLockHolder(t *testing.T) {
	for _, kind := range []string{"mutex", "rmutex", "value"} {
		t.Run(kind, func(t *testing.T) {
			name := testproc.Name(t)
			var closer interface{ Close() error }
			var err error
			switch kind {
			case "mutex":
				closer, err = xsync.CreateMutex(name)
			case "rmutex":
				closer, err = xsync.CreateReentrantMutex(name)
			case "value":
				closer, err = value.Create[int64](name, 0)
			}
			require.NoError(t, err)
			defer closer.Close()
			code, out, errOut := xproc("inspect", name)
			require.Equal(t, 0, code, errOut)
			assert.Regexp(t, `state +(lock )?unlocked\n`, out)

			c := testproc.Start(t, "cmd-lock-live", kind, name)
			c.Expect("locked")
			code, out, errOut = xproc("inspect", name)
			require.Equal(t, 0, code, errOut)
			assert.Contains(t, out, fmt.Sprintf("locked by pid %d (running)", c.Pid()))
			if kind == "rmutex" {
				assert.Contains(t, out, "2 times by one goroutine")
			}

			c.Send("exec")
			c.Expect("idle")
			code, out, errOut = xproc("inspect", name)
			require.Equal(t, 0, code, errOut)
			assert.Contains(t, out, fmt.Sprintf("locked by pid %d, which still runs but no longer maps the segment (it exec'd another program or closed the segment): the next locker takes the lock over", c.Pid()))
			assert.NotContains(t, out, "exited")

			c.Kill()
			code, out, errOut = xproc("inspect", name)
			require.Equal(t, 0, code, errOut)
			assert.Contains(t, out, fmt.Sprintf("locked by pid %d, which has exited: the next locker takes the lock over", c.Pid()))
			c.WaitKilled()
		})
	}
}

// TestForeignPids: pids of another PID namespace (a container sharing
// the segment directory) are marked as such, never shown as if they
// were this namespace's, and a creator there is not said to run.
func TestForeignPids(t *testing.T) {
	name := testproc.Name(t)
	creator := testproc.StartInPIDNamespace(t, "cmd-create-live", name)
	creator.Expect("created")
	holder := testproc.StartInPIDNamespace(t, "cmd-lock-live", "value", name)
	holder.Expect("locked")

	code, out, errOut := xproc("ls")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(name)+` +value +int64 +1 +\S+ +\d+ \(other PID namespace\) `, out)
	code, out, errOut = xproc("inspect", name)
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^creator +\d+ \(other PID namespace\)$`, out)
	assert.Regexp(t, `state +lock locked by pid \d+ of another PID namespace \(running\)\n`, out)
	code, _, errOut = xproc("rm", "-stale", name)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, name+" is not stale (processes ")
	assert.Contains(t, errOut, " have it mapped); it was left alone")

	holder.Send("exit") // exits holding the lock
	holder.Wait()
	code, out, errOut = xproc("inspect", name)
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `state +lock locked by pid \d+ of another PID namespace, which no longer maps the segment \(it exited, exec'd another program or closed the segment\): the next locker takes the lock over\n`, out)

	creator.Send("exit")
	creator.Wait()
	// Unmapped now, but its creator's fate cannot be told from here.
	code, _, errOut = xproc("rm", "-stale", name)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "may still run; rm -stale -foreign removes it")
	code, out, errOut = xproc("rm", "-stale")
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "nothing stale to remove (1 unused segments of creators of another PID namespace, which may still run: rm -stale -foreign removes them)")
	code, out, errOut = xproc("rm", "-stale", "-foreign", name)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "removed "+name+"\n", out)
	code, _, errOut = xproc("rm", "-foreign", name)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "-foreign goes with -stale")
}

// TestTypeNames: ls and inspect show the type names users write, and
// what the messages of a queue or a pipe are.
func TestTypeNames(t *testing.T) {
	dir := t.TempDir()
	cv, err := xsync.CreateCond("cv", shm.Dir(dir))
	require.NoError(t, err)
	defer cv.Close()
	b, err := xsync.CreateBarrier("bar", 3, 0, shm.Dir(dir))
	require.NoError(t, err)
	defer b.Close()

	q, err := queue.Create("q", queue.Options{}, shm.Dir(dir))
	require.NoError(t, err)
	defer q.Close()
	qp, err := queue.CreateOf[point]("qp", queue.Options{}, shm.Dir(dir))
	require.NoError(t, err)
	defer qp.Close()
	p, err := pipe.Create("p", pipe.Options{}, shm.Dir(dir))
	require.NoError(t, err)
	defer p.Close()

	code, out, errOut := xproc("ls", "-dir", dir)
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^cv +cond +xsync\.Mutex\+xsync\.Cond `, out)
	assert.Regexp(t, `(?m)^bar +barrier +xsync\.Barrier `, out)
	assert.NotRegexp(t, regexp.MustCompile(`condPair|[^x]sync\.`), out)
	assert.Regexp(t, `(?m)^q +queue +bytes `, out)
	assert.Regexp(t, `(?m)^p +pipe +bytes `, out)
	assert.Regexp(t, `(?m)^qp +queue +main\.point `, out)
	assert.NotContains(t, out, "uint8")
	for name, typ := range map[string]string{"q": "bytes\n", "p": "bytes\n", "qp": "main.point (16 bytes)\n"} {
		code, out, errOut = xproc("inspect", "-dir", dir, name)
		require.Equal(t, 0, code, errOut)
		assert.Regexp(t, `(?m)^type +`+regexp.QuoteMeta(typ), out, name)
	}

	code, out, errOut = xproc("inspect", "-dir", dir, "cv")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "0 waiting; mutex unlocked")
	code, out, errOut = xproc("inspect", "-dir", dir, "bar")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "3 parties, 0 waiting, broken false")
	in, err := shm.Stat("bar", shm.Dir(dir))
	require.NoError(t, err)
	assert.Equal(t, []int{os.Getpid()}, in.Attached, "inspect did not stay attached")
}

// point is the element of a queue.Of in TestTypeNames.
type point struct{ X, Y int64 }

// TestBenchTable: min, median, max, runs and spread for each row, a mark
// on rows that spread too much and on their ratios, and like compared
// with like.
func TestBenchTable(t *testing.T) {
	rows := []benchRow{
		{name: "steady", workload: "mutex", spin: true, ref: "ref", what: "a steady row"},
		{name: "ref", workload: "bare-mutex-spin", spin: true, what: "its reference"},
		{name: "wild", workload: "event-pingpong", spin: false, ref: "ref2", what: "a row that moved 80×"},
		{name: "ref2", workload: "futex-pingpong", spin: false, what: "its reference"},
	}
	figures := map[string][]float64{
		// The first figure of each is the uncounted first run.
		"steady": {999, 10, 11, 12, 10.5, 11.5},
		"ref":    {999, 5, 5.5, 5.25, 5.5, 5},
		"wild":   {999, 1, 80, 2, 3, 2.5},
		"ref2":   {999, 2, 2, 2, 2, 2},
	}
	calls := map[string]int{}
	var out bytes.Buffer
	var sizes []int
	err := runBench(&out, rows, 5, 10*time.Millisecond, 0.25, func(r benchRow, n int) (measurement, error) {
		v := figures[r.name][calls[r.name]]
		calls[r.name]++
		if r.name == "steady" {
			sizes = append(sizes, n)
		}
		return measurement{value: v, took: time.Duration(n) * time.Microsecond}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, []int{calibrationSize, 10000, 10000, 10000, 10000, 10000}, sizes, "runs sized by the first to take 10ms")
	s := out.String()
	assert.Regexp(t, `(?m)^steady +Mops/s +5 +10\.0 +11\.0 +12\.0 +18% +2\.10× faster than ref$`, s)
	assert.Regexp(t, `(?m)^wild +µs/round trip +5 +1\.00 +2\.50 +80\.0 +3160% ! +1\.25× slower than ref2 !$`, s)
	assert.Regexp(t, `(?m)^ref2 +µs/round trip +5 +2\.00 +2\.00 +2\.00 +0% +-$`, s)
	assert.Contains(t, s, "! marks a row whose runs spread over more than 25% of their median")
	assert.Contains(t, s, "a row that moved 80×")
}

// TestBenchAlternative: a row with a like reference and an alternative
// compares with each under its own name.
func TestBenchAlternative(t *testing.T) {
	rows := []benchRow{
		{name: "pp", workload: "pipe-pingpong", spin: true, ref: "spinpair", alt: "sock", what: "a row"},
		{name: "spinpair", workload: "futex-pingpong-spin", spin: true, what: "its reference"},
		{name: "sock", workload: "socket-pingpong", what: "the alternative"},
	}
	figures := map[string]float64{"pp": 0.5, "spinpair": 0.25, "sock": 10}
	var out bytes.Buffer
	err := runBench(&out, rows, 3, time.Millisecond, 0.25, func(r benchRow, n int) (measurement, error) {
		return measurement{value: figures[r.name], took: time.Millisecond}, nil
	})
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^pp .* 2\.00× slower than spinpair; 20\.00× faster than sock \(sleeps in the kernel\)$`, out.String())
}

// TestBenchBusyMachine: while another process keeps a CPU busy, the
// table says so and marks every ratio, steady or not.
func TestBenchBusyMachine(t *testing.T) {
	if _, _, ok := cpuTimes(); !ok {
		t.Skip("no /proc/stat or getrusage here: xproc bench cannot tell a busy machine")
	}
	hog := testproc.Start(t, "cmd-hog")
	hog.Expect("hogging")
	defer hog.Kill()
	rows := []benchRow{
		{name: "steady", workload: "mutex", spin: true, ref: "ref", what: "a steady row"},
		{name: "ref", workload: "bare-mutex-spin", spin: true, what: "its reference"},
	}
	var out bytes.Buffer
	err := runBench(&out, rows, 2, 10*time.Millisecond, 0.25, func(r benchRow, n int) (measurement, error) {
		time.Sleep(minLoadWall / 5) // the row's work: idle, while the hog runs
		return measurement{value: 10, took: 10 * time.Millisecond}, nil
	})
	require.NoError(t, err)
	s := out.String()
	assert.Regexp(t, `other processes used [0-9]+% of a CPU during the runs \([0-9]+ CPUs\) !`, s)
	assert.Regexp(t, `(?m)^steady .* 1\.00× faster than ref !$`, s)
	assert.Contains(t, s, "a steadily busy machine does not show in SPREAD")
}

// TestBenchRowsLikeWithLike: every row is compared with a reference that
// spins as it does and measures the same thing.
func TestBenchRowsLikeWithLike(t *testing.T) {
	byName := map[string]benchRow{}
	for _, r := range allRows() {
		byName[r.name] = r
	}
	for _, r := range allRows() {
		if r.ref == "" {
			continue
		}
		ref, ok := byName[r.ref]
		require.True(t, ok, "%s: no row %s", r.name, r.ref)
		assert.Equal(t, r.spin, ref.spin, "%s and %s: one spins, the other not", r.name, r.ref)
		assert.Equal(t, r.unit(), ref.unit(), "%s and %s", r.name, r.ref)
		assert.Empty(t, ref.ref, "a reference has no reference")
	}
	// The alternatives a user would pick instead sleep in the kernel;
	// the table says so rather than pass them off as like references.
	for _, r := range allRows() {
		if r.alt == "" {
			continue
		}
		alt, ok := byName[r.alt]
		require.True(t, ok, "%s: no row %s", r.name, r.alt)
		assert.False(t, alt.spin, "%s sleeps in the kernel", r.alt)
		assert.True(t, r.spin, "%s spins first, unlike %s", r.name, r.alt)
		assert.Equal(t, r.unit(), alt.unit(), "%s and %s", r.name, r.alt)
		assert.Empty(t, alt.ref+alt.alt, "an alternative has no reference")
	}
	for _, n := range []string{"queue-64B", "queue-64B-2p2c", "queue-4KiB", "pipe-pingpong"} {
		assert.True(t, byName[n].spin, "%s: the queue's and pipe's waiters spin first", n)
	}
	assert.False(t, byName["pipe-pingpong-asleep"].spin)
	for _, w := range []string{"event-pingpong", "mutex"} {
		var spins []bool
		for _, r := range benchRows {
			if r.workload == w {
				spins = append(spins, r.spin)
			}
		}
		assert.ElementsMatch(t, []bool{true, false}, spins, "%s is measured spinning and sleeping", w)
	}
}

// TestBenchSelect: named rows run with their references, and nothing
// else; an unknown row is a usage error.
func TestBenchSelect(t *testing.T) {
	rows, err := selectRows(allRows(), []string{"queue-64B", "barrier"})
	require.NoError(t, err)
	var names []string
	for _, r := range rows {
		names = append(names, r.name)
	}
	assert.Equal(t, []string{"barrier", "queue-64B", "socket-64B"}, names)
	code, _, errOut := xproc("bench", "no-such-row")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `no row "no-such-row"`)
	code, out, _ := xproc("bench", "-h")
	assert.Equal(t, 0, code)
	for _, r := range allRows() {
		assert.Regexp(t, `(?m)^  `+regexp.QuoteMeta(r.name)+` +`, out, "bench -h lists the rows")
	}
}

// TestBench runs every row for real, briefly, and checks the table.
func TestBench(t *testing.T) {
	code, out, errOut := xproc("bench", "-time", "2ms", "-runs", "3")
	require.Equal(t, 0, code, errOut)
	for _, r := range allRows() {
		assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(r.name)+` +`+regexp.QuoteMeta(r.unit())+` +3 `, out)
	}
	assert.Equal(t, 0, strings.Count(out, "xproc-bench-"), "no segment name leaks")
}
