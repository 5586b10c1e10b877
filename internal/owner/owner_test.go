package owner_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }

func init() {
	testproc.Register("owner-wait", func(args []string) error {
		testproc.Say("ready " + strconv.Itoa(os.Getpid()))
		return testproc.Await("exit")
	})
}

// statLine builds a /proc/<pid>/stat line as Linux 6.x prints it (52
// fields), with the given command name, state and start time (field 22).
func statLine(pid int, comm string, state byte, start uint64) string {
	fields := []string{strconv.Itoa(pid), "(" + comm + ")", string(state)}
	for i := 4; i <= 52; i++ {
		switch i {
		case 22:
			fields = append(fields, strconv.FormatUint(start, 10))
		case 23:
			fields = append(fields, "3133440") // vsize, a big number
		default:
			fields = append(fields, strconv.Itoa(i*11))
		}
	}
	return strings.Join(fields, " ") + "\n"
}

func TestParseStat(t *testing.T) {
	// A real line, captured from cat(1).
	real := "32763 (cat) R 32760 32760 12756 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 384902 3133440 379 " +
		"18446744073709551615 94569918017536 94569918037417 140736648183728 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 " +
		"94569918053424 94569918055040 94570842025984 140736648190660 140736648190680 140736648190680 140736648191979 0\n"
	state, start, err := owner.ParseStat(real)
	require.NoError(t, err)
	assert.Equal(t, byte('R'), state)
	assert.Equal(t, uint64(384902), start)

	for _, c := range []struct {
		name  string
		comm  string
		state byte
		start uint64
	}{
		{"plain", "xproc", 'S', 12345},
		{"space", "my prog", 'S', 1},
		{"spaces around", " a b ", 'R', 2},
		{"open paren", "a(b", 'D', 3},
		{"close paren", "a)b", 'Z', 4},
		{"fake fields", "x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 999999 (", 'S', 5},
		{"parens", "(())", 'T', 6},
		{"empty", "", 'S', 7},
		{"digits", "123 456", 'I', 8},
		{"zombie", "kworker/0:1", 'Z', 9},
		{"dead", "gone", 'X', 10},
		{"max start", "big", 'S', 1<<64 - 1},
		{"zero start", "init", 'S', 0},
		{"newline in comm", "a\nb", 'S', 11},
		{"tab in comm", "a\tb", 'S', 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			state, start, err := owner.ParseStat(statLine(4242, c.comm, c.state, c.start))
			require.NoError(t, err)
			assert.Equal(t, c.state, state)
			assert.Equal(t, c.start, start)
		})
	}

	// Older kernels print fewer fields; 22 are enough.
	short := strings.Join(strings.Fields(statLine(1, "a", 'S', 77))[:22], " ")
	state, start, err = owner.ParseStat(short)
	require.NoError(t, err)
	assert.Equal(t, byte('S'), state)
	assert.Equal(t, uint64(77), start)
}

func TestParseStatGarbage(t *testing.T) {
	full := statLine(1, "a", 'S', 77)
	fields := strings.Fields(full)
	for name, line := range map[string]string{
		"empty":              "",
		"newline":            "\n",
		"no parens":          "1 a S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
		"only open paren":    "1 (a S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
		"nothing after comm": "1 (a)",
		"21 fields":          strings.Join(fields[:21], " "),
		"state too long":     strings.Replace(full, ") S ", ") SS ", 1),
		"start not a number": strings.Join(append(append(fields[:21:21], "x"), fields[22:]...), " "),
		"start negative":     strings.Join(append(append(fields[:21:21], "-5"), fields[22:]...), " "),
		"start overflows":    strings.Join(append(append(fields[:21:21], "18446744073709551616"), fields[22:]...), " "),
		"start float":        strings.Join(append(append(fields[:21:21], "1.5"), fields[22:]...), " "),
		"binary":             "\x00\xff\xfe)\x00",
		"paren last":         full + ")",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := owner.ParseStat(line)
			assert.Error(t, err, "%q", line)
		})
	}
}

