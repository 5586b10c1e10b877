package array_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/shm"
	"github.com/xproc-go/xproc/value"
)

// pythonDir is where Python's multiprocessing.shared_memory looks for
// segments: shm_open, which refuses names with a '/' in them, so the test
// cannot use the private directory of testproc (a subdirectory) and
// creates its segments here, under unique names, removing them itself.
const pythonDir = "/dev/shm"

// TestPython: a Python process using only its standard library attaches
// by name to an Array[float64] and a Value[int64] made here, reads what
// Go wrote, writes, and Go sees what Python wrote. The script,
// testdata/attach.py, finds the data through the header as LAYOUT.md
// describes.
func TestPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on PATH; the cross-language test needs it")
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	base := "xproc-pytest-" + hex.EncodeToString(rnd[:])
	opt := shm.Dir(pythonDir)

	const n = 1000 // 8000 bytes: the elements span two pages
	src := make([]float64, n)
	for i := range src {
		src[i] = float64(i)*1.5 - 3
	}
	a, err := array.CreateFrom(base+"-array", src, opt)
	require.NoError(t, err)
	t.Cleanup(func() { a.Close(); a.Unlink() })
	v, err := value.Create(base+"-value", -(int64(1)<<40)-7, opt)
	require.NoError(t, err)
	t.Cleanup(func() { v.Close(); v.Unlink() })

	cmd := exec.Command(python, "testdata/attach.py", a.Name(), v.Name())
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("python: %v\nstdout:\n%s\nstderr:\n%s", err, out, ee.Stderr)
	}
	require.NoError(t, err)

	type hdr struct {
		Kind       uint32 `json:"kind"`
		DataOffset uint64 `json:"data_offset"`
		DataSize   uint64 `json:"data_size"`
		ElemSize   uint64 `json:"elem_size"`
		Len        uint64 `json:"len"`
		Shape      []int  `json:"shape"`
		Type       string `json:"type"`
		LockOffset uint64 `json:"lock_offset"`
	}
	var seen struct {
		Array    hdr       `json:"array"`
		Value    hdr       `json:"value"`
		Elements []float64 `json:"elements"`
		V        int64     `json:"v"`
	}
	require.NoError(t, json.Unmarshal(out, &seen), "python printed %s", out)

	// Python read what Go wrote, finding it through the header.
	assert.Equal(t, src, seen.Elements)
	assert.Equal(t, -(int64(1)<<40)-7, seen.V)
	assert.Equal(t, hdr{Kind: uint32(shm.KindArray), DataOffset: seen.Array.DataOffset, DataSize: 8000 + 8,
		ElemSize: 8, Len: n, Shape: []int{}, Type: "float64", LockOffset: 8000}, seen.Array)
	assert.Equal(t, hdr{Kind: uint32(shm.KindValue), DataOffset: seen.Value.DataOffset, DataSize: 16,
		ElemSize: 8, Len: 1, Shape: []int{}, Type: "int64", LockOffset: 8}, seen.Value)

	for _, h := range []hdr{seen.Array, seen.Value} {
		assert.True(t, h.DataOffset >= 4096 && h.DataOffset%4096 == 0, "data offset %d", h.DataOffset)
	}

	// Go sees what Python wrote.
	for i, x := range a.Slice() {
		if x != 2*src[i]+1 {
			t.Fatalf("element %d is %v after python, want %v", i, x, 2*src[i]+1)
		}
	}
	assert.Equal(t, 3*(-(int64(1)<<40)-7)-1, v.Load())

	// Python left the segments in place (its resource tracker did not
	// unlink them).
	for _, name := range []string{a.Name(), v.Name()} {
		_, err := os.Stat(pythonDir + "/" + name)
		assert.NoError(t, err)
	}
}
