package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
)

// TestMain lets the test binary act as a worker, as the xproc binary does
// when the demo or the benchmarks re-execute it, and gives the run a
// private segment directory that must be empty at the end.
func TestMain(m *testing.M) {
	if job := os.Getenv(workerEnv); job != "" {
		os.Exit(runWorker(job))
	}
	dir, err := os.MkdirTemp(shm.DefaultDir(), "xproc-cmd-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv(shm.DirEnv, dir)
	code := m.Run()
	if ents, _ := os.ReadDir(dir); len(ents) > 0 && code == 0 {
		os.Stderr.WriteString("segments left behind\n")
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	err := cmdDemo([]string{"-workers", "3", "-increments", "2000", "-elements", "4096", "-passes", "20", "-samples", "300000"}, &out)
	require.NoError(t, err, out.String())
	s := out.String()
	assert.Contains(t, s, "counter = 6000, expected 6000: exact ✓")
	assert.Contains(t, s, "245760 of 245760 updates arrived: exact ✓")
	assert.Contains(t, s, "π ≈ 3.1")
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
	assert.Equal(t, "removed cmd-test-mutex\n", out.String())
	m.Unlock()
	assert.Error(t, cmdRemove([]string{"cmd-test-mutex"}, &out))
}

func TestBench(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, cmdBench([]string{"-time", "20ms", "-runs", "1"}, &out))
	for _, w := range []string{"mutex", "event-pingpong", "barrier"} {
		assert.Contains(t, out.String(), w)
	}
	assert.Equal(t, 1+len(benchRows)+len(messageRows), strings.Count(out.String(), "\n"))
}