func TestID(t *testing.T) {
	tag := owner.SelfTag()
	id := owner.Make(12345, 0x1_2345_beef)
	assert.Equal(t, 12345, id.Pid())
	assert.Equal(t, uint16(0xbeef), id.Start(), "the low 16 bits of the start time")
	assert.Zero(t, id.Salt())
	assert.Equal(t, tag, id.Tag())
	assert.True(t, id.Local())
	assert.Equal(t, "12345/48879.0", id.String())
	assert.Equal(t, uint64(0x0000beef_00003039)|uint64(tag)<<22, uint64(id))
	// Bits 30 and 31 are never set: lock words use them as flags.
	for _, pid := range []int{1, owner.PidMask, -1, 1<<31 | 5, 1<<30 | 7, 1<<22 | 9} {
		for _, tag := range []uint8{0, 1, 0x80, 0xff} {
			id := owner.MakeTagged(pid, tag, 0xffff_ffff, 0xffff)
			assert.Zero(t, uint64(id)&owner.FlagMask, "pid %d", pid)
			assert.Equal(t, pid&owner.PidMask, id.Pid())
			assert.Equal(t, tag, id.Tag())
			assert.Equal(t, uint16(0xffff), id.Start())
			assert.Equal(t, uint16(0xffff), id.Salt())
		}
	}
	assert.Equal(t, owner.ID(0), owner.MakeTagged(0, 0, 0, 0))

	other := owner.MakeTagged(7, tag+1, 99, 3)
	assert.False(t, other.Local())
	assert.Equal(t, fmt.Sprintf("7/99.3@%d", tag+1), other.String())
}

func TestParseNS(t *testing.T) {
	assert.Equal(t, uint64(4026531836), owner.ParseNS("pid:[4026531836]"))
	for _, bad := range []string{"", "pid:[]", "pid:[x]", "net:[4026531836]", "pid:[4026531836", "4026531836"} {
		assert.Zero(t, owner.ParseNS(bad), "%q", bad)
	}
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		t.Skip("no /proc/self/ns/pid:", err)
	}
	assert.Equal(t, owner.ParseNS(link), owner.PidNS())
	assert.NotZero(t, owner.PidNS())
	assert.Equal(t, owner.NSTag(owner.PidNS()), owner.SelfTag())
	// Namespace inodes handed out one after another get distinct tags.
	seen := map[uint8]bool{}
	for ino := uint64(4026531836); ino < 4026531836+256; ino++ {
		seen[owner.NSTag(ino)] = true
	}
	assert.Len(t, seen, 256)
}

// TestLockKey: distinct IDs have distinct liveness bytes, all in
// [LockBase, 2^63).
func TestLockKey(t *testing.T) {
	ids := []owner.ID{
		owner.MakeTagged(1, 0, 0, 0), owner.MakeTagged(1, 0, 1, 0), owner.MakeTagged(1, 1, 0, 0),
		owner.MakeTagged(owner.PidMask, 0xff, 0xffff, 0xffff), owner.MakeTagged(2, 0, 0, 0),
		owner.MakeTagged(1, 0, 0, 1), owner.MakeTagged(1, 0, 0, 1<<15), owner.MakeTagged(1, 0, 1<<15, 0),
		owner.MakeTagged(1<<21, 0, 0, 0),
	}
	seen := map[int64]owner.ID{}
	for _, id := range ids {
		k := owner.LockKey(id)
		assert.GreaterOrEqual(t, k, int64(0))
		assert.Less(t, k, int64(1)<<62, "key of %v", id)
		if prev, dup := seen[k]; dup {
			t.Errorf("%v and %v share key %d", prev, id, k)
		}
		seen[k] = id
	}
}

