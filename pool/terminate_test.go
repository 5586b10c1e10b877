//go:build linux

package pool_test

import (
	"bytes"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/pool"
)

// children returns the child processes of this process, zombies among
// them, with their states (R, S, Z, ...), read from /proc.
func children(t *testing.T) map[int]string {
	t.Helper()
	me := os.Getpid()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	kids := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(string(f[1])); err == nil && ppid == me {
			kids[pid] = string(f[0])
		}
	}
	return kids
}

// residue is what a pool could leave behind: child processes (zombies
// included), files in the segment directory, and anonymous segments
// open or mapped in this process.
type residue struct {
	children map[int]string
	files    []string
	anon     int
}

func takeResidue(t *testing.T) residue {
	t.Helper()
	ents, err := os.ReadDir(os.Getenv("XPROC_SHM_DIR"))
	require.NoError(t, err)
	var files []string
	for _, e := range ents {
		files = append(files, e.Name())
	}
	return residue{children: children(t), files: files, anon: anonymousSegments(t)}
}

// assertNoResidue checks that nothing is left that was not there before:
// no child process, running or zombie, no file in the segment directory,
// no anonymous segment open or mapped.
func assertNoResidue(t *testing.T, before residue) {
	t.Helper()
	after := takeResidue(t)
	for pid, state := range after.children {
		if _, ok := before.children[pid]; !ok {
			t.Errorf("child process %d left behind, state %s", pid, state)
		}
	}
	assert.ElementsMatch(t, before.files, after.files, "files in the segment directory")
	assert.Equal(t, before.anon, after.anon, "anonymous segments still open or mapped")
}

// TestTerminateLeavesNothing: after Terminate, whether the pool is idle,
// running a Map, or running an Imap whose workers are being replaced, no
// worker is left, not even a zombie (every child of this process is
// looked at, not only the pids the pool reports), and no segment.
func TestTerminateLeavesNothing(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		ctx := bound(t)
		before := takeResidue(t)
		p := newPool(t, pool.Workers(2))
		require.NotEqual(t, before.anon, takeResidue(t).anon, "the pool's segments are seen")
		require.Len(t, children(t), len(before.children)+2, "the workers are seen")
		got, err := pool.Map(ctx, p, square, ints(10))
		require.NoError(t, err)
		assert.Equal(t, squares(10), got)
		require.NoError(t, p.Terminate())
		assertNoResidue(t, before)
		assert.Empty(t, p.Pids())
		require.NoError(t, p.Terminate(), "again")
	})

	t.Run("during Map", func(t *testing.T) {
		ctx := bound(t)
		name, v := counter(t)
		before := takeResidue(t)
		p := newPool(t, pool.Workers(2))
		fut := pool.MapAsync(ctx, p, stall, []string{name, name, name})
		awaitPid(t, ctx, v)
		require.NoError(t, p.Terminate())
		_, err := fut.Wait(ctx)
		assert.ErrorIs(t, err, pool.ErrClosed)
		assertNoResidue(t, before)
	})

	// Each worker is replaced after every call: Terminate comes while
	// workers exit and start.
	t.Run("during Imap with replacements", func(t *testing.T) {
		ctx := bound(t)
		before := takeResidue(t)
		p := newPool(t, pool.Workers(2), pool.ChunkSize(1), pool.MaxTasksPerChild(1))
		endless := func(yield func(int) bool) {
			for i := 0; yield(i); i++ {
			}
		}
		terminated := make(chan error, 1)
		n := 0
		var last error
		for y, err := range pool.Imap(ctx, p, square, endless) {
			if last != nil {
				t.Fatalf("yielded %d, %v after the error %v", y, err, last)
			}
			if err != nil {
				last = err
				continue
			}
			require.Equal(t, n*n, y)
			if n++; n == 30 {
				go func() { terminated <- p.Terminate() }()
			}
		}
		assert.ErrorIs(t, last, pool.ErrClosed)
		select {
		case err := <-terminated:
			require.NoError(t, err)
		case <-ctx.Done():
			t.Fatal("Terminate did not return")
		}
		assertNoResidue(t, before)
	})
}
