// Package owner identifies processes and tells whether they are still
// there, so that a lock held by a process that died can be taken over and
// a lock held by a live one never is.
//
// # Identity
//
// An ID packs a process's pid, a tag of its PID namespace, the low 16 bits
// of its start time (clock ticks since boot, field 22 of /proc/<pid>/stat)
// and a random number drawn by each program image when it starts:
//
//	 63            48 47            32 31 30 29       22 21               0
//	+----------------+----------------+--+--+-----------+------------------+
//	| image salt     | start, low 16  | 0| 0| ns tag    | pid              |
//	+----------------+----------------+--+--+-----------+------------------+
//
// The start time keeps a reused pid from being mistaken for the process
// that once had it. The tag is 8 bits of the inode of the process's PID
// namespace: a pid means something only in its own namespace, and two
// containers sharing /dev/shm each have their own pid 1. The salt tells
// the program a process execs from the one it was: exec keeps the pid and
// start time, but the new program can never unlock what the old one
// locked, even if it maps the same segment again. Bits 30 and 31 are
// always zero, so lock words may use them as flags.
//
// # Liveness
//
// Whether a process lives is the wrong question for a lock: a holder that
// called exec, or closed the segment, can never unlock either. What
// matters is whether it still maps the segment, and the kernel can say so
// across PID namespaces: every process that maps a segment holds an
// open-file-description lock (F_OFD_SETLK, a read lock) on one byte of the
// segment's file, at LockBase plus a key derived from its ID (Attach). The
// kernel drops the lock when the last descriptor of that open file goes:
// when the process unmaps the segment, dies, or execs (the descriptor is
// close-on-exec). Another process asks with F_OFD_GETLK whether the byte
// is held (Attached). The lock is advisory, never blocks anyone, and lies
// far beyond the file's data.
//
// Where no such lock can be asked (memory that is not a segment, a file
// system without locks), Alive falls back to /proc: the pid exists, is
// not a zombie, and has the recorded start time. It trusts /proc only for
// IDs whose namespace tag is this process's own, and otherwise answers
// "alive". The tag has 8 bits: an ID of another namespace whose tag is
// ours (1 in 256) is judged by /proc all the same, so the fallback is
// reliable only when all processes share a PID namespace.
//
// # Exit notification
//
// ExitContext turns a process's exit into a context, through a pidfd
// watched by Go's network poller: no thread waits for it, and a waiter
// blocked on a dead process's lock is woken within about a millisecond of
// the death instead of at its next periodic check.
package owner

