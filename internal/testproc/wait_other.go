//go:build !linux

package testproc

import "errors"

func waitExitedNoReap(pid int) error {
	return errors.New("testproc: waiting without reaping is not supported here")
}
