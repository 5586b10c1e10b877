package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
)

// childOf returns the pid (in this namespace) of the one child of the
// process pid: the process unshare(1) runs in its new PID namespace.
func childOf(t *testing.T, pid int) int {
	t.Helper()
	p := strconv.Itoa(pid)
	if b, err := os.ReadFile(filepath.Join("/proc", p, "task", p, "children")); err == nil {
		if f := strings.Fields(string(b)); len(f) == 1 {
			return testproc.Atoi(f[0])
		}
	}
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "PPid:" && f[1] == p {
				return testproc.Atoi(e.Name())
			}
		}
	}
	t.Fatalf("process %d has no child", pid)
	return 0
}

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
	require.NoError(t, syscall.Kill(childOf(t, prev.Pid()), syscall.SIGKILL))
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
	} {
		code, _, errOut := xproc(args...)
		assert.Equal(t, 2, code, "%q", args)
		assert.Contains(t, errOut, "-prefix", "%q", args)
	}
	liveC.Send("exit")
	liveC.Wait()
}
