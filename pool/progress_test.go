//go:build linux

package pool_test

import (
	"context"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/pool"
)

func init() {
	// pool-bar: a Map with ProgressBar on the standard error the parent
	// set up, then an Imap left after its first result (the call stops
	// with its bar drawn: it must go, and nothing may hang).
	testproc.Register("pool-bar", func(args []string) error {
		ctx := context.Background()
		p, err := pool.New(ctx, pool.Workers(2), pool.ProgressBar())
		if err != nil {
			return err
		}
		defer p.Close(ctx)
		if _, err := pool.Map(ctx, p, square, ints(10)); err != nil {
			return err
		}
		for _, err := range pool.Imap(ctx, p, square, slices.Values(ints(1000))) {
			if err != nil {
				return err
			}
			break
		}
		// Two calls at once share the terminal, a line each.
		fut := pool.MapAsync(ctx, p, square, ints(20))
		if _, err := pool.Map(ctx, p, square, ints(30)); err != nil {
			return err
		}
		if _, err := fut.Wait(ctx); err != nil {
			return err
		}
		testproc.Say("done")
		return nil
	})
}

// runOnTerminal runs pool-bar with its standard error on a terminal of
// cols columns and returns what it wrote there.
func runOnTerminal(t *testing.T, cols uint16) string {
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptm.Close()
	require.NoError(t, pty.Setsize(ptm, &pty.Winsize{Rows: 30, Cols: cols}))
	out := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			b.Write(buf[:n])
			if err != nil { // EIO once every process has closed the terminal
				out <- b.String()
				return
			}
		}
	}()
	c := testproc.StartCmd(t, "pool-bar", func(cmd *exec.Cmd) { cmd.Stderr = pts })
	pts.Close()
	c.Expect("done")
	require.NoError(t, c.Exit())
	return <-out
}

// TestProgressBar: on a terminal, ProgressBar draws a bar for each call
// and clears it when the call ends, whether it ran to its end or was
// left early; on a terminal of unknown width (0 columns), it prints
// Verbose's lines.
func TestProgressBar(t *testing.T) {
	t.Run("terminal", func(t *testing.T) {
		got := runOnTerminal(t, 100)
		assert.Contains(t, got, "Pool(n_jobs=2) 10 / 10 [")
		assert.Contains(t, got, "Pool(n_jobs=2) 20 / 20 [")
		assert.Contains(t, got, "Pool(n_jobs=2) 30 / 30 [")
		assert.NotContains(t, got, "]: Done")
		// Every frame is erased (cursor up over its lines, clear to the
		// end) before the next is drawn, the last one too: no bar stays
		// behind. Calls under way at once share the frames, a line each
		// (whether they overlap on the screen is the scheduler's
		// choice: not checked).
		lines := strings.Count(got, "Pool(n_jobs=2) ")
		assert.Positive(t, lines, "%q", got)
		erased := 0
		for _, m := range regexp.MustCompile(`\x1b\[(\d+)A\x1b\[J`).FindAllStringSubmatch(got, -1) {
			n, _ := strconv.Atoi(m[1])
			erased += n
		}
		assert.Equal(t, lines, erased, "%q", got)
	})
	t.Run("no width", func(t *testing.T) {
		got := runOnTerminal(t, 0)
		assert.Regexp(t, `\[Pool\(n_jobs=2\)\]: Done  10 out of  10 \| elapsed: +\d+\.\ds finished`, got)
		assert.NotContains(t, got, "\x1b[")
	})
}
