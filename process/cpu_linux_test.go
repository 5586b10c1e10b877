package process

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dirMark as a file's content in a fake tree makes a directory where the
// file is expected: a file that exists and cannot be read, even by root.
const dirMark = "<dir>"

// fakeRoot writes files (path from the root: content) into a temporary
// directory and returns it as a file system.
func fakeRoot(t *testing.T, files map[string]string) fs.FS {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if content == dirMark {
			require.NoError(t, os.MkdirAll(p, 0o755))
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return os.DirFS(root)
}

// deniedFS fails to read the files named in denied, as a file without
// read permission does (to processes without CAP_DAC_OVERRIDE).
type deniedFS struct {
	fs.FS
	denied map[string]bool
}

func (d deniedFS) Open(name string) (fs.File, error) {
	if d.denied[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return d.FS.Open(name)
}

const (
	v2Root = "sys/fs/cgroup/"
	selfCg = "proc/self/cgroup"
)

func TestCPUCountCgroups(t *testing.T) {
	const numCPU = 8
	for _, tc := range []struct {
		name   string
		files  map[string]string
		numCPU int // numCPU if 0
		want   int
	}{
		{name: "no /proc/self/cgroup", files: map[string]string{v2Root + "cpu.max": "100000 100000"}, want: 8},
		{name: "v2 no cgroup files", files: map[string]string{selfCg: "0::/\n"}, want: 8},
		{name: "v2 max", files: map[string]string{selfCg: "0::/\n", v2Root + "cpu.max": "max 100000\n"}, want: 8},
		{name: "v2 1.5 CPUs round up", files: map[string]string{selfCg: "0::/\n", v2Root + "cpu.max": "150000 100000\n"}, want: 2},
		{name: "v2 half a CPU", files: map[string]string{selfCg: "0::/\n", v2Root + "cpu.max": "50000 100000\n"}, want: 1},
		{name: "v2 exactly 3", files: map[string]string{selfCg: "0::/\n", v2Root + "cpu.max": "300000 100000\n"}, want: 3},
		{name: "v2 just over 3", files: map[string]string{selfCg: "0::/\n", v2Root + "cpu.max": "300001 100000\n"}, want: 4},
		{name: "v2 other period", files: map[string]string{selfCg: "0::/\n", v2Root + "cpu.max": "125000 50000\n"}, want: 3},
		{name: "v2 quota above the affinity", files: map[string]string{selfCg: "0::/\n", v2Root + "cpu.max": "1600000 100000\n"}, want: 8},
		{name: "v2 quota above few CPUs", numCPU: 2, files: map[string]string{selfCg: "0::/\n", v2Root + "cpu.max": "300000 100000\n"}, want: 2},
		{name: "v2 nested, ancestor's quota", files: map[string]string{
			selfCg:                       "0::/a/b/c\n",
			v2Root + "a/cpu.max":         "300000 100000\n",
			v2Root + "a/b/cpu.max":       "max 100000\n",
			v2Root + "a/b/c/cpu.max":     "500000 100000\n",
			v2Root + "a/sibling/cpu.max": "100000 100000\n",
		}, want: 3},
		{name: "v2 nested, own quota", files: map[string]string{
			selfCg:                   "0::/a/b/c\n",
			v2Root + "a/cpu.max":     "400000 100000\n",
			v2Root + "a/b/c/cpu.max": "150000 100000\n",
		}, want: 2},
		{name: "v2 nested, only a sibling limited", files: map[string]string{
			selfCg:                   "0::/a/b\n",
			v2Root + "a/x/cpu.max":   "100000 100000\n",
			v2Root + "a/b/x/cpu.max": "100000 100000\n",
		}, want: 8},
		{name: "v2 path cannot leave the mount", files: map[string]string{
			selfCg:             "0::/../../..\n",
			"sys/fs/cpu.max":   "100000 100000\n",
			"cpu.max":          "100000 100000\n",
			"sys/cpu.max":      "100000 100000\n",
			"sys/fs/x/cpu.max": "100000 100000\n",
		}, want: 8},
		{name: "v1 quota -1", files: map[string]string{
			selfCg: "4:cpu,cpuacct:/docker/x\n",
			"sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_quota_us":  "-1\n",
			"sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n",
		}, want: 8},
		{name: "v1 quota set", files: map[string]string{
			selfCg: "4:cpu,cpuacct:/docker/x\n",
			"sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_quota_us":  "250000\n",
			"sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n",
		}, want: 3},
		{name: "v1 ancestor's quota", files: map[string]string{
			selfCg:                                   "4:cpu:/a/b\n",
			"sys/fs/cgroup/cpu/a/b/cpu.cfs_quota_us": "-1\n",
			"sys/fs/cgroup/cpu/a/b/cpu.cfs_period_us": "100000\n",
			"sys/fs/cgroup/cpu/a/cpu.cfs_quota_us":    "150000\n",
			"sys/fs/cgroup/cpu/a/cpu.cfs_period_us":   "100000\n",
		}, want: 2},
		{name: "v1 mounted as cpu", files: map[string]string{
			selfCg:                                  "2:cpuacct,cpu:/g\n",
			"sys/fs/cgroup/cpu/g/cpu.cfs_quota_us":  "50000\n",
			"sys/fs/cgroup/cpu/g/cpu.cfs_period_us": "100000\n",
		}, want: 1},
		{name: "v1 cpuacct is not cpu", files: map[string]string{
			selfCg: "2:cpuacct:/g\n",
			"sys/fs/cgroup/cpuacct/g/cpu.cfs_quota_us":  "100000\n",
			"sys/fs/cgroup/cpuacct/g/cpu.cfs_period_us": "100000\n",
		}, want: 8},
		{name: "v1 quota without period", files: map[string]string{
			selfCg:                                "4:cpu:/\n",
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "100000\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us": dirMark,
		}, want: 8},
		{name: "hybrid, the smaller wins", files: map[string]string{
			selfCg:                                  "5:cpu:/\n0::/\n",
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":    "300000\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us":   "100000\n",
			v2Root + "cpu.max":                      "200000 100000\n",
			"sys/fs/cgroup/unified/cpu.max":         "100000 100000\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.max":     "100000 100000\n",
			"sys/fs/cgroup/cpu/cpu.max":             "100000 100000\n",
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us.xx": "100000\n",
		}, want: 2},
		{name: "hybrid, the smaller wins, v2 first", files: map[string]string{
			selfCg:                                "0::/\n5:cpu:/\n",
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "300000\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
			v2Root + "cpu.max":                    "200000 100000\n",
		}, want: 2},
		{name: "no CPUs counts 1", numCPU: -1, files: map[string]string{selfCg: "0::/\n", v2Root + "cpu.max": "300000 100000\n"}, want: 1},
		{name: "no CPUs, no cgroup", numCPU: -1, files: map[string]string{}, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := numCPU
			if tc.numCPU > 0 {
				n = tc.numCPU
			} else if tc.numCPU < 0 {
				n = 0
			}
			assert.Equal(t, tc.want, cpuCount(n, fakeRoot(t, tc.files)))
		})
	}
}

// Malformed or unreadable files count as no quota: CPUCount falls back
// to the affinity, or to the quota it could read.
func TestCPUCountBadFiles(t *testing.T) {
	const numCPU = 8
	for _, content := range []string{
		"", "\n", "garbage", "150000", "150000 100000 100000", "max", "max max",
		"abc 100000", "150000 abc", "1.5 1", "100000 0", "100000 -100000",
		"-100000 100000", "0 100000", "0x10000 100000",
		"99999999999999999999 100000", "150000 99999999999999999999",
		"\x00\xff", dirMark,
	} {
		t.Run("cpu.max="+content, func(t *testing.T) {
			root := fakeRoot(t, map[string]string{selfCg: "0::/a\n", v2Root + "a/cpu.max": content})
			assert.Equal(t, numCPU, cpuCount(numCPU, root))
			// An ancestor's readable quota still counts.
			root = fakeRoot(t, map[string]string{selfCg: "0::/a\n", v2Root + "a/cpu.max": content, v2Root + "cpu.max": "150000 100000"})
			assert.Equal(t, 2, cpuCount(numCPU, root))
		})
	}
	for _, content := range []string{
		"", "garbage", "max", "-1", "0", "1.5", "150000 100000", "0x10000",
		"99999999999999999999", "\x00\xff", dirMark,
	} {
		t.Run("cfs_quota_us="+content, func(t *testing.T) {
			root := fakeRoot(t, map[string]string{
				selfCg:                                  "3:cpu:/a\n",
				"sys/fs/cgroup/cpu/a/cpu.cfs_quota_us":  content,
				"sys/fs/cgroup/cpu/a/cpu.cfs_period_us": "100000",
			})
			assert.Equal(t, numCPU, cpuCount(numCPU, root))
		})
		t.Run("cfs_period_us="+content, func(t *testing.T) {
			root := fakeRoot(t, map[string]string{
				selfCg:                                  "3:cpu:/a\n",
				"sys/fs/cgroup/cpu/a/cpu.cfs_quota_us":  "100000",
				"sys/fs/cgroup/cpu/a/cpu.cfs_period_us": content,
			})
			assert.Equal(t, numCPU, cpuCount(numCPU, root))
		})
	}
	for _, content := range []string{
		"", "garbage", "::", "0:", "0::", ":::::", "x:cpu", "1:cpu", "0:cpu:/\n0:memory", "\x00\xff:\xfe:/\xfd",
		dirMark,
	} {
		t.Run("cgroup="+content, func(t *testing.T) {
			root := fakeRoot(t, map[string]string{selfCg: content, v2Root + "cpu.max": "max 100000", "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1"})
			assert.Equal(t, numCPU, cpuCount(numCPU, root))
		})
	}
	t.Run("permission denied", func(t *testing.T) {
		files := map[string]string{
			selfCg:                 "0::/a/b\n",
			v2Root + "a/b/cpu.max": "100000 100000\n",
			v2Root + "a/cpu.max":   "300000 100000\n",
		}
		root := fakeRoot(t, files)
		assert.Equal(t, 1, cpuCount(numCPU, root))
		assert.Equal(t, 3, cpuCount(numCPU, deniedFS{root, map[string]bool{v2Root + "a/b/cpu.max": true}}))
		assert.Equal(t, numCPU, cpuCount(numCPU, deniedFS{root, map[string]bool{selfCg: true}}))
	})
}

// FuzzCPUCount: whatever the files say, the count is between 1 and the
// affinity's.
func FuzzCPUCount(f *testing.F) {
	f.Add("0::/a/b\n", "150000 100000", "250000", "100000")
	f.Add("4:cpu,cpuacct:/a/b\n0::/a\n", "max 100000", "-1", "100000")
	f.Add("0::/../a/./b//\n", "9223372036854775807 1", "9223372036854775807", "1")
	f.Add("3:cpu:/a\n", "1 9223372036854775807", "1", "0")
	f.Fuzz(func(t *testing.T, cgroup, cpuMax, quota, period string) {
		root := fstest.MapFS{selfCg: {Data: []byte(cgroup)}}
		for _, dir := range []string{"", "/a", "/a/b"} {
			root["sys/fs/cgroup"+dir+"/cpu.max"] = &fstest.MapFile{Data: []byte(cpuMax)}
			for _, v1 := range []string{"cpu", "cpu,cpuacct"} {
				root["sys/fs/cgroup/"+v1+dir+"/cpu.cfs_quota_us"] = &fstest.MapFile{Data: []byte(quota)}
				root["sys/fs/cgroup/"+v1+dir+"/cpu.cfs_period_us"] = &fstest.MapFile{Data: []byte(period)}
			}
		}
		for _, numCPU := range []int{0, 1, 3, 64} {
			n := cpuCount(numCPU, root)
			if n < 1 || n > max(numCPU, 1) {
				t.Fatalf("cpuCount(%d) = %d", numCPU, n)
			}
		}
	})
}
