//go:build linux

package xproc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/pipe"
	"github.com/xproc-go/xproc/pool"
	"github.com/xproc-go/xproc/process"
	"github.com/xproc-go/xproc/queue"
	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
)

// noop is registered only to be refused a start.
var noop = process.Register("xproc-test-noop", func(ctx context.Context, x int) (int, error) { return x, nil })

// TestArgumentsEverywhere: the argument rule of package sync holds in
// every package: an argument out of range is an error, never a panic,
// matching the one sentinel (shm.ErrInvalid, which xsync.ErrInvalid is),
// and its message names the argument and the value given.
func TestArgumentsEverywhere(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		call, want string // want: the argument and value, as the message says them
		do         func() error
	}{
		{"xsync.CreateSemaphore", "value -1", func() error {
			_, err := xsync.CreateSemaphore(testproc.Name(t), -1, false)
			return err
		}},
		{"xsync.CreateSemaphore", "value 4294967296", func() error {
			_, err := xsync.CreateSemaphore(testproc.Name(t), 1<<32, false)
			return err
		}},
		{"queue.Create", "Options.Size 3221225472", func() error {
			_, err := queue.Create(testproc.Name(t), queue.Options{Size: 3 << 30})
			return err
		}},
		{"queue.Create", "Options.MaxMessage 9999999", func() error {
			_, err := queue.Create(testproc.Name(t), queue.Options{Size: 1 << 20, MaxMessage: 9999999})
			return err
		}},
		{"pipe.Create", "Options.Size 3221225472", func() error {
			_, err := pipe.Create(testproc.Name(t), pipe.Options{Size: 3 << 30})
			return err
		}},
		{"array.Create", "-1", func() error { _, err := array.Create[int64](testproc.Name(t), -1); return err }},
		{"queue.Create", "Options.Size -1", func() error {
			_, err := queue.Create(testproc.Name(t), queue.Options{Size: -1})
			return err
		}},
		{"queue.Create", "Options.MaxMessages -2", func() error {
			_, err := queue.Create(testproc.Name(t), queue.Options{MaxMessages: -2})
			return err
		}},
		{"Queue.Reserve", "n -1", func() error {
			q, err := queue.CreateAnonymous(queue.Options{Size: 4096})
			require.NoError(t, err)
			defer q.Close()
			_, err = q.Reserve(ctx, -1)
			return err
		}},
		{"pipe.Create", "Options.Size -5", func() error {
			_, err := pipe.Create(testproc.Name(t), pipe.Options{Size: -5})
			return err
		}},
		{"pipe.Create", "Options.Direction 7", func() error {
			_, err := pipe.Create(testproc.Name(t), pipe.Options{Direction: 7})
			return err
		}},
		{"process.Start", "GOMAXPROCS -1", func() error {
			_, err := process.Start(ctx, noop, 1, process.GOMAXPROCS(-1))
			return err
		}},
		{"pool.New", "MaxTasksPerChild -1", func() error { _, err := pool.New(ctx, pool.MaxTasksPerChild(-1)); return err }},
		{"pool.New", "ChunkSize -3", func() error { _, err := pool.New(ctx, pool.ChunkSize(-3)); return err }},
		{"pool.New", "Retries -1", func() error { _, err := pool.New(ctx, pool.Retries(-1)); return err }},
		{"pool.New", "MaxRSS -4096", func() error { _, err := pool.New(ctx, pool.MaxRSS(-4096)); return err }},
		{"pool.New", "GOMAXPROCS -2", func() error { _, err := pool.New(ctx, pool.GOMAXPROCS(-2)); return err }},
		{"pool.New", "Grace -1s", func() error { _, err := pool.New(ctx, pool.Grace(-time.Second)); return err }},
	} {
		t.Run(c.call+"/"+c.want, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = c.do() })
			require.Error(t, err)
			assert.ErrorIs(t, err, shm.ErrInvalid)
			assert.True(t, errors.Is(err, xsync.ErrInvalid), "one sentinel: %v", err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	infos, err := shm.List()
	require.NoError(t, err)
	for _, in := range infos {
		assert.False(t, strings.Contains(in.Name, "TestArgumentsEverywhere"), "created despite the error: %s", in.Name)
	}
}
