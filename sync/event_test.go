package sync_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	xsync "github.com/xproc-go/xproc/sync"
)

func init() {
	testproc.Register("event-set", func(args []string) error {
		e, err := xsync.OpenEvent(args[0])
		if err != nil {
			return err
		}
		if err := testproc.Await("set"); err != nil {
			return err
		}
		e.Set()
		return nil
	})
	testproc.Register("event-wait", func(args []string) error {
		e, err := xsync.OpenEvent(args[0])
		if err != nil {
			return err
		}
		testproc.Say("waiting")
		ctx, cancel := timeoutCtx(testproc.Bound)
		defer cancel()
		if err := e.WaitContext(ctx); err != nil {
			return err
		}
		testproc.Say("set")
		return nil
	})
}

func TestEvent(t *testing.T) {
	var e xsync.Event
	assert.False(t, e.IsSet())

	// Unset: wait(0) fails at once, wait(t) after about t.
	ctx, cancel := timeoutCtx(0)
	defer cancel()
	testproc.Within(t, time.Second, "wait(0) on a clear event", func() {
		assert.ErrorIs(t, e.WaitContext(ctx), context.DeadlineExceeded)
	})
	const d = 100 * time.Millisecond
	start := time.Now()
	ctx2, cancel2 := timeoutCtx(d)
	defer cancel2()
	assert.ErrorIs(t, e.WaitContext(ctx2), context.DeadlineExceeded)
	assert.GreaterOrEqual(t, time.Since(start), d)

	// Set: every wait returns at once, even with a finished context.
	e.Set()
	assert.True(t, e.IsSet())
	testproc.Within(t, time.Second, "waits on a set event", func() {
		assert.NoError(t, e.WaitContext(ctx))
		e.Wait()
	})
	e.Clear()
	assert.False(t, e.IsSet())
	assert.ErrorIs(t, e.WaitContext(ctx), context.DeadlineExceeded)
}

func TestEventSetByChild(t *testing.T) {
	name := testproc.Name(t)
	e, err := xsync.CreateEvent(name)
	require.NoError(t, err)
	defer e.Close()
	c := testproc.Start(t, "event-set", name)
	got := make(chan error, 1)
	go func() {
		ctx, cancel := timeoutCtx(testproc.Bound)
		defer cancel()
		got <- e.WaitContext(ctx)
	}()
	c.Send("set")
	require.NoError(t, <-got, "the parent's blocked wait returns when a child sets")
	assert.True(t, e.IsSet())
	c.Wait()
}

func TestEventWakesAllProcesses(t *testing.T) {
	name := testproc.Name(t)
	e, err := xsync.CreateEvent(name)
	require.NoError(t, err)
	defer e.Close()
	var kids []*testproc.Child
	for range 3 {
		k := testproc.Start(t, "event-wait", name)
		k.Expect("waiting")
		kids = append(kids, k)
	}
	e.Set()
	for _, k := range kids {
		k.Expect("set")
		k.Wait()
	}
}
