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
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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
// fails the run if any segment is left in it.
func Main(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(runRole(role))
	}
	dir, err := os.MkdirTemp(shm.DefaultDir(), "xproc-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testproc:", err)
		os.Exit(2)
	}
	os.Setenv(shm.DirEnv, dir)
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
		if err := shm.Remove(name); err != nil && !errors.Is(err, shm.ErrNotExist) {
			t.Errorf("removing segment %s: %v", name, err)
		}
	})
	return name
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
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+role, envArgs+"="+strings.Join(args, argSep),
		// Under -race, a child would otherwise sleep a second at exit.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
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

// Pid returns the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Expect waits until the child prints line on stdout (see Say) and fails
// the test if it exits first or Bound passes.
func (c *Child) Expect(line string) {
	c.t.Helper()
	timeout := time.NewTimer(Bound)
	defer timeout.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("testproc: %s exited before printing %q: %v\n%s", c.role, line, c.err, c.Output())
			}
			if l == line {
				return
			}
		case <-timeout.C:
			c.t.Fatalf("testproc: %s did not print %q within %v\n%s", c.role, line, Bound, c.Output())
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

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
