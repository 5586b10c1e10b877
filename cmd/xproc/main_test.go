package main

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/process"
	xsync "github.com/xproc-go/xproc/sync"
)

// TestMain lets the test binary act as a worker, as the xproc binary does
// when the demo or the benchmarks start workers (process.Init), and as a
// test child (testproc); testproc gives the run a private segment
// directory that must be empty at the end.
func TestMain(m *testing.M) {
	process.Init()
	testproc.Main(m)
}

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	err := cmdDemo([]string{"-workers", "3", "-increments", "2000", "-elements", "4096", "-passes", "20", "-samples", "300000", "-tasks", "300"}, &out)
	require.NoError(t, err, out.String())
	s := out.String()
	assert.Contains(t, s, "counter = 6000, expected 6000: exact ✓")
	assert.Contains(t, s, "245760 of 245760 updates arrived: exact ✓")
	assert.Contains(t, s, "π ≈ 3.1")
	assert.Contains(t, s, "the worker running the task died")
	assert.Contains(t, s, "map(square, range(300)): exact ✓")
	assert.Contains(t, s, "the pool went on: 300 more squares exact ✓", "fewer tasks than the 1000 run after the kill")
}

func TestDemoRejectsBadFlags(t *testing.T) {
	var out bytes.Buffer
	assert.Error(t, cmdDemo([]string{"-workers", "0"}, &out))
}

func TestSegmentCommands(t *testing.T) {
	m, err := xsync.CreateMutex("cmd-test-mutex")
	require.NoError(t, err)
	defer m.Close()
	m.Lock()

	var out bytes.Buffer
	require.NoError(t, cmdList(nil, &out))
	assert.Contains(t, out.String(), "cmd-test-mutex")
	assert.Contains(t, out.String(), "mutex")

	out.Reset()
	require.NoError(t, cmdInspect([]string{"cmd-test-mutex"}, &out))
	assert.Contains(t, out.String(), "state     locked")

	out.Reset()
	assert.Error(t, cmdInspect([]string{"no-such-segment"}, &out))
	assert.ErrorIs(t, cmdInspect(nil, &out), errUsage)

	out.Reset()
	require.NoError(t, cmdRemove([]string{"cmd-test-mutex"}, &out))
	assert.Equal(t, fmt.Sprintf("removed cmd-test-mutex (still mapped by process %d, which keeps it until it closes it; no process can open it any more)\n", os.Getpid()), out.String())
	m.Unlock()
	assert.Error(t, cmdRemove([]string{"cmd-test-mutex"}, &out))
}