func TestSelf(t *testing.T) {
	self := owner.Self()
	assert.Equal(t, os.Getpid(), self.Pid())
	start, err := owner.StartTime(os.Getpid())
	require.NoError(t, err)
	assert.NotZero(t, start)
	assert.Equal(t, uint16(start), self.Start())

	b, err := os.ReadFile("/proc/self/stat")
	require.NoError(t, err)
	_, start2, err := owner.ParseStat(string(b))
	require.NoError(t, err)
	assert.Equal(t, start, start2)

	assert.True(t, owner.Alive(self))
	assert.True(t, owner.Alive(owner.Make(os.Getpid(), start)))
	assert.True(t, owner.Alive(owner.Make(os.Getpid(), 0)), "start 0: unknown start time, pid alone decides")
	assert.False(t, owner.Alive(owner.Make(os.Getpid(), start+1)), "same pid, other start time: a reused pid")
	other := owner.Self() ^ owner.ID(1)<<48
	assert.NotEqual(t, owner.Self(), other)
	assert.True(t, owner.Alive(other), "another image of this process: /proc cannot tell (the liveness lock can)")
	assert.Equal(t, self, owner.Self(), "computed once")

	_, err = owner.StartTime(-1)
	assert.Error(t, err)
}

// TestAliveForeign: an ID of another PID namespace is never called dead
// from /proc, whatever its pid is here.
func TestAliveForeign(t *testing.T) {
	foreign := owner.SelfTag() + 1
	assert.True(t, owner.Alive(owner.MakeTagged(owner.PidMask, foreign, 1, 0)), "no such pid here")
	assert.True(t, owner.Alive(owner.MakeTagged(os.Getpid(), foreign, uint64(owner.Self().Start())+1, 0)), "our pid, another start time")
	assert.False(t, owner.Alive(owner.MakeTagged(0, foreign, 1, 0)), "pid 0 names no process anywhere")
}

func TestAliveNoProcess(t *testing.T) {
	assert.False(t, owner.Alive(0))
	// Pid 0 names no process, whatever the epoch; kill(0, 0) would
	// succeed (it signals our process group), so this must not fall back
	// to asking the kernel.
	assert.False(t, owner.Alive(owner.Make(0, 1)))
	assert.False(t, owner.Alive(owner.Make(0, 0xffff)))
	assert.False(t, owner.Alive(owner.ID(1<<31)), "flag bits only")
	// Beyond any pid_max (2^22).
	assert.False(t, owner.Alive(owner.Make(owner.PidMask, 1)))
}

func TestAliveChild(t *testing.T) {
	c := testproc.Start(t, "owner-wait")
	c.Expect(fmt.Sprintf("ready %d", c.Pid()))
	pid := c.Pid()
	start, err := owner.StartTime(pid)
	require.NoError(t, err)
	id := owner.Make(pid, start)

	assert.True(t, owner.Alive(id))
	assert.True(t, owner.Alive(owner.Make(pid, 0)))
	assert.False(t, owner.Alive(owner.Make(pid, start+1)), "wrong start time")
	assert.False(t, owner.Alive(owner.Make(pid, start-1)), "wrong start time")

	// Killed but not reaped: a zombie, which still has a /proc entry.
	c.Kill()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	require.NoError(t, err, "a zombie keeps its /proc entry")
	state, _, err := owner.ParseStat(string(b))
	require.NoError(t, err)
	assert.Equal(t, byte('Z'), state)
	assert.False(t, owner.Alive(id), "a zombie is dead")
	assert.False(t, owner.Alive(owner.Make(pid, 0)), "a zombie is dead")

	// Reaped: the pid is gone.
	c.WaitKilled()
	_, err = owner.StartTime(pid)
	assert.Error(t, err)
	assert.False(t, owner.Alive(id))
}

func TestAliveChildExited(t *testing.T) {
	c := testproc.Start(t, "owner-wait")
	c.Expect(fmt.Sprintf("ready %d", c.Pid()))
	start, err := owner.StartTime(c.Pid())
	require.NoError(t, err)
	id := owner.Make(c.Pid(), start)
	require.True(t, owner.Alive(id))
	c.Send("exit")
	c.Wait()
	assert.False(t, owner.Alive(id))
}
