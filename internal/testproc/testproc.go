// Package testproc runs test code in separate OS processes: the test
// binary re-executes itself with an environment variable naming a child
// role, as os/exec's helper-process tests do. Cross-process claims in
// xproc are proven with it; two mappings in one process prove nothing.
//
// It also gives every test run a private segment directory and fails the
// run if a test leaves a segment behind.
package testproc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/shm"
)

const (
	envRole = "XPROC_TEST_ROLE"
	envArgs = "XPROC_TEST_ARGS"
	// argSep separates arguments in envArgs; it cannot occur in them.
	argSep = "\x1f"
)

// Bound is the generous limit tests put on anything that should finish
// quickly: reaching it means a hang, not slowness.
const Bound = 2 * time.Minute

var roles = map[string]func(args []string) error{}

// Register makes fn runnable as role in a child process. Call it from an
// init function of a test file.
func Register(role string, fn func(args []string) error) {
	if _, dup := roles[role]; dup {
		panic("testproc: role registered twice: " + role)
	}
	roles[role] = fn
}

// Main is the body of TestMain. In a child it runs the role and exits: 0
// if the role returned nil, 1 otherwise. In the parent it runs the tests
// with XPROC_SHM_DIR set to a fresh directory (inherited by children), and
// fails the run if any segment is left in it. Directories that killed
// runs left behind are removed first (see makeDir).
func Main(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(runRole(role))
	}
	dir, err := makeDir(shm.DefaultDir())
	if err != nil {
		fmt.Fprintln(os.Stderr, "testproc:", err)
		os.Exit(2)
	}
	os.Setenv(shm.DirEnv, dir)
	// Under -race, a child would otherwise sleep a second at exit; every
	// child inherits this, those started by package process included.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	code := m.Run()
	ents, _ := os.ReadDir(dir)
	if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		fmt.Fprintf(os.Stderr, "testproc: tests left segments behind: %s\n", strings.Join(names, ", "))
		if code == 0 {
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func runRole(role string) int {
	fn := roles[role]
	if fn == nil {
		fmt.Fprintf(os.Stderr, "testproc: unknown role %q\n", role)
		return 3
	}
	var args []string
	if a := os.Getenv(envArgs); a != "" {
		args = strings.Split(a, argSep)
	}
	if err := fn(args); err != nil {
		fmt.Fprintf(os.Stderr, "testproc: role %s: %v\n", role, err)
		return 1
	}
	return 0
}

var nameSeq atomic.Int64
var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// Name returns a segment name unique to this test and removes the segment
// of that name, if any, when the test ends.
func Name(t testing.TB) string {
	base := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(base) > 150 {
		base = base[:150]
	}
	name := fmt.Sprintf("%s-%d", base, nameSeq.Add(1))
	t.Cleanup(func() {
		// Whatever a test left at the name goes, segment or not (tests
		// put other files there on purpose): not shm.Remove, which
		// refuses files that are not segments.
		path, err := shm.Path(name)
		if err == nil {
			err = os.Remove(path)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("removing segment %s: %v", name, err)
		}
	})
	return name
}

// Command returns the command that runs role in a child process with
// args, for code without a testing.TB (examples); tests use Start, which
// also kills the child when the test ends and reports its output.
func Command(role string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// GORACE, set by Main, keeps a child under -race from sleeping a
	// second at exit.
	cmd.Env = append(os.Environ(), envRole+"="+role, envArgs+"="+strings.Join(args, argSep))
	return cmd
}

// Child is a running child process.
type Child struct {
	t      testing.TB
	role   string
	cmd    *exec.Cmd
	lines  chan string
	eof    chan struct{} // stdout closed: the child has exited
	stderr bytes.Buffer
	mu     sync.Mutex // guards stdout and stderr
	stdout []string
	once   sync.Once
	err    error
	stdin  io.WriteCloser
}

// Start runs role in a child process with args. The child is killed, if
// still running, when the test ends.
func Start(t testing.TB, role string, args ...string) *Child {
	t.Helper()
	return StartCmd(t, role, nil, args...)
}

// StartCmd is Start with a hook to adjust the command (for ExtraFiles)
// before it starts.
func StartCmd(t testing.TB, role string, adjust func(*exec.Cmd), args ...string) *Child {
	t.Helper()
	for _, a := range args {
		if strings.Contains(a, argSep) {
			t.Fatalf("testproc: argument %q contains the separator", a)
		}
	}
	cmd := Command(role, args...)
	c := &Child{t: t, role: role, cmd: cmd, lines: make(chan string, 1024), eof: make(chan struct{})}
	cmd.Stderr = &syncWriter{mu: &c.mu, w: &c.stderr}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(cmd)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testproc: starting %s: %v", role, err)
	}
	go c.read(out)
	t.Cleanup(func() {
		cmd.Process.Kill()
		c.reap()
	})
	return c
}

