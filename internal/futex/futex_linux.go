package futex

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Shared (not private) futex operations: the word may be mapped by other
// processes at other addresses; the kernel keys it by the backing page.
const (
	opWait       = 0 // FUTEX_WAIT
	opWake       = 1 // FUTEX_WAKE: wakes sleepers whatever their bitset
	opWaitBitset = 9 // FUTEX_WAIT_BITSET
	opWakeBitset = 10
)

// Supported reports whether Wait sleeps in the kernel rather than polling.
const Supported = true

// Wait sleeps while *addr == val, for at most timeout (negative: no limit).
// It returns nil when woken, when *addr != val on entry, or when
// interrupted; ErrTimeout when the timeout passed. The timeout is measured
// by the kernel on CLOCK_MONOTONIC.
func Wait(addr *atomic.Uint32, val uint32, timeout time.Duration) error {
	var tsp unsafe.Pointer
	var ts unix.Timespec
	if timeout >= 0 {
		ts = unix.NsecToTimespec(int64(timeout))
		tsp = unsafe.Pointer(&ts)
	}
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWait, uintptr(val), uintptr(tsp), 0, 0)
	switch errno {
	case 0, unix.EAGAIN, unix.EINTR:
		return nil
	case unix.ETIMEDOUT:
		return ErrTimeout
	default:
		return errno
	}
}

// Wake wakes at most n goroutines or threads sleeping on addr in any
// process and returns how many it woke.
func Wake(addr *atomic.Uint32, n int) int {
	r, _, errno := unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWake, uintptr(n), 0, 0, 0)
	if errno != 0 {
		return 0
	}
	return int(r)
}

// waitOwn sleeps, with no timeout, while *addr == val, tagged with this
// process's wake bit.
func waitOwn(addr *atomic.Uint32, val uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWaitBitset, uintptr(val), 0, 0, uintptr(ownBit))
}

// wakeOwn wakes the sleepers on addr tagged with this process's bit.
func wakeOwn(addr *atomic.Uint32) {
	unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWakeBitset, All, 0, 0, uintptr(ownBit))
}
