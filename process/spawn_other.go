//go:build !linux

package process

import (
	"context"
	"syscall"
)

func start(ctx context.Context, fn string, arg []byte, o *options) (*proc, error) {
	return nil, ErrNotSupported
}

func closeOnExec(fd int) {}

// raise does nothing here: workers run only on Linux.
func raise(syscall.Signal) {}
