//go:build linux

package shm_test

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
)

// TestSweepPrefixAfterRestart: a container restarted gets a new PID
// namespace, so what its previous run left counts as another namespace's
// and a plain Sweep keeps it. Sweep with Prefix and Foreign removes it,
// and nothing else: not a segment of the prefix that a process of
// another namespace still maps, not another namespace's unmapped segment
// of another prefix, not one of the prefix whose creator here still
// runs.
func TestSweepPrefixAfterRestart(t *testing.T) {
	base := testproc.Name(t)
	prefix := base + "-app-"
	dead, live, other, mine := prefix+"dead", prefix+"live", base+"-other", prefix+"mine"
	t.Cleanup(func() {
		for _, n := range []string{dead, live, other, mine} {
			shm.Remove(n)
		}
	})

	// The previous run: killed in its namespace, leaving its segment.
	prev := testproc.StartInPIDNamespace(t, "shm-create-wait", dead)
	prev.Expect("created")
	require.NoError(t, syscall.Kill(prev.InnerPid(), syscall.SIGKILL))
	// unshare exits once it has reaped its child: the child is gone,
	// and so is its mapping.
	assert.Error(t, prev.Exit(), "unshare reports its child's death")

	// Another container, live, mapping a segment of the same prefix.
	liveC := testproc.StartInPIDNamespace(t, "shm-create-wait", live)
	liveC.Expect("created")
	// Another container's segment, unmapped, of another prefix.
	otherC := testproc.StartInPIDNamespace(t, "shm-create-wait", other)
	otherC.Expect("created")
	otherC.Send("exit")
	otherC.Wait()
	// This namespace's segment of the prefix, closed by its creator,
	// which still runs.
	seg, err := shm.Create(mine, int64s(t, 1))
	require.NoError(t, err)
	require.NoError(t, seg.Close())

	info, err := shm.Stat(dead)
	require.NoError(t, err)
	assert.True(t, info.CreatorForeign, "the previous run's namespace is not this one")
	assert.False(t, info.InUse)
	assert.False(t, info.Stale(), "so a plain sweep keeps it")

	removed, err := shm.Sweep(shm.Prefix(prefix))
	require.NoError(t, err)
	assert.Empty(t, removed, "without Foreign, the previous run's leftover is kept")

	removed, err = shm.Sweep(shm.Prefix(prefix), shm.Foreign())
	require.NoError(t, err)
	assert.Equal(t, []string{dead}, removed)
	_, err = shm.Stat(dead)
	assert.ErrorIs(t, err, shm.ErrNotExist)

	info, err = shm.Stat(live)
	require.NoError(t, err, "a segment another namespace's process maps is kept")
	assert.True(t, info.InUse)
	_, err = shm.Stat(other)
	require.NoError(t, err, "another prefix is kept")
	_, err = shm.Stat(mine)
	require.NoError(t, err, "a live creator's segment is kept")

	gone, err := shm.RemoveStale(live, shm.Prefix(prefix), shm.Foreign())
	require.NoError(t, err)
	assert.False(t, gone, "mapped")
	gone, err = shm.RemoveStale(other, shm.Prefix(prefix), shm.Foreign())
	require.NoError(t, err)
	assert.False(t, gone, "not of the prefix, though unused")
	infos, err := shm.List(shm.Prefix(prefix))
	require.NoError(t, err)
	var names []string
	for _, in := range infos {
		names = append(names, in.Name)
	}
	assert.Equal(t, []string{live, mine}, names)

	// Once the other container's process is gone, its segment goes too.
	liveC.Send("exit")
	liveC.Wait()
	removed, err = shm.Sweep(shm.Prefix(prefix), shm.Foreign())
	require.NoError(t, err)
	assert.Equal(t, []string{live}, removed)
}

// TestPrefixInvalid: a prefix no name could start with is an error, not
// an empty sweep.
func TestPrefixInvalid(t *testing.T) {
	for _, p := range []string{"", ".hidden", "-x", "a/b", "é"} {
		_, err := shm.Sweep(shm.Prefix(p))
		assert.ErrorIs(t, err, shm.ErrInvalidName, "%q", p)
		_, err = shm.List(shm.Prefix(p))
		assert.ErrorIs(t, err, shm.ErrInvalidName, "%q", p)
		_, err = shm.RemoveStale("x", shm.Prefix(p))
		assert.ErrorIs(t, err, shm.ErrInvalidName, "%q", p)
	}
}
