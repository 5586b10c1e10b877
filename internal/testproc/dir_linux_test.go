package testproc

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A run directory is swept when no process holds its lock (its run was
// killed), and kept while one does. The lock is taken here through
// another open file description, which flock treats as another holder,
// as it treats another process.
func TestSweepDead(t *testing.T) {
	parent := t.TempDir()
	live, err := makeDir(parent)
	require.NoError(t, err)
	defer runDir.Close()
	dead := filepath.Join(parent, "xproc-test-dead")
	require.NoError(t, os.Mkdir(dead, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dead, "segment"), []byte("left"), 0o600))
	other := filepath.Join(parent, "not-a-run")
	require.NoError(t, os.Mkdir(other, 0o700))

	assert.Equal(t, []string{dead}, sweepDead(parent))
	assert.DirExists(t, live, "its run holds the lock")
	assert.DirExists(t, other, "not a run directory")
	assert.NoDirExists(t, dead)

	held, err := os.Open(live)
	require.NoError(t, err)
	defer held.Close()
	require.NoError(t, unix.Flock(int(held.Fd()), unix.LOCK_SH))
	runDir.Close() // the run's own lock gone; another holder remains
	assert.Empty(t, sweepDead(parent))
	held.Close()
	assert.Equal(t, []string{live}, sweepDead(parent), "no holder left")
}