import (
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// ID is a process identity: pid in bits 0..21, PID-namespace tag in bits
// 22..29, the low 16 bits of the start time in bits 32..47, the image
// salt in bits 48..63. Bits 30 and 31 are always zero. The zero ID names
// no process.
type ID uint64

// Field widths and masks of an ID.
const (
	// PidMask selects the pid bits. Linux pids are below 2^22
	// (PID_MAX_LIMIT).
	PidMask  = 1<<22 - 1
	tagShift = 22
	// FlagMask selects the two bits that are always zero in an ID.
	FlagMask   = 3 << 30
	startShift = 32
	saltShift  = 48
)

// Make returns the ID of pid, in this process's PID namespace, started at
// start (clock ticks since boot; 0 if unknown), with no salt: the
// identity /proc can check, for Alive.
func Make(pid int, start uint64) ID { return makeTagged(pid, selfTag, start, 0) }

func makeTagged(pid int, tag uint8, start uint64, salt uint16) ID {
	return ID(uint64(pid)&PidMask | uint64(tag)<<tagShift | uint64(uint16(start))<<startShift | uint64(salt)<<saltShift)
}

// Pid returns the process id, as seen in the process's own PID namespace.
func (id ID) Pid() int { return int(uint64(id) & PidMask) }

// Tag returns the tag of the process's PID namespace.
func (id ID) Tag() uint8 { return uint8(uint64(id) >> tagShift) }

// Start returns the low 16 bits of the process's start time, or 0 if
// unknown.
func (id ID) Start() uint16 { return uint16(uint64(id) >> startShift) }

// Salt returns the random number of the program image.
func (id ID) Salt() uint16 { return uint16(uint64(id) >> saltShift) }

// sameStart reports whether a process that started at start (clock ticks
// since boot) can be the one id names.
func (id ID) sameStart(start uint64) bool { return id.Start() == 0 || id.Start() == uint16(start) }

// Local reports whether id was made in this process's PID namespace (as
// far as the 8-bit tag can tell), so that its pid can be looked up here.
func (id ID) Local() bool { return id.Tag() == selfTag }

// String formats id as pid/start.salt, with @tag appended for an ID of
// another PID namespace.
func (id ID) String() string {
	s := strconv.Itoa(id.Pid()) + "/" + strconv.Itoa(int(id.Start())) + "." + strconv.Itoa(int(id.Salt()))
	if !id.Local() {
		s += "@" + strconv.Itoa(int(id.Tag()))
	}
	return s
}

var (
	selfNS  = lookupNS()
	selfTag = nsTag(selfNS)
	self    = lookupSelf()
)

// Self returns the identity of the calling process. It is computed once at
// start-up, so reading it costs a load.
func Self() ID { return self }

// PidNS returns the inode number of this process's PID namespace, or 0 if
// it cannot be read. Two processes are in the same PID namespace exactly
// when these are equal.
func PidNS() uint64 { return selfNS }

func lookupSelf() ID {
	pid := os.Getpid()
	_, start, _ := stat(pid) // 0 if unknown
	return makeTagged(pid, selfTag, start, uint16(rand.Uint32()))
}

// lookupNS reads the inode of this process's PID namespace from the
// /proc/self/ns/pid link ("pid:[4026531836]").
func lookupNS() uint64 {
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return 0
	}
	return parseNS(link)
}

func parseNS(link string) uint64 {
	rest, ok := strings.CutPrefix(link, "pid:[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// nsTag reduces a namespace inode to 8 bits: its low byte. The kernel
// hands out namespace inodes densely from one counter (the initial PID
// namespace's is fixed), so namespaces made near each other, as a host's
// containers are, get distinct tags.
func nsTag(ino uint64) uint8 { return uint8(ino) }

// LockBase is the file offset of the first liveness byte: 2^62, far
// beyond any segment's data (at most 2^40 bytes). The byte of the process
// with ID id is at LockBase + LockKey(id); see Attach.
const LockBase = 1 << 62

// LockKey maps an ID one-to-one onto 62 bits: the pid and tag (bits
// 0..29) and the start time and salt (bits 32..63) side by side, without
// the two flag bits that IDs never use.
func LockKey(id ID) int64 {
	return int64(uint64(id)&(1<<30-1) | uint64(id)>>32<<30)
}

// StartTime returns the start time of pid in clock ticks since boot.
func StartTime(pid int) (uint64, error) {
	_, start, err := stat(pid)
	return start, err
}

// Alive reports whether the process named by id is still running, as far
// as /proc can tell. An ID whose pid bits are 0 (the zero ID included)
// names no process. A process is dead if its pid no longer exists, if it
// is a zombie (killed or exited but not yet reaped by its parent), or if
// the pid now belongs to a process with a different start time.
//
// Alive errs on the side of "alive" where it can tell it cannot be sure:
// for an ID whose namespace tag is not this process's (its pid means
// nothing here), and when /proc cannot tell (mounted with hidepid, say)
// but the pid exists. An ID of another namespace that happens to have
// this namespace's tag (1 in 256) is judged by /proc as if it were local.
// Locks in segments ask the segment instead (see Attached); Alive serves
// memory that is not a segment and file systems without locks.
func Alive(id ID) bool {
	if id.Pid() == 0 {
		// Pid 0 names no user process, and the pidExists fallback must
		// never see it: kill(0, 0) signals our own process group and so
		// always succeeds. A corrupt word (start bits set, pid bits 0)
		// would otherwise look alive forever and its waiters hang.
		return false
	}
	if id == self {
		return true
	}
	if !id.Local() {
		return true
	}
	state, start, err := stat(id.Pid())
	if err != nil {
		return pidExists(id.Pid())
	}
	if state == 'Z' || state == 'X' || state == 'x' {
		return false
	}
	return id.sameStart(start)
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
