package testproc

import (
	"syscall"
	"unsafe"
)

// waitExitedNoReap blocks until pid has exited, leaving it a zombie
// (waitid with WNOWAIT).
func waitExitedNoReap(pid int) error {
	const (
		pPID    = 1
		wExited = 4
		wNoWait = 0x01000000
	)
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&info[0])), wExited|wNoWait, 0, 0)
		if errno != syscall.EINTR {
			if errno != 0 {
				return errno
			}
			return nil
		}
	}
}
