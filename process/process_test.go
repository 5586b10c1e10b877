//go:build linux

package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/process"
)

var (
	square = process.Register("test-square", func(ctx context.Context, x int) (int, error) { return x * x, nil })
	// viaJSON's argument and result go through JSON, which drops Hidden
	// both ways (gob would carry it).
	viaJSON = process.Register("test-json", func(ctx context.Context, x tagged) (tagged, error) {
		return tagged{A: x.A + x.Hidden, Hidden: 7, Note: x.Note + "!"}, nil
	}, process.Encoding(jsonCodec{}))
	fail = process.Register("test-fail", func(ctx context.Context, msg string) (int, error) { return 0, errors.New(msg) })
	boom = process.Register("test-panic", func(ctx context.Context, msg string) (int, error) { panic(msg) })
	// wait says it runs by writing 1 to file 0, then returns when its
	// context ends (Terminate), with its error; on its way out, a
	// deferred clean-up writes 2.
	wait = process.Register("test-wait", func(ctx context.Context, _ struct{}) (string, error) {
		defer process.File(0).Write([]byte{2})
		if _, err := process.File(0).Write([]byte{1}); err != nil {
			return "", err
		}
		<-ctx.Done()
		return "", ctx.Err()
	})
	// deaf says it runs by writing to file 0, then ignores its context:
	// only the end of the grace after Terminate, or Kill, ends it.
	deaf = process.Register("test-deaf", func(ctx context.Context, _ struct{}) (int, error) {
		if _, err := process.File(0).Write([]byte{1}); err != nil {
			return 0, err
		}
		select {}
	})
	env = process.Register("test-env", func(ctx context.Context, k string) (string, error) { return os.Getenv(k), nil })
	say = process.Register("test-say", func(ctx context.Context, s string) (int, error) { return fmt.Println(s) })
	// spawnSleep starts a program that outlives it, says so on file 0,
	// and waits to be killed.
	spawnSleep = process.Register("test-spawn-sleep", func(ctx context.Context, _ struct{}) (int, error) {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		if _, err := fmt.Fprintf(process.File(0), "%d\n", cmd.Process.Pid); err != nil {
			return 0, err
		}
		select {}
	})
	// sumPair takes a struct of unexported fields: fixed-size and
	// pointer-free, it travels as its bytes, to Start as to a pool.
	sumPair     = process.Register("test-sum-pair", func(ctx context.Context, p pair) (int, error) { return p.a + p.b, nil })
	sumPairJSON = process.Register("test-sum-pair-json", func(ctx context.Context, p pair) (int, error) { return p.a + p.b, nil },
		process.Encoding(jsonCodec{}))
	// hang ignores its context: only Kill ends it.
	hang = process.Register("test-hang", func(ctx context.Context, _ struct{}) (int, error) {
		select {}
	})
	whoami = process.Register("test-whoami", func(ctx context.Context, _ struct{}) (identity, error) {
		return identity{process.Current(), process.IsWorker()}, nil
	})
	// fill writes i*i into the n int64s of the anonymous array handed
	// over as file 0: lesson 003's shared array.
	fill = process.Register("test-fill", func(ctx context.Context, n int) (int, error) {
		a, err := array.OpenFile[int64](process.File(0), n)
		if err != nil {
			return 0, err
		}
		defer a.Close()
		for i := range n {
			a.Set(i, int64(i*i))
		}
		return n, nil
	})
	// badResult returns a value gob cannot encode, which no look at
	// the type can tell: an interface holding a type not registered
	// with gob.
	badResult = process.Register("test-bad-result", func(ctx context.Context, _ int) (any, error) { return unregistered{1}, nil })
)

func ctxBound(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testproc.Bound)
	t.Cleanup(cancel)
	return ctx
}

type tagged struct {
	A      int
	Hidden int    `json:"-"`
	Note   string // not fixed-size: the codec carries it, not raw bytes
}

