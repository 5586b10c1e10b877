//go:build linux

package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/pool"
	"github.com/xproc-go/xproc/process"
)

// The pool's workers are this test binary started again.
func TestMain(m *testing.M) {
	process.Init()
	os.Exit(m.Run())
}

func bound(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// assertNoSegments checks that the segment directory is empty: the
// example's array was unlinked (its pool's segments are anonymous).
func assertNoSegments(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		t.Errorf("segment left behind: %s", e.Name())
	}
}

// run succeeds, and leaves no segment behind.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XPROC_SHM_DIR", dir)
	require.NoError(t, run(bound(t), func(i int) float64 { return float64(i%spans + 1) }))
	assertNoSegments(t, dir)
}

// A run that fails after creating its array (a span of zeros cannot be
// normalised) returns the error, having unlinked the array and closed
// the pool: main then exits through log.Fatal with nothing left behind.
func TestRunFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XPROC_SHM_DIR", dir)
	err := run(bound(t), func(i int) float64 {
		if i < n/spans {
			return 0 // the first span
		}
		return 1
	})
	var te *pool.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 0, te.Index, "the first span fails")
	assert.Contains(t, te.Message, "is zero")
	assertNoSegments(t, dir)
}

// A run whose context ends (Ctrl-C) returns ctx's error, and cleans up
// as well.
func TestRunCancelled(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XPROC_SHM_DIR", dir)
	ctx, cancel := context.WithCancel(bound(t))
	filled := 0
	err := run(ctx, func(i int) float64 {
		if filled++; filled == n { // the array is made: cancel before the Map
			cancel()
		}
		return 1
	})
	assert.ErrorIs(t, err, context.Canceled)
	assertNoSegments(t, dir)
}
