package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
)

func init() {
	// Runs xproc demo with the flags args[1:], whose output stalls once
	// it has written a line containing args[0]: the demo then stands
	// still at that point, holding what it holds there, as a demo
	// writing to a terminal that was paused would, until it is killed.
	testproc.Register("cmd-demo-stall", func(args []string) error {
		out := &stallWriter{marker: args[0]}
		if code := execute(append([]string{"demo"}, args[1:]...), out, os.Stderr); code != 0 {
			return fmt.Errorf("xproc demo exited with status %d", code)
		}
		return fmt.Errorf("the demo ended without printing %q", args[0])
	})
}

// stallWriter passes writes to standard output until one contains
// marker; it passes that one too, says "stalled" (for the parent's
// Expect), and blocks for good.
type stallWriter struct{ marker string }

func (s *stallWriter) Write(b []byte) (int, error) {
	n, err := os.Stdout.Write(b)
	if err != nil || !strings.Contains(string(b), s.marker) {
		return n, err
	}
	testproc.Say("stalled")
	return n, testproc.Await("never")
}

// TestDemoKilledLeavesNothing: the demo killed with SIGKILL in any of its
// stages, each time at a point where it holds the stage's segments,
// leaves nothing in the segment directory, neither at once nor once its
// workers have gone.
func TestDemoKilledLeavesNothing(t *testing.T) {
	flags := []string{"-workers", "2", "-increments", "1000", "-elements", "1024", "-passes", "2",
		"-samples", "20000", "-tasks", "200"}
	for _, stage := range []struct{ name, marker string }{
		{"counter", "counter = "},                // the counter Value
		{"hogwild", "without locks:"},            // the hogwild Array
		{"pi", "one process: π ≈"},               // the hit counts
		{"queue", "tasks done"},                  // the queue and the results
		{"pool", "map(square"},                   // the pool and its queues
		{"pool-kill", "killed in the middle of"}, // a worker killed, the pool still running
	} {
		t.Run(stage.name, func(t *testing.T) {
			dir := t.TempDir()
			c := testproc.StartCmd(t, "cmd-demo-stall", func(cmd *exec.Cmd) {
				cmd.Env = append(cmd.Env, shm.DirEnv+"="+dir)
			}, append([]string{stage.marker}, flags...)...)
			c.Expect("stalled")
			c.Kill()
			assert.Empty(t, dirNames(t, dir), "left behind by the demo killed at once")
			c.WaitKilled() // once its workers, which hold its output, have exited too
			assert.Empty(t, dirNames(t, dir), "left behind by the demo and its workers")
			infos, err := shm.List(shm.Dir(dir))
			require.NoError(t, err)
			assert.Empty(t, infos)
		})
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