// jsonCodec is a user's own codec.
type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// A function registered with Encoding gets its argument, and returns its
// result, through that codec.
func TestEncoding(t *testing.T) {
	ctx := ctxBound(t)
	p, err := process.Start(ctx, viaJSON, tagged{A: 1, Hidden: 100, Note: "hi"})
	require.NoError(t, err)
	got, err := p.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, tagged{A: 1, Note: "hi!"}, got, "Hidden dropped on the way out and back")
	// A fixed-size, pointer-free type goes as its bytes whatever the
	// codec: exactly, as JSON would not (it drops unexported fields).
	ps, err := process.Start(ctx, sumPairJSON, pair{2, 5})
	require.NoError(t, err)
	sum, err := ps.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 7, sum)
	assert.Equal(t, jsonCodec{}, viaJSON.Codec())
}

func TestStartWait(t *testing.T) {
	ctx := ctxBound(t)
	p, err := process.Start(ctx, square, 7)
	require.NoError(t, err)
	assert.NotEqual(t, os.Getpid(), p.Pid())
	assert.True(t, strings.HasPrefix(p.Name(), "Process-"), p.Name())
	got, err := p.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 49, got)
	assert.False(t, p.Alive())
	assert.Equal(t, 0, p.ExitCode())
	// Wait again: the same answer.
	got, err = p.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 49, got)
}

// identity is what a worker says of itself.
type identity struct {
	Info   process.Info
	Worker bool
}

func TestCurrent(t *testing.T) {
	ctx := ctxBound(t)
	me := process.Current()
	assert.Equal(t, "MainProcess", me.Name)
	assert.Equal(t, os.Getpid(), me.Pid)
	assert.False(t, process.IsWorker())

	p, err := process.Start(ctx, whoami, struct{}{}, process.Name("worker-7"))
	require.NoError(t, err)
	got, err := p.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, identity{process.Info{Name: "worker-7", Pid: p.Pid(), PPid: os.Getpid()}, true}, got)
}

func TestFuncErrors(t *testing.T) {
	ctx := ctxBound(t)
	p, err := process.Start(ctx, fail, "no luck")
	require.NoError(t, err)
	_, err = p.Wait(ctx)
	var fe *process.FuncError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, process.FuncError{Func: "test-fail", Pid: p.Pid(), Message: "no luck"}, *fe)
	assert.Equal(t, 1, p.ExitCode(), "a function's error fails the worker, as an exception fails a Python process")

	p, err = process.Start(ctx, boom, "kaboom")
	require.NoError(t, err)
	_, err = p.Wait(ctx)
	require.ErrorAs(t, err, &fe)
	assert.True(t, fe.Panic)
	assert.Equal(t, "kaboom", fe.Message)
	assert.Contains(t, fe.Stack, "process_test.go", "the worker's stack, where it panicked")
	assert.Contains(t, err.Error(), "panicked: kaboom")
	assert.Equal(t, 1, p.ExitCode())

	pb, err := process.Start(ctx, badResult, 1)
	require.NoError(t, err)
	_, err = pb.Wait(ctx)
	assert.ErrorIs(t, err, process.ErrCodec)

	ps, err := process.Start(ctx, sumPair, pair{2, 5})
	require.NoError(t, err)
	sum, err := ps.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 7, sum, "a struct of unexported numbers goes as its bytes")

	// Registered in this process only (a registration that depends on
	// the environment): the worker does not know it.
	pl, err := process.Start(ctx, parentOnly, 1)
	require.NoError(t, err)
	_, err = pl.Wait(ctx)
	assert.ErrorIs(t, err, process.ErrUnknownFunc)

	// Registered after Init: refused at once.
	assert.PanicsWithValue(t, "process: Register(test-late) after process.Init: register worker functions at package initialisation (a package-level var), so that a worker, which is this program started again, has them when Init runs", func() {
		process.Register("test-late", func(ctx context.Context, x int) (int, error) { return x, nil })
	})
}

type pair struct{ a, b int }

type unregistered struct{ N int }

