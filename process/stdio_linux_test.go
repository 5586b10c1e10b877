package process_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/process"
)

// speak writes to its standard output and error, and to each twice, so
// that the writers' order is seen.
var speak = process.Register("test-speak", func(ctx context.Context, s string) (int, error) {
	for i := range 2 {
		if _, err := fmt.Fprintf(os.Stdout, "out %d: %s\n", i, s); err != nil {
			return 0, err
		}
		if _, err := fmt.Fprintf(os.Stderr, "err %d: %s\n", i, s); err != nil {
			return 0, err
		}
	}
	return 0, nil
})

// The Stdout and Stderr options: what the worker writes to its standard
// output and error reaches the writers given, each its own, all of it by
// the time Wait returns; whether the writer is a file (the worker gets it
// as its descriptor) or not (it is copied through a pipe).
func TestStdio(t *testing.T) {
	ctx := ctxBound(t)
	const wantOut = "out 0: hi\nout 1: hi\n"
	const wantErr = "err 0: hi\nerr 1: hi\n"

	t.Run("writers", func(t *testing.T) {
		var out, errs strings.Builder
		p, err := process.Start(ctx, speak, "hi", process.Stdout(&out), process.Stderr(&errs))
		require.NoError(t, err)
		_, err = p.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, wantOut, out.String())
		assert.Equal(t, wantErr, errs.String())
	})
	t.Run("files", func(t *testing.T) {
		dir := t.TempDir()
		out, err := os.Create(dir + "/out")
		require.NoError(t, err)
		defer out.Close()
		errs, err := os.Create(dir + "/err")
		require.NoError(t, err)
		defer errs.Close()
		p, err := process.Start(ctx, speak, "hi", process.Stdout(out), process.Stderr(errs))
		require.NoError(t, err)
		_, err = p.Wait(ctx)
		require.NoError(t, err)
		b, err := os.ReadFile(dir + "/out")
		require.NoError(t, err)
		assert.Equal(t, wantOut, string(b))
		b, err = os.ReadFile(dir + "/err")
		require.NoError(t, err)
		assert.Equal(t, wantErr, string(b))
	})
}
