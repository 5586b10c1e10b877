package sync_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xproc-go/xproc/internal/testproc"
	xsync "github.com/xproc-go/xproc/sync"
)

// afterClose lists, for each kind of named handle, a way to make it, and
// every method a caller might still use once it is closed.
var afterClose = []struct {
	kind  string
	make  func(name string) (closer, error)
	calls map[string]func(h any) error
}{
	{"mutex", func(n string) (closer, error) { return xsync.CreateMutex(n) }, map[string]func(any) error{
		"Lock":        func(h any) error { h.(*xsync.NamedMutex).Lock(); return nil },
		"TryLock":     func(h any) error { h.(*xsync.NamedMutex).TryLock(); return nil },
		"LockContext": func(h any) error { return h.(*xsync.NamedMutex).LockContext(context.Background()) },
		"Unlock":      func(h any) error { h.(*xsync.NamedMutex).Unlock(); return nil },
		"Locked":      func(h any) error { h.(*xsync.NamedMutex).Locked(); return nil },
	}},
	{"rmutex", func(n string) (closer, error) { return xsync.CreateReentrantMutex(n) }, map[string]func(any) error{
		"Lock":        func(h any) error { h.(*xsync.NamedReentrantMutex).Lock(); return nil },
		"TryLock":     func(h any) error { h.(*xsync.NamedReentrantMutex).TryLock(); return nil },
		"LockContext": func(h any) error { return h.(*xsync.NamedReentrantMutex).LockContext(context.Background()) },
		"Unlock":      func(h any) error { h.(*xsync.NamedReentrantMutex).Unlock(); return nil },
		"Held":        func(h any) error { h.(*xsync.NamedReentrantMutex).Held(); return nil },
		"Depth":       func(h any) error { h.(*xsync.NamedReentrantMutex).Depth(); return nil },
	}},
	{"semaphore", func(n string) (closer, error) { return xsync.CreateSemaphore(n, 1, false) }, map[string]func(any) error{
		"Acquire":        func(h any) error { h.(*xsync.NamedSemaphore).Acquire(); return nil },
		"TryAcquire":     func(h any) error { h.(*xsync.NamedSemaphore).TryAcquire(); return nil },
		"AcquireContext": func(h any) error { return h.(*xsync.NamedSemaphore).AcquireContext(context.Background()) },
		"Release":        func(h any) error { return h.(*xsync.NamedSemaphore).Release() },
		"Value":          func(h any) error { h.(*xsync.NamedSemaphore).Value(); return nil },
		"Init":           func(h any) error { return h.(*xsync.NamedSemaphore).Init(1, false) },
	}},
	{"event", func(n string) (closer, error) { return xsync.CreateEvent(n) }, map[string]func(any) error{
		"Set":         func(h any) error { h.(*xsync.NamedEvent).Set(); return nil },
		"Clear":       func(h any) error { h.(*xsync.NamedEvent).Clear(); return nil },
		"IsSet":       func(h any) error { h.(*xsync.NamedEvent).IsSet(); return nil },
		"Wait":        func(h any) error { h.(*xsync.NamedEvent).Wait(); return nil },
		"WaitContext": func(h any) error { return h.(*xsync.NamedEvent).WaitContext(context.Background()) },
	}},
	{"cond", func(n string) (closer, error) { return xsync.CreateCond(n) }, map[string]func(any) error{
		"Lock":      func(h any) error { h.(*xsync.NamedCond).Lock(); return nil },
		"Wait":      func(h any) error { return h.(*xsync.NamedCond).Wait() },
		"Signal":    func(h any) error { h.(*xsync.NamedCond).Signal(); return nil },
		"Broadcast": func(h any) error { h.(*xsync.NamedCond).Broadcast(); return nil },
		"Cond":      func(h any) error { h.(*xsync.NamedCond).Cond(); return nil },
		"Waiting":   func(h any) error { h.(*xsync.NamedCond).Waiting(); return nil },
	}},
	{"barrier", func(n string) (closer, error) { return xsync.CreateBarrier(n, 2, 0) }, map[string]func(any) error{
		"Wait":    func(h any) error { _, err := h.(*xsync.NamedBarrier).Wait(); return err },
		"Abort":   func(h any) error { h.(*xsync.NamedBarrier).Abort(); return nil },
		"Reset":   func(h any) error { h.(*xsync.NamedBarrier).Reset(); return nil },
		"Broken":  func(h any) error { h.(*xsync.NamedBarrier).Broken(); return nil },
		"Waiting": func(h any) error { h.(*xsync.NamedBarrier).Waiting(); return nil },
		"Init":    func(h any) error { return h.(*xsync.NamedBarrier).Init(2, 0) },
	}},
}

type closer interface {
	Close() error
	Unlink() error
}

func init() {
	// use-after-close NAME: make each kind of named handle, close it
	// twice, call each method, and print what each did. Before handles
	// checked, the first call killed the process with a fault.
	testproc.Register("use-after-close", func(args []string) error {
		for i, k := range afterClose {
			h, err := k.make(fmt.Sprintf("%s-%d", args[0], i))
			if err != nil {
				return err
			}
			h.Unlink()
			if err := h.Close(); err != nil {
				return err
			}
			if err := h.Close(); err != nil {
				return fmt.Errorf("second Close: %w", err)
			}
			for call, f := range k.calls {
				testproc.Say(k.kind + "." + call + ": " + callClosed(f, h))
			}
		}
		testproc.Say("done")
		return nil
	})
}

// callClosed calls f on a closed handle and says how it failed: "closed"
// when it returned or panicked with an error wrapping ErrClosed.
func callClosed(f func(any) error, h any) (what string) {
	defer func() {
		if r := recover(); r != nil {
			err, ok := r.(error)
			if ok && errors.Is(err, xsync.ErrClosed) && strings.Contains(err.Error(), "closed") {
				what = "closed"
			} else {
				what = fmt.Sprintf("panic %v", r)
			}
		}
	}()
	if err := f(h); errors.Is(err, xsync.ErrClosed) {
		return "closed"
	} else {
		return fmt.Sprintf("returned %v", err)
	}
}

// TestUseAfterClose: every method of a closed named handle fails with
// ErrClosed, returned or in a panic that recover catches, instead of a
// fault that kills the process.
func TestUseAfterClose(t *testing.T) {
	name := testproc.Name(t)
	c := testproc.Start(t, "use-after-close", name)
	c.Expect("done")
	c.Wait()
	out := c.Output()
	n := 0
	for _, k := range afterClose {
		for call := range k.calls {
			assert.Contains(t, out, k.kind+"."+call+": closed\n")
			n++
		}
	}
	assert.Equal(t, n, strings.Count(out, ": closed\n"), "%s", out)
}