// TestRegisterRefusesWhatGobRefuses: a function whose argument or result
// gob refuses outright (every call would fail) panics at Register, as a
// duplicate name does; what gob leaves out by design (unexported fields,
// exported func or chan fields) is not refused, nor are raw types, types
// that encode themselves and functions with a codec of their own.
func TestRegisterRefusesWhatGobRefuses(t *testing.T) {
	type private struct{ name string }
	_ = private{name: ""} // gob would see no field: the point
	type onlyFunc struct{ F func() }
	type withFunc struct {
		F    func()
		Name string
	}
	for _, c := range []struct {
		reg  func()
		want string
	}{
		{func() { process.Register("t-func", func(ctx context.Context, f func()) (int, error) { return 0, nil }) }, "the argument type func() cannot travel: gob cannot encode a func()"},
		{func() {
			process.Register("t-private", func(ctx context.Context, p private) (int, error) { return 0, nil })
		}, "process_test.private has no field gob sends"},
		{func() {
			process.Register("t-onlyfunc", func(ctx context.Context, x int) (onlyFunc, error) { return onlyFunc{}, nil })
		}, "the result type process_test.onlyFunc cannot travel"},
	} {
		assert.Contains(t, panicOf(c.reg), c.want)
	}
	// These pass the check and meet the next one: registering after Init.
	for _, reg := range []func(){
		func() { process.Register("t-pair", func(ctx context.Context, p pair) (pair, error) { return p, nil }) },
		func() {
			process.Register("t-withfunc", func(ctx context.Context, w withFunc) (int, error) { return 0, nil })
		},
		func() {
			process.Register("t-time", func(ctx context.Context, t time.Time) (struct{}, error) { return struct{}{}, nil })
		},
		func() {
			process.Register("t-json", func(ctx context.Context, p private) (int, error) { return 0, nil }, process.Encoding(jsonCodec{}))
		},
	} {
		assert.Contains(t, panicOf(reg), "after process.Init")
	}
}

// panicOf returns what f panicked with, as text ("" if it did not).
func panicOf(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// parentOnly is registered in the test process and not in its workers.
var parentOnly process.Func[int, int]

func init() {
	if !process.IsWorker() {
		parentOnly = process.Register("test-parent-only", func(ctx context.Context, x int) (int, error) { return x, nil })
	}
}

// startRunning starts f with a pipe as file 0 and returns once f has
// written its first byte there: the function runs. The pipe's read end
// is returned for what f writes next.
func startRunning[Out any](t *testing.T, ctx context.Context, f process.Func[struct{}, Out], opts ...process.Option) (*process.Process[Out], *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	p, err := process.Start(ctx, f, struct{}{}, append(opts, process.Files(w))...)
	w.Close()
	require.NoError(t, err)
	t.Cleanup(func() { p.Kill(); <-p.Done() })
	var b [1]byte
	_, err = io.ReadFull(r, b[:])
	require.NoError(t, err, "the function runs")
	require.Equal(t, byte(1), b[0])
	return p, r
}

// TestTerminateAndKill: Terminate is Python's terminate(), the worker
// dying of SIGTERM (exit code -15) once its function has cleaned up, or
// once the grace has passed if it ignores its context; Kill is kill()
// (-9).
func TestTerminateAndKill(t *testing.T) {
	ctx := ctxBound(t)
	sigterm := func(p interface{ Pid() int }, err error) {
		t.Helper()
		require.ErrorIs(t, err, process.ErrDied)
		var ee *process.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, process.ExitError{Pid: p.Pid(), Code: -1, Signal: syscall.SIGTERM}, *ee)
	}

	// A function that honours its context: its clean-up runs, and the
	// worker dies as soon as it returns. The grace is an hour here, so
	// that a worker waiting it out would hang the test.
	p, r := startRunning(t, ctx, wait, process.Env("XPROC_PROCESS_TERMINATE_GRACE=1h"))
	assert.True(t, p.Alive())
	assert.Equal(t, -1, p.ExitCode(), "while it runs")
	require.NoError(t, p.Terminate())
	var b [1]byte
	_, err := io.ReadFull(r, b[:])
	require.NoError(t, err)
	assert.Equal(t, byte(2), b[0], "the function's context was cancelled and its deferred clean-up ran")
	_, err = p.Wait(ctx)
	sigterm(p, err)
	assert.False(t, p.Alive())
	assert.Equal(t, -15, p.ExitCode(), "Python's exitcode after terminate()")
	assert.NoError(t, p.Terminate(), "terminating an exited process is not an error")
	assert.Equal(t, -15, p.ExitCode())

	// A function that ignores its context dies once the grace has
	// passed: not before (it had its chance to clean up), and well
	// before the test's bound.
	d, _ := startRunning(t, ctx, deaf)
	start := time.Now()
	require.NoError(t, d.Terminate())
	_, err = d.Wait(ctx)
	elapsed := time.Since(start)
	sigterm(d, err)
	assert.Equal(t, -15, d.ExitCode())
	assert.GreaterOrEqual(t, elapsed, process.TerminateGrace, "the function had the grace to return")
	assert.Less(t, elapsed, testproc.Bound/2, "the worker died of the grace's end, not of the test's bound")

	// Terminated before its function runs (still starting up, or just
	// started): it dies of the signal all the same.
	e, err := process.Start(ctx, hang, struct{}{})
	require.NoError(t, err)
	require.NoError(t, e.Terminate())
	_, err = e.Wait(ctx)
	require.ErrorIs(t, err, process.ErrDied)
	assert.Equal(t, -15, e.ExitCode())

	// Terminating a worker that has exited with its result changes
	// nothing.
	sq, err := process.Start(ctx, square, 4)
	require.NoError(t, err)
	_, err = sq.Wait(ctx)
	require.NoError(t, err)
	require.NoError(t, sq.Terminate())
	got, err := sq.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 16, got)
	assert.Equal(t, 0, sq.ExitCode())

	h, _ := startRunning(t, ctx, deaf)
	require.NoError(t, h.Kill())
	_, err = h.Wait(ctx)
	require.ErrorIs(t, err, process.ErrDied)
	var ee *process.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, process.ExitError{Pid: h.Pid(), Code: -1, Signal: syscall.SIGKILL}, *ee)
	assert.Equal(t, -9, h.ExitCode(), "Python's exitcode after kill()")
	assert.NoError(t, h.Kill(), "killing an exited process is not an error")

	// Start's context kills the worker when it ends.
	short, cancel := context.WithCancel(ctx)
	h, err = process.Start(short, hang, struct{}{})
	require.NoError(t, err)
	cancel()
	_, err = h.Wait(ctx)
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, syscall.SIGKILL, ee.Signal)

	// Wait gives up with its own context, leaving the worker alone.
	h, err = process.Start(ctx, hang, struct{}{})
	require.NoError(t, err)
	waitCtx, cancelWait := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancelWait()
	_, err = h.Wait(waitCtx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, h.Alive())
	h.Kill()
	h.Wait(ctx)
}

