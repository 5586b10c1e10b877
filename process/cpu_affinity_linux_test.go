package process_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/process"
)

func init() {
	// cpu-count: print CPUCount.
	testproc.Register("cpu-count", func(args []string) error {
		testproc.Say(fmt.Sprintf("cpus %d numcpu %d", process.CPUCount(), runtime.NumCPU()))
		return nil
	})
}

// TestCPUCountAffinity: a process whose affinity mask holds one CPU
// (started under taskset -c) counts 1.
func TestCPUCountAffinity(t *testing.T) {
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("taskset (util-linux) is not installed: cannot start a child with one CPU")
	}
	if n := process.CPUCount(); n < 2 {
		t.Skipf("this process may use %d CPU: a child limited to one would not show the affinity", n)
	}
	cpu := firstAllowedCPU(t)
	c := testproc.StartCmd(t, "cpu-count", func(cmd *exec.Cmd) {
		cmd.Path = taskset
		cmd.Args = append([]string{"taskset", "-c", cpu}, cmd.Args...)
	})
	var n, numCPU int
	_, err = fmt.Sscanf(c.ExpectPrefix("cpus "), "%d numcpu %d", &n, &numCPU)
	require.NoError(t, err)
	c.Wait()
	assert.Equal(t, 1, n, "CPUCount under taskset -c %s (runtime.NumCPU %d)", cpu, numCPU)
}

// firstAllowedCPU returns the first CPU of this process's affinity mask,
// which taskset may give a child.
func firstAllowedCPU(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if list, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			first, _, _ := strings.Cut(strings.TrimSpace(list), ",")
			first, _, _ = strings.Cut(first, "-")
			_, err := strconv.Atoi(first)
			require.NoError(t, err, "Cpus_allowed_list: %q", list)
			return first
		}
	}
	t.Fatal("no Cpus_allowed_list in /proc/self/status")
	return ""
}