func (c *Child) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		c.mu.Lock()
		c.stdout = append(c.stdout, sc.Text())
		c.mu.Unlock()
		select {
		case c.lines <- sc.Text():
		default:
		}
	}
	close(c.lines)
	close(c.eof)
}

// StartInPIDNamespace runs role in a child process in a PID namespace of
// its own, as a container's processes are: unshare(1) --pid --fork
// --mount-proc, so that the child sees its own pids in /proc, shares this
// process's file systems (/dev/shm among them), and dies when unshare is
// killed. It skips the test, saying why, where that cannot be done (not
// root, no unshare, no namespaces). Pid returns unshare's pid, not the
// child's, which is only meaningful inside its namespace.
func StartInPIDNamespace(t testing.TB, role string, args ...string) *Child {
	t.Helper()
	unshare := pidNamespaceTool(t)
	return StartCmd(t, role, func(cmd *exec.Cmd) {
		cmd.Args = append([]string{unshare, "--pid", "--fork", "--mount-proc", "--kill-child"}, cmd.Args...)
		cmd.Path = unshare
	}, args...)
}

// InnerPid returns, as this namespace numbers it, the pid of the child
// that a Child started with StartInPIDNamespace runs in its new
// namespace (Pid is unshare's): to kill it, leaving unshare to report it.
func (c *Child) InnerPid() int {
	c.t.Helper()
	p := strconv.Itoa(c.Pid())
	if b, err := os.ReadFile("/proc/" + p + "/task/" + p + "/children"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 1 {
			return Atoi(f[0])
		}
	}
	// Without /proc/PID/task/TID/children: look for the process whose
	// parent it is.
	ents, err := os.ReadDir("/proc")
	if err != nil {
		c.t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "PPid:" && f[1] == p {
				return Atoi(e.Name())
			}
		}
	}
	c.t.Fatalf("process %s has no child", p)
	return 0
}

var pidNS struct {
	once sync.Once
	path string
	why  string
}

// pidNamespaceTool returns the path of unshare after checking once that
// it can make a PID namespace here, or skips the test.
func pidNamespaceTool(t testing.TB) string {
	pidNS.once.Do(func() {
		path, err := exec.LookPath("unshare")
		if err != nil {
			pidNS.why = "unshare(1) is not installed"
			return
		}
		if os.Geteuid() != 0 {
			pidNS.why = "making a PID namespace needs root (CI runs as root)"
			return
		}
		if out, err := exec.Command(path, "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
			pidNS.why = fmt.Sprintf("unshare --pid cannot run here: %v: %s", err, bytes.TrimSpace(out))
			return
		}
		pidNS.path = path
	})
	if pidNS.path == "" {
		t.Skip("skipped: " + pidNS.why)
	}
	return pidNS.path
}

// StartTogether starts n children in role with args, waits until each
// has called Ready, and then lets them all go, so that their work
// overlaps; the parent's own work, started right after, overlaps it too.
func StartTogether(t testing.TB, n int, role string, args ...string) []*Child {
	t.Helper()
	children := make([]*Child, n)
	for i := range children {
		children[i] = Start(t, role, args...)
	}
	for _, c := range children {
		c.Expect("ready")
	}
	for _, c := range children {
		c.Send("go")
	}
	return children
}

// Ready is a child's half of StartTogether: it says it is ready and
// waits until the parent lets it go.
func Ready() error {
	Say("ready")
	return Await("go")
}

// Pid returns the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Expect waits until the child prints line on stdout (see Say) and fails
// the test if it exits first or Bound passes.
func (c *Child) Expect(line string) {
	c.t.Helper()
	c.expect(fmt.Sprintf("%q", line), func(l string) bool { return l == line })
}

// ExpectPrefix waits until the child prints a line starting with prefix
// and returns the rest of that line, failing the test as Expect does.
func (c *Child) ExpectPrefix(prefix string) string {
	c.t.Helper()
	l := c.expect(fmt.Sprintf("%q...", prefix), func(l string) bool { return strings.HasPrefix(l, prefix) })
	return strings.TrimPrefix(l, prefix)
}

// expect waits for a line that match accepts and returns it.
func (c *Child) expect(what string, match func(string) bool) string {
	c.t.Helper()
	timeout := time.NewTimer(Bound)
	defer timeout.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("testproc: %s exited before printing %s: %v\n%s", c.role, what, c.err, c.Output())
			}
			if match(l) {
				return l
			}
		case <-timeout.C:
			c.t.Fatalf("testproc: %s did not print %s within %v\n%s", c.role, what, Bound, c.Output())
		}
	}
}

// Wait waits for the child to exit and fails the test unless it exited 0.
func (c *Child) Wait() {
	c.t.Helper()
	if err := c.wait(); err != nil {
		c.t.Fatalf("testproc: %s: %v\n%s", c.role, err, c.Output())
	}
}

func (c *Child) wait() error {
	select {
	case <-c.eof:
	case <-time.After(Bound):
		c.cmd.Process.Kill()
		c.reap()
		return fmt.Errorf("still running after %v: killed", Bound)
	}
	c.reap()
	return c.err
}

