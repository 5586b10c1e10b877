//go:build !linux

package shm_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xproc-go/xproc/shm"
)

// Segments are Linux-only for now; elsewhere every entry point says so.
func TestNotSupported(t *testing.T) {
	ty, err := shm.TypeOf[int64]()
	assert.NoError(t, err)
	spec := shm.Spec{Kind: shm.KindArray, Type: ty, Len: 1}
	_, err = shm.Create("x", spec)
	assert.ErrorIs(t, err, shm.ErrNotSupported)
	_, err = shm.CreateAnonymous(spec)
	assert.ErrorIs(t, err, shm.ErrNotSupported)
	_, err = shm.Open("x", spec)
	assert.ErrorIs(t, err, shm.ErrNotSupported)
	_, err = shm.OpenFile(os.Stdin, spec)
	assert.ErrorIs(t, err, shm.ErrNotSupported)
}
