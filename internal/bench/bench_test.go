package bench

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// TestSharedLines checks that each group of Shared starts a cache line,
// as its doc says: the figures depend on it.
func TestSharedLines(t *testing.T) {
	var sh Shared
	for name, off := range map[string]uintptr{
		"Start": unsafe.Offsetof(sh.Start),
		"Mu":    unsafe.Offsetof(sh.Mu),
		"Bare":  unsafe.Offsetof(sh.Bare),
		"A":     unsafe.Offsetof(sh.A),
		"Bar":   unsafe.Offsetof(sh.Bar),
	} {
		assert.Zero(t, off%64, "%s at offset %d", name, off)
	}
	assert.LessOrEqual(t, unsafe.Sizeof(sh), uintptr(5*64))
	assert.Equal(t, unsafe.Offsetof(sh.Mu)/64, unsafe.Offsetof(sh.Count)/64, "Mu and Count share a line")
	assert.Equal(t, unsafe.Offsetof(sh.Bar)/64, unsafe.Offsetof(sh.Rounds)/64, "Bar and Rounds share a line")
}
