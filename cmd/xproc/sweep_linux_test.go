package main

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
)

// TestRemoveStalePrefix: after a container restart (a new PID
// namespace), rm -stale -foreign -prefix P removes what the previous run
// left under P, and neither a segment of P another namespace's process
// maps nor another namespace's unmapped segment of another prefix.
func TestRemoveStalePrefix(t *testing.T) {
	base := testproc.Name(t)
	prefix := base + "-app-"
	dead, live, other := prefix+"dead", prefix+"live", base+"-other"
	t.Cleanup(func() {
		for _, n := range []string{dead, live, other} {
			shm.Remove(n)
		}
	})
	prev := testproc.StartInPIDNamespace(t, "cmd-create-live", dead)
	prev.Expect("created")
	require.NoError(t, syscall.Kill(prev.InnerPid(), syscall.SIGKILL))
	assert.Error(t, prev.Exit(), "unshare exits once it has reaped its killed child")
	liveC := testproc.StartInPIDNamespace(t, "cmd-create-live", live)
	liveC.Expect("created")
	otherC := testproc.StartInPIDNamespace(t, "cmd-create-live", other)
	otherC.Expect("created")
	otherC.Send("exit")
	otherC.Wait()

	code, out, errOut := xproc("rm", "-stale", "-prefix", prefix)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "nothing stale to remove (1 unused segments of creators of another PID namespace, which may still run: rm -stale -foreign -prefix "+prefix+" removes them)\n", out)
	code, out, errOut = xproc("rm", "-stale", "-foreign", "-prefix", prefix)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "removed "+dead+"\n", out)
	for _, n := range []string{live, other} {
		_, err := shm.Stat(n)
		assert.NoError(t, err, "%s is kept", n)
	}
	code, out, errOut = xproc("rm", "-stale", "-foreign", "-prefix", prefix)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "nothing stale to remove\n", out, "the live one stays")

	for _, args := range [][]string{
		{"rm", "-prefix", prefix},
		{"rm", "-stale", "-prefix", prefix, live},
		{"rm", "-stale", "-prefix", ".x"},
		{"rm", "-stale", "-foreign", "-prefix", ""},
	} {
		code, _, errOut := xproc(args...)
		assert.Equal(t, 2, code, "%q", args)
		assert.Contains(t, errOut, "-prefix", "%q", args)
	}
	liveC.Send("exit")
	liveC.Wait()
}