// TestKilledWorkerWithChild: a worker killed while a program it started
// still runs is reported dead at once; that program inherited none of the
// worker's pipes or files.
func TestKilledWorkerWithChild(t *testing.T) {
	ctx := ctxBound(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	p, err := process.Start(ctx, spawnSleep, struct{}{}, process.Files(w))
	w.Close()
	require.NoError(t, err)
	var pid int
	_, err = fmt.Fscanf(r, "%d\n", &pid)
	require.NoError(t, err)
	defer syscall.Kill(pid, syscall.SIGKILL)
	// The worker's argument, reply and lifeline (its fds 3, 4 and 5) and
	// the file handed over (6): what the grandchild must not have. Its
	// fds are told by what they are, not by number: while it starts, the
	// dynamic loader opens libraries at 3 and up, and descriptors this
	// test inherited without close-on-exec (from flock(1), say) reach
	// everyone.
	own := map[string]bool{}
	for fd := 3; fd <= 6; fd++ {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", p.Pid(), fd)); err == nil {
			own[target] = true
		}
	}
	require.NotEmpty(t, own)
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil {
			assert.False(t, own[target], "the grandchild inherited the worker's fd %s, %s", fd.Name(), target)
		}
	}

	require.NoError(t, p.Kill())
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = p.Wait(waitCtx)
	assert.ErrorIs(t, err, process.ErrDied)
}

// TestSharedArray is lesson 003: a process writes squares into a shared
// array that the parent then reads.
func TestSharedArray(t *testing.T) {
	ctx := ctxBound(t)
	a, err := array.CreateAnonymous[int64](10)
	require.NoError(t, err)
	defer a.Close()
	p, err := process.Start(ctx, fill, 10, process.Files(a.Segment().File()))
	require.NoError(t, err)
	n, err := p.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	assert.Equal(t, []int64{0, 1, 4, 9, 16, 25, 36, 49, 64, 81}, a.Slice())
}

