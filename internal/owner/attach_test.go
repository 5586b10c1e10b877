//go:build linux

package owner_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/testproc"
)

func init() {
	// owner-attach FILE: attach to FILE, print this process's ID, then
	// on "close" close the file, on "exec" exec owner-wait.
	testproc.Register("owner-attach", func(args []string) error {
		f, err := os.OpenFile(args[0], os.O_RDWR, 0)
		if err != nil {
			return err
		}
		if err := owner.Attach(f); err != nil {
			return err
		}
		testproc.Say("attached " + strconv.FormatUint(uint64(owner.Self()), 10))
		for {
			cmd, err := testproc.Next()
			if err != nil {
				return err
			}
			switch cmd {
			case "close":
				f.Close()
				testproc.Say("closed")
			case "exec":
				return testproc.Exec("owner-wait")
			case "exit":
				return nil
			}
		}
	})
}

// attachedChild starts owner-attach on a fresh file and returns the child,
// its ID, and the file open in this process (without a lock of its own).
func attachedChild(t *testing.T) (*testproc.Child, owner.ID, *os.File) {
	path := filepath.Join(t.TempDir(), "seg")
	require.NoError(t, os.WriteFile(path, make([]byte, 4096), 0o600))
	c := testproc.Start(t, "owner-attach", path)
	line := c.ExpectPrefix("attached ")
	n, err := strconv.ParseUint(line, 10, 64)
	require.NoError(t, err)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return c, owner.ID(n), f
}

func attached(t *testing.T, f *os.File, id owner.ID) bool {
	t.Helper()
	ok, err := owner.Attached(f, id)
	require.NoError(t, err)
	return ok
}

func inUse(t *testing.T, f *os.File) bool {
	t.Helper()
	ok, err := owner.InUse(f)
	require.NoError(t, err)
	return ok
}

// TestAttachClose: a process is attached while its file is open, and not
// once it closes it, though it still runs.
func TestAttachClose(t *testing.T) {
	c, id, f := attachedChild(t)
	assert.Equal(t, c.Pid(), id.Pid())
	assert.True(t, attached(t, f, id))
	assert.True(t, inUse(t, f))
	assert.False(t, attached(t, f, owner.MakeTagged(id.Pid(), id.Tag(), uint64(id.Start())+1, id.Salt())), "same pid, other start time")
	assert.False(t, attached(t, f, owner.MakeTagged(id.Pid(), id.Tag(), uint64(id.Start()), id.Salt()+1)), "same process, another program image")
	assert.False(t, attached(t, f, owner.MakeTagged(id.Pid()+1, id.Tag(), uint64(id.Start()), id.Salt())))
	assert.False(t, attached(t, f, owner.Self()), "this process holds no lock")

	ok, err := owner.Exclude(f)
	require.NoError(t, err)
	assert.False(t, ok, "a sweeper cannot exclude a process that is attached")

	c.Send("close")
	c.Expect("closed")
	assert.False(t, attached(t, f, id))
	assert.False(t, inUse(t, f))
	assert.True(t, owner.Alive(id), "the process itself still runs")
	c.Send("exit")
	c.Wait()
}

// TestAttachKilled: a killed process is not attached, even as a zombie.
func TestAttachKilled(t *testing.T) {
	c, id, f := attachedChild(t)
	require.True(t, attached(t, f, id))
	c.Kill() // a zombie until reaped
	assert.False(t, attached(t, f, id))
	assert.False(t, inUse(t, f))
	c.WaitKilled()
}

// TestAttachExec: a process that execs another program loses its
// attachment (its file was close-on-exec), though pid and start time stay.
func TestAttachExec(t *testing.T) {
	c, id, f := attachedChild(t)
	require.True(t, attached(t, f, id))
	c.Send("exec")
	c.Expect("ready " + strconv.Itoa(id.Pid()))
	assert.True(t, owner.Alive(id), "same pid and start time after exec")
	assert.False(t, attached(t, f, id), "exec drops the attachment")
	c.Send("exit")
	c.Wait()
}

// TestExclude: while a sweeper excludes a file, an attach waits; when the
// sweeper lets go, it goes through.
func TestExclude(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	require.NoError(t, os.WriteFile(path, make([]byte, 4096), 0o600))
	sweeper, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	ok, err := owner.Exclude(sweeper)
	require.NoError(t, err)
	require.True(t, ok)

	c := testproc.Start(t, "owner-attach", path)
	// The kernel lists the child's attach as blocked on the sweeper's
	// lock ("->" in /proc/locks) once it waits.
	fi, err := sweeper.Stat()
	require.NoError(t, err)
	ino := strconv.FormatUint(fi.Sys().(*syscall.Stat_t).Ino, 10)
	deadline := time.Now().Add(testproc.Bound)
	for !blockedOn(t, ino) {
		require.True(t, time.Now().Before(deadline), "the child's attach never waited")
		time.Sleep(time.Millisecond)
	}
	probe, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer probe.Close()
	sweeper.Close()
	line := c.ExpectPrefix("attached ")
	n, err := strconv.ParseUint(line, 10, 64)
	require.NoError(t, err)
	assert.True(t, attached(t, probe, owner.ID(n)))
	c.Send("exit")
	c.Wait()
}

// blockedOn reports whether /proc/locks shows a lock request waiting on
// the file with inode ino.
func blockedOn(t *testing.T, ino string) bool {
	b, err := os.ReadFile("/proc/locks")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// "2: -> OFDLCK ADVISORY READ -1 00:1b:1234 ..."
		if len(f) >= 7 && f[1] == "->" && strings.HasSuffix(f[6], ":"+ino) {
			return true
		}
	}
	return false
}

// TestExitContext: the context of a watched process ends when it dies,
// and not when it execs.
func TestExitContext(t *testing.T) {
	c, id, _ := attachedChild(t)
	ctx, release, ok := owner.ExitContext(id)
	require.True(t, ok)
	defer release()
	select {
	case <-ctx.Done():
		t.Fatal("done while the process runs")
	default:
	}
	c.Send("exec")
	c.Expect("ready " + strconv.Itoa(id.Pid()))
	select {
	case <-ctx.Done():
		t.Fatal("done after an exec")
	default:
	}
	killed := time.Now()
	c.Kill()
	select {
	case <-ctx.Done():
		t.Logf("exit seen %v after the kill returned", time.Since(killed))
	case <-time.After(testproc.Bound):
		t.Fatal("exit not seen")
	}
	c.WaitKilled()

	// A process that is gone already: done at once.
	ctx2, release2, ok := owner.ExitContext(id)
	require.True(t, ok)
	defer release2()
	<-ctx2.Done()

	_, _, ok = owner.ExitContext(owner.Self())
	assert.False(t, ok, "this process")
	_, _, ok = owner.ExitContext(owner.MakeTagged(1, owner.SelfTag()+1, 1, 0))
	assert.False(t, ok, "another PID namespace")
}
