package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/pipe"
	"github.com/xproc-go/xproc/queue"
)

func TestDemoQueue(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, demoQueue(&out, demoParams{workers: 3, tasks: 3000}))
	assert.Contains(t, out.String(), "3000 of 3000 tasks done")
	assert.Contains(t, out.String(), "exact ✓")
}

func TestInspectQueueAndPipe(t *testing.T) {
	q, err := queue.Create("cmd-test-queue", queue.Options{MaxMessages: 10})
	require.NoError(t, err)
	defer q.Unlink()
	defer q.Close()
	ctx := context.Background()
	require.NoError(t, q.Put(ctx, []byte("a")))
	require.NoError(t, q.Put(ctx, []byte("b")))
	l, err := q.GetLease(ctx)
	require.NoError(t, err)
	defer l.Ack()
	var out bytes.Buffer
	require.NoError(t, cmdInspect([]string{"cmd-test-queue"}, &out))
	assert.Contains(t, out.String(), "depth 2 (1 ready, 1 leased")
	assert.Contains(t, out.String(), "at most 10 messages")

	p, err := pipe.Create("cmd-test-pipe", pipe.Options{})
	require.NoError(t, err)
	defer p.Unlink()
	defer p.Close()
	require.NoError(t, p.Send(ctx, []byte("x")))
	out.Reset()
	require.NoError(t, cmdInspect([]string{"cmd-test-pipe"}, &out))
	assert.Contains(t, out.String(), "duplex pipe")
	assert.Contains(t, out.String(), "opener not taken")
	assert.Contains(t, out.String(), "1 messages waiting for the opener")
}

func TestTortureCommand(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, cmdTorture([]string{"queue", "-cycles", "20"}, &out), out.String())
	assert.Contains(t, out.String(), "cycles 20, hangs 0, torn 0, duplicated 0, lost 0")
	assert.Contains(t, out.String(), "failed 0")
	for _, args := range [][]string{{"-cycles", "1"}, {"queue", "-cycles", "0"}, {"queue", "-max-delay", "-1s"},
		{"queue", "-stall", "0s"}, {"queue", "-producers", "0"}, {"bogus"}} {
		assert.ErrorIs(t, cmdTorture(args, &out), errUsage, "%q", args)
	}
}
