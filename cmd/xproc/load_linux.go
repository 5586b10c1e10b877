package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuClock is the kernel's unit of CPU time in /proc/stat (USER_HZ, 100
// on every Linux system Go supports).
const cpuClock = 100

// cpuTimes returns the CPU time the whole machine has spent busy (every
// CPU, every process, the kernel's own work and time stolen by a
// hypervisor included) and the CPU time this process and its reaped
// children have used. ok is false if either cannot be read.
func cpuTimes() (machine, ours time.Duration, ok bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, false
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, false
	}
	var busy int64
	for i, v := range fields[1:9] {
		if i == 3 || i == 4 {
			continue // idle, iowait
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		busy += n
	}
	var self, children syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children) != nil {
		return 0, 0, false
	}
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	ours = tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
	return time.Duration(busy) * time.Second / cpuClock, ours, true
}
