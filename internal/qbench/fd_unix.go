//go:build unix

package qbench

import (
	"fmt"
	"os"
	"syscall"
)

// fdPair returns this side's read and write files and the peer's (fd 3
// reads, fd 4 writes).
func fdPair(kind string) (mine, theirs [2]*os.File, err error) {
	switch kind {
	case "socket":
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			return mine, theirs, err
		}
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
		a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
		b2, err := dup(b)
		if err != nil {
			return mine, theirs, err
		}
		a2, err := dup(a)
		if err != nil {
			return mine, theirs, err
		}
		return [2]*os.File{a, a2}, [2]*os.File{b, b2}, nil
	case "pipe":
		r1, w1, err := os.Pipe()
		if err != nil {
			return mine, theirs, err
		}
		r2, w2, err := os.Pipe()
		if err != nil {
			return mine, theirs, err
		}
		return [2]*os.File{r2, w1}, [2]*os.File{r1, w2}, nil
	}
	return mine, theirs, fmt.Errorf("unknown kind %q", kind)
}

func dup(f *os.File) (*os.File, error) {
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// seqpacketPair returns the two ends of a Unix socket pair of kind
// SOCK_SEQPACKET, close-on-exec.
func seqpacketPair() (a, b *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return os.NewFile(uintptr(fds[0]), "seqpacket"), os.NewFile(uintptr(fds[1]), "seqpacket"), nil
}