func TestOptions(t *testing.T) {
	ctx := ctxBound(t)
	p, err := process.Start(ctx, env, "XPROC_TEST_VALUE", process.Env("XPROC_TEST_VALUE=42"))
	require.NoError(t, err)
	v, err := p.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, "42", v)

	p, err = process.Start(ctx, env, "GOMAXPROCS", process.GOMAXPROCS(1))
	require.NoError(t, err)
	v, err = p.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, "1", v)

	p, err = process.Start(ctx, env, "XPROC_PROCESS_FUNC")
	require.NoError(t, err)
	v, err = p.Wait(ctx)
	require.NoError(t, err)
	assert.Empty(t, v, "a worker's function does not see the worker's variables: programs it runs are not workers")

	var out strings.Builder
	p2, err := process.Start(ctx, say, "hello from a worker", process.Stdout(&out))
	require.NoError(t, err)
	_, err = p2.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, "hello from a worker\n", out.String())
}

func TestRegisterMisuse(t *testing.T) {
	assert.PanicsWithValue(t, "process: Register with an empty name", func() {
		process.Register("", func(ctx context.Context, x int) (int, error) { return x, nil })
	})
	assert.PanicsWithValue(t, "process: Register called twice for test-square", func() {
		process.Register("test-square", func(ctx context.Context, x int) (int, error) { return x, nil })
	})
	var zero process.Func[int, int]
	_, err := process.Start(context.Background(), zero, 1)
	assert.Error(t, err)
}

func TestCPUCount(t *testing.T) {
	n := process.CPUCount()
	assert.GreaterOrEqual(t, n, 1)
	assert.LessOrEqual(t, n, runtimeNumCPU())
}

func init() {
	// spawn-workers N: start N workers that wait forever, print each
	// one's pid and start time, and wait to be killed.
	testproc.Register("spawn-workers", func(args []string) error {
		n, _ := strconv.Atoi(args[0])
		for range n {
			p, err := process.Start(context.Background(), hang, struct{}{})
			if err != nil {
				return err
			}
			if err := testproc.SayProcess("worker", p.Pid()); err != nil {
				return err
			}
		}
		testproc.Say("started")
		return testproc.Await("never")
	})
}

// TestParentKilled: when the parent is killed with SIGKILL, every worker
// exits, though its function would run forever.
func TestParentKilled(t *testing.T) {
	parent := testproc.Start(t, "spawn-workers", "3")
	var ids []owner.ID
	for range 3 {
		ids = append(ids, parent.ExpectProcess("worker"))
	}
	parent.Expect("started")
	parent.Kill()
	parent.WaitKilled()
	testproc.AwaitExit(t, ids...)
}

// TestNoInit: a program that forgets process.Init. Its worker runs main
// again; whether it then starts a worker itself, blocks, or exits, the
// parent gets ErrNoInit in bounded time, and no worker starts another:
// the program runs exactly twice, itself and one worker. In "start" mode
// the workers' start-up bound is a minute, so that only Start's guard,
// not that bound, can stop the worker before it starts one of its own.
func TestNoInit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "noinit")
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/noinit").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, c := range []struct{ mode, initTimeout string }{
		{"start", "1m"},
		{"block", "300ms"},
		{"exit", "1m"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			runs := filepath.Join(t.TempDir(), "runs")
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(), "NOINIT_MODE="+c.mode, "NOINIT_INIT_TIMEOUT="+c.initTimeout, "NOINIT_RUNS="+runs)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, "%s\n%s", out, stderr.String())
			assert.Contains(t, string(out), "noinit=true", "%s\n%s", out, stderr.String())
			assert.Contains(t, string(out), "process.Init")
			n, err := os.ReadFile(runs)
			require.NoError(t, err)
			assert.Equal(t, "rr", string(n), "the program and one worker ran, no more\n%s\n%s", out, stderr.String())
		})
	}
}

func runtimeNumCPU() int { return runtime.NumCPU() }
