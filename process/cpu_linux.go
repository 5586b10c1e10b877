package process

import (
	"io/fs"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
)

// CPUCount returns the number of CPUs this process may use: the CPUs of
// its affinity mask (as Python's os.process_cpu_count and Go's
// runtime.NumCPU count them), lowered to its cgroup's CPU quota if it has
// one (a container limited to 1.5 CPUs counts 2), and at least 1. It is
// the default number of workers of a pool.
func CPUCount() int { return cpuCount(runtime.NumCPU(), os.DirFS("/")) }

// cpuCount is CPUCount for a process whose affinity mask holds numCPU
// CPUs, reading /proc/self/cgroup and the cgroup file systems from root
// (the file system's root directory, "/" but in tests).
func cpuCount(numCPU int, root fs.FS) int {
	n := numCPU
	if q := cgroupCPUs(root); q > 0 && q < n {
		n = q
	}
	return max(n, 1)
}

// cgroupCPUs returns the CPU quota of this process's cgroup and its
// ancestors, rounded up to whole CPUs, or 0 if none is set. Whatever
// cannot be read or parsed counts as no quota.
func cgroupCPUs(root fs.FS) int {
	b, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return 0
	}
	best := 0
	for _, line := range strings.Split(string(b), "\n") {
		// "0::/path" (v2), or "N:cpu,cpuacct:/path" (v1).
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var q int
		switch {
		case parts[0] == "0" && parts[1] == "":
			q = walkQuota(root, "sys/fs/cgroup", parts[2], quotaV2)
		case hasController(parts[1], "cpu"):
			q = walkQuota(root, "sys/fs/cgroup/"+parts[1], parts[2], quotaV1)
			if q == 0 {
				q = walkQuota(root, "sys/fs/cgroup/cpu", parts[2], quotaV1)
			}
		}
		if q > 0 && (best == 0 || q < best) {
			best = q
		}
	}
	return best
}

func hasController(list, c string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == c {
			return true
		}
	}
	return false
}

// walkQuota applies quota to the cgroup directory mount+cgroup of root
// and each of its ancestors up to mount, and returns the smallest quota
// found. The cgroup path cannot lead out of mount.
func walkQuota(root fs.FS, mount, cgroup string, quota func(root fs.FS, dir string) int) int {
	best := 0
	dir := path.Join(mount, path.Clean("/"+cgroup))
	for {
		if q := quota(root, dir); q > 0 && (best == 0 || q < best) {
			best = q
		}
		if dir == mount || !strings.HasPrefix(dir, mount) {
			return best
		}
		dir = path.Dir(dir)
	}
}

// quotaV2 reads cpu.max ("max 100000" or "150000 100000").
func quotaV2(root fs.FS, dir string) int {
	b, err := fs.ReadFile(root, path.Join(dir, "cpu.max"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	return ceilDiv(f[0], f[1])
}

// quotaV1 reads cpu.cfs_quota_us and cpu.cfs_period_us.
func quotaV1(root fs.FS, dir string) int {
	q, err1 := fs.ReadFile(root, path.Join(dir, "cpu.cfs_quota_us"))
	p, err2 := fs.ReadFile(root, path.Join(dir, "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return 0
	}
	return ceilDiv(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

// ceilDiv returns quota/period rounded up, or 0 if either is not a
// positive number ("max", "-1").
func ceilDiv(quota, period string) int {
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0
	}
	n := q / p
	if q%p != 0 {
		n++
	}
	return int(n)
}
