//go:build !linux

package process

import "context"

func start(ctx context.Context, fn string, arg []byte, o *options) (*proc, error) {
	return nil, ErrNotSupported
}

func closeOnExec(fd int) {}
