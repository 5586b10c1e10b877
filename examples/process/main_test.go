package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
)

// TestMain runs the tests with segments in a directory of their own
// (inherited by the program under test), and fails the run if any is
// left there.
func TestMain(m *testing.M) { testproc.Main(m) }

// TestProgram builds the example and runs it: each lesson's output, the
// child's parent being the program, and no segment left behind.
func TestProgram(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "process")
	out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	cmd := exec.Command(exe)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	m := regexp.MustCompile(`^main line
  name: MainProcess
  parent process: (\d+)
  process id: (\d+)
function f
  name: greeter
  parent process: (\d+)
  process id: (\d+)
hello bob
greeter exitcode: 0
squares: \[0 1 4 9 16 25 36 49 64 81\]
sleeper alive: true
sleeper alive: false
sleeper exitcode: -15
$`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "%s", out)
	assert.Equal(t, os.Getpid(), atoi(t, m[1]), "the program's parent is this test")
	assert.Equal(t, cmd.Process.Pid, atoi(t, m[2]))
	assert.Equal(t, m[2], m[3], "the child's parent is the program")
	assert.NotEqual(t, m[2], m[4])

	segs, err := os.ReadDir(os.Getenv(shm.DirEnv))
	require.NoError(t, err)
	assert.Empty(t, segs, "the shared array is unlinked")
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