// reap collects the exit status once stdout is drained.
func (c *Child) reap() {
	c.once.Do(func() {
		<-c.eof
		c.err = c.cmd.Wait()
	})
}

// Kill kills the child with SIGKILL and returns once it is dead. The
// parent does not reap it until Wait or the end of the test, so it stays a
// zombie: the hardest case for liveness checks, which must not mistake it
// for a live process.
func (c *Child) Kill() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatalf("testproc: killing %s: %v", c.role, err)
	}
	if err := waitExitedNoReap(c.Pid()); err != nil {
		c.t.Fatalf("testproc: waiting for %s to die: %v", c.role, err)
	}
}

// Stop kills the child with SIGKILL if it still runs, reaps it and
// returns its exit error (nil if it had exited with status 0). Unlike
// Kill it does not fail the test when the child has already exited: for
// harnesses that kill children at random.
func (c *Child) Stop() error {
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.reap()
	return c.err
}

// Wait for the child's exit status; Kill'ed children exit with SIGKILL.
func (c *Child) WaitKilled() {
	c.t.Helper()
	err := c.wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		c.t.Fatalf("testproc: %s: want death by SIGKILL, got %v\n%s", c.role, err, c.Output())
	}
}

// Output returns what the child printed so far.
func (c *Child) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return "stdout:\n" + strings.Join(c.stdout, "\n") + "\nstderr:\n" + c.stderr.String()
}

// Send writes line to the child's stdin, for the child's Await.
func (c *Child) Send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		c.t.Fatalf("testproc: sending %q to %s: %v", line, c.role, err)
	}
}

// Exit waits for the child to exit and returns its error (nil for exit
// status 0), for tests that expect a failure.
func (c *Child) Exit() error { return c.wait() }

// Say prints line on stdout for the parent's Expect. Children call it.
func Say(line string) { fmt.Println(line) }

var stdin = bufio.NewScanner(os.Stdin)

// Await blocks until the parent Sends line. Children call it. It returns
// an error if stdin closes first (the parent gave up).
func Await(line string) error {
	for stdin.Scan() {
		if stdin.Text() == line {
			return nil
		}
	}
	return fmt.Errorf("testproc: stdin closed while waiting for %q", line)
}

// SayProcess prints "what PID START" for the process pid, for the
// parent's ExpectProcess: its identity, which stays true after the
// process has exited and its pid has been reused.
func SayProcess(what string, pid int) error {
	start, err := owner.StartTime(pid)
	if err != nil {
		return err
	}
	Say(fmt.Sprintf("%s %d %d", what, pid, start))
	return nil
}

// ExpectProcess waits for a line from SayProcess and returns the identity
// it names.
func (c *Child) ExpectProcess(what string) owner.ID {
	c.t.Helper()
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(c.ExpectPrefix(what+" "), "%d %d", &pid, &start); err != nil {
		c.t.Fatalf("testproc: %s: %v", c.role, err)
	}
	return owner.Make(pid, start)
}

// AwaitExit waits until every process in ids has exited (or is a zombie),
// failing the test after Bound. It observes other processes' state; it
// does not synchronise with them.
func AwaitExit(t testing.TB, ids ...owner.ID) {
	t.Helper()
	deadline := time.Now().Add(Bound)
	for _, id := range ids {
		for owner.Alive(id) {
			if time.Now().After(deadline) {
				t.Fatalf("testproc: process %d still runs after %v", id.Pid(), Bound)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// File returns, in a child, the i-th of the files its parent handed it
// through StartCmd's exec.Cmd.ExtraFiles (file descriptor 3+i).
func File(i int) *os.File { return os.NewFile(uintptr(3+i), "inherited-"+strconv.Itoa(i)) }

// Exec replaces the calling child's program with this test binary running
// role with args, as execve(2) does: same pid, same start time, same
// stdin and stdout, but none of the old program's memory, mappings or
// close-on-exec files. It returns only if the exec fails.
func Exec(role string, args ...string) error {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envRole+"=") && !strings.HasPrefix(kv, envArgs+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, envRole+"="+role, envArgs+"="+strings.Join(args, argSep))
	return syscall.Exec(os.Args[0], []string{os.Args[0], "-test.run=^$"}, env)
}

// Next returns the next line the parent Sends. Children call it; it
// fails if stdin closes first.
func Next() (string, error) {
	if stdin.Scan() {
		return stdin.Text(), nil
	}
	return "", fmt.Errorf("testproc: stdin closed")
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Within runs f and fails the test unless it returns within d. Only for
// generous upper bounds (promptness), never for ordering.
func Within(t testing.TB, d time.Duration, what string, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	f()
	took := time.Since(start)
	if took > d {
		t.Fatalf("%s took %v (bound %v)", what, took, d)
	}
	return took
}

// Atoi parses a decimal integer passed to a child role, panicking on
// anything else (the parent wrote it).
func Atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}
