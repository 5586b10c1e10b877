//go:build !unix

package qbench

import (
	"errors"
	"os"
)

// fdPair is not available here: the socket and pipe peers need Unix.
func fdPair(kind string) (mine, theirs [2]*os.File, err error) {
	return mine, theirs, errors.New("qbench: " + kind + " peers need a Unix system")
}

func seqpacketPair() (a, b *os.File, err error) {
	return nil, nil, errors.New("qbench: socket peers need a Unix system")
}
