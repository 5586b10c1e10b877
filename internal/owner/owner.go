// Package owner identifies processes by pid and start time, so that a pid
// reused by the kernel is never mistaken for the process that once held it.
//
// An ID packs the pid into the low 32 bits and the low 32 bits of the
// process start time (clock ticks since boot, field 22 of /proc/<pid>/stat)
// into the high 32 bits. Lock words store an ID, so that a waiter can ask
// whether the holder is still the same, living process.
package owner

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// ID is a process identity: pid in bits 0..29, start-time epoch in bits
// 32..63. Bits 30 and 31 are always zero, so lock words may use them as
// flags. The zero ID names no process.
type ID uint64

// PidMask selects the pid bits of an ID. Linux pids never exceed 2^22.
const PidMask = 1<<30 - 1

// Make returns the ID of pid with the given start-time epoch.
func Make(pid int, epoch uint32) ID {
	return ID(uint64(pid)&PidMask | uint64(epoch)<<32)
}

// Pid returns the process id.
func (id ID) Pid() int { return int(uint64(id) & PidMask) }

// Epoch returns the low 32 bits of the process start time, or 0 if unknown.
func (id ID) Epoch() uint32 { return uint32(uint64(id) >> 32) }

// String formats id as pid/epoch.
func (id ID) String() string {
	return strconv.Itoa(id.Pid()) + "/" + strconv.FormatUint(uint64(id.Epoch()), 10)
}

var self = lookupSelf()

// Self returns the identity of the calling process. It is computed once at
// start-up, so reading it costs a load.
func Self() ID { return self }

func lookupSelf() ID {
	pid := os.Getpid()
	_, start, err := stat(pid)
	if err != nil {
		return Make(pid, 0)
	}
	return Make(pid, uint32(start))
}

// StartTime returns the start time of pid in clock ticks since boot.
func StartTime(pid int) (uint64, error) {
	_, start, err := stat(pid)
	return start, err
}

// Alive reports whether the process named by id is still running. An ID
// whose pid bits are 0 (the zero ID included) names no process. A
// process is dead if its pid no longer exists, if it is a zombie (killed or
// exited but not yet reaped by its parent), or if the pid now belongs to a
// process with a different start time. When /proc cannot tell (for example
// when it is mounted with hidepid), Alive falls back to asking the kernel
// whether the pid exists, and errs on the side of "alive": a lock is never
// taken from a process that might be running.
func Alive(id ID) bool {
	if id.Pid() == 0 {
		// Pid 0 names no user process, and the pidExists fallback must
		// never see it: kill(0, 0) signals our own process group and so
		// always succeeds. A corrupt word (epoch bits set, pid bits 0)
		// would otherwise look alive forever and its waiters hang.
		return false
	}
	if id == self {
		return true
	}
	state, start, err := stat(id.Pid())
	if err != nil {
		return pidExists(id.Pid())
	}
	if state == 'Z' || state == 'X' || state == 'x' {
		return false
	}
	return id.Epoch() == 0 || uint32(start) == id.Epoch()
}

var errStatFormat = errors.New("owner: malformed /proc stat line")

// stat returns the state letter and start time of pid from /proc.
func stat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStat(string(b))
}

// parseStat parses a /proc/<pid>/stat line. The command name (field 2) is
// in parentheses and may itself contain spaces and parentheses, so fields
// are counted from the last ')'.
func parseStat(line string) (state byte, start uint64, err error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, 0, errStatFormat
	}
	fields := strings.Fields(line[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	const startField = 22 - 3
	if len(fields) <= startField || len(fields[0]) != 1 {
		return 0, 0, errStatFormat
	}
	start, err = strconv.ParseUint(fields[startField], 10, 64)
	if err != nil {
		return 0, 0, errStatFormat
	}
	return fields[0][0], start, nil
}
