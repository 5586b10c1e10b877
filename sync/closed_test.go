package sync_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
)

// afterClose lists, for each kind of named handle, its type, a way to
// make it, and every method a caller might still use once it is closed,
// with a call of it. TestUseAfterCloseCoversEveryMethod checks that the
// list names every exported method of each type: a method added later
// without a line here fails it.
var afterClose = []struct {
	kind  string
	typ   reflect.Type
	make  func(name string) (closer, error)
	calls map[string]func(h any) error
}{
	{"mutex", reflect.TypeFor[*xsync.NamedMutex](), func(n string) (closer, error) { return xsync.CreateMutex(n) }, map[string]func(any) error{
		"Lock":        func(h any) error { h.(*xsync.NamedMutex).Lock(); return nil },
		"TryLock":     func(h any) error { h.(*xsync.NamedMutex).TryLock(); return nil },
		"LockContext": func(h any) error { return h.(*xsync.NamedMutex).LockContext(context.Background()) },
		"Unlock":      func(h any) error { h.(*xsync.NamedMutex).Unlock(); return nil },
		"Locked":      func(h any) error { h.(*xsync.NamedMutex).Locked(); return nil },
	}},
	{"rmutex", reflect.TypeFor[*xsync.NamedReentrantMutex](), func(n string) (closer, error) { return xsync.CreateReentrantMutex(n) }, map[string]func(any) error{
		"Lock":        func(h any) error { h.(*xsync.NamedReentrantMutex).Lock(); return nil },
		"TryLock":     func(h any) error { h.(*xsync.NamedReentrantMutex).TryLock(); return nil },
		"LockContext": func(h any) error { return h.(*xsync.NamedReentrantMutex).LockContext(context.Background()) },
		"Unlock":      func(h any) error { h.(*xsync.NamedReentrantMutex).Unlock(); return nil },
		"Locked":      func(h any) error { h.(*xsync.NamedReentrantMutex).Locked(); return nil },
		"Held":        func(h any) error { h.(*xsync.NamedReentrantMutex).Held(); return nil },
		"Depth":       func(h any) error { h.(*xsync.NamedReentrantMutex).Depth(); return nil },
	}},
	{"semaphore", reflect.TypeFor[*xsync.NamedSemaphore](), func(n string) (closer, error) { return xsync.CreateSemaphore(n, 1, false) }, map[string]func(any) error{
		"Acquire":        func(h any) error { h.(*xsync.NamedSemaphore).Acquire(); return nil },
		"TryAcquire":     func(h any) error { h.(*xsync.NamedSemaphore).TryAcquire(); return nil },
		"AcquireContext": func(h any) error { return h.(*xsync.NamedSemaphore).AcquireContext(context.Background()) },
		"Release":        func(h any) error { return h.(*xsync.NamedSemaphore).Release() },
		"ReleaseN":       func(h any) error { return h.(*xsync.NamedSemaphore).ReleaseN(2) },
		"Value":          func(h any) error { h.(*xsync.NamedSemaphore).Value(); return nil },
		"Bounded":        func(h any) error { h.(*xsync.NamedSemaphore).Bounded(); return nil },
		"Init":           func(h any) error { return h.(*xsync.NamedSemaphore).Init(1, false) },
	}},
	{"event", reflect.TypeFor[*xsync.NamedEvent](), func(n string) (closer, error) { return xsync.CreateEvent(n) }, map[string]func(any) error{
		"Set":         func(h any) error { h.(*xsync.NamedEvent).Set(); return nil },
		"Clear":       func(h any) error { h.(*xsync.NamedEvent).Clear(); return nil },
		"IsSet":       func(h any) error { h.(*xsync.NamedEvent).IsSet(); return nil },
		"Wait":        func(h any) error { h.(*xsync.NamedEvent).Wait(); return nil },
		"WaitContext": func(h any) error { return h.(*xsync.NamedEvent).WaitContext(context.Background()) },
	}},
	{"cond", reflect.TypeFor[*xsync.NamedCond](), func(n string) (closer, error) { return xsync.CreateCond(n) }, map[string]func(any) error{
		"Lock":        func(h any) error { h.(*xsync.NamedCond).Lock(); return nil },
		"TryLock":     func(h any) error { h.(*xsync.NamedCond).TryLock(); return nil },
		"LockContext": func(h any) error { return h.(*xsync.NamedCond).LockContext(context.Background()) },
		"Unlock":      func(h any) error { h.(*xsync.NamedCond).Unlock(); return nil },
		"Locked":      func(h any) error { h.(*xsync.NamedCond).Locked(); return nil },
		"Wait":        func(h any) error { return h.(*xsync.NamedCond).Wait() },
		"WaitContext": func(h any) error { return h.(*xsync.NamedCond).WaitContext(context.Background()) },
		"WaitFor": func(h any) error {
			_, err := h.(*xsync.NamedCond).WaitFor(context.Background(), func() bool { return false })
			return err
		},
		"Signal":    func(h any) error { h.(*xsync.NamedCond).Signal(); return nil },
		"Notify":    func(h any) error { h.(*xsync.NamedCond).Notify(2); return nil },
		"Broadcast": func(h any) error { h.(*xsync.NamedCond).Broadcast(); return nil },
		"Waiting":   func(h any) error { h.(*xsync.NamedCond).Waiting(); return nil },
	}},
	{"barrier", reflect.TypeFor[*xsync.NamedBarrier](), func(n string) (closer, error) { return xsync.CreateBarrier(n, 2, 0) }, map[string]func(any) error{
		"Wait":        func(h any) error { _, err := h.(*xsync.NamedBarrier).Wait(); return err },
		"WaitContext": func(h any) error { _, err := h.(*xsync.NamedBarrier).WaitContext(context.Background()); return err },
		"WaitFunc": func(h any) error {
			_, err := h.(*xsync.NamedBarrier).WaitFunc(context.Background(), nil)
			return err
		},
		"Abort":   func(h any) error { h.(*xsync.NamedBarrier).Abort(); return nil },
		"Reset":   func(h any) error { h.(*xsync.NamedBarrier).Reset(); return nil },
		"Broken":  func(h any) error { h.(*xsync.NamedBarrier).Broken(); return nil },
		"Waiting": func(h any) error { h.(*xsync.NamedBarrier).Waiting(); return nil },
		"Parties": func(h any) error { h.(*xsync.NamedBarrier).Parties(); return nil },
		"Join":    func(h any) error { h.(*xsync.NamedBarrier).Join(); return nil },
		"Init":    func(h any) error { return h.(*xsync.NamedBarrier).Init(2, 0) },
	}},
}

// harmless are the methods of named handles that touch no shared memory
// (they answer from the handle, act on the name, or close): after Close
// they must work, or return an ordinary error, and never fault. The
// memory they lead to is checked too: Segment().Info() is listed as
// "Segment.Info" and must fail with ErrClosed.
var harmless = map[string]func(h any) error{
	"Name":  func(h any) error { h.(interface{ Name() string }).Name(); return nil },
	"Close": func(h any) error { return h.(closer).Close() },
	// Unlinked already: the name is gone, which is an error, not a fault.
	"Unlink": func(h any) error {
		if err := h.(closer).Unlink(); !errors.Is(err, shm.ErrNotExist) {
			return fmt.Errorf("Unlink: %v, want ErrNotExist", err)
		}
		return nil
	},
	"Segment": func(h any) error {
		if s := h.(segmenter).Segment(); s == nil || !s.Closed() {
			return errors.New("Segment: not the closed segment")
		}
		return nil
	},
	"SetAction": func(h any) error { h.(*xsync.NamedBarrier).SetAction(nil); return nil },
}

// segmentCalls are the calls, through a handle's Segment, that would
// read the unmapped memory if they did not check.
var segmentCalls = map[string]func(h any) error{
	"Segment.Info": func(h any) error { return h.(segmenter).Segment().Info().Err },
	"Segment.Data": func(h any) error {
		if h.(segmenter).Segment().Data() != nil {
			return errors.New("Data: not nil")
		}
		return xsync.ErrClosed
	},
}

type segmenter interface{ Segment() *shm.Segment }

// TestUseAfterCloseCoversEveryMethod: afterClose and harmless together
// name every exported method of every named handle, and nothing else.
func TestUseAfterCloseCoversEveryMethod(t *testing.T) {
	for _, k := range afterClose {
		for i := range k.typ.NumMethod() {
			m := k.typ.Method(i).Name
			_, touches := k.calls[m]
			_, safe := harmless[m]
			assert.True(t, touches != safe, "%s.%s: listed in neither afterClose nor harmless (or in both)", k.typ, m)
		}
		for m := range k.calls {
			_, ok := k.typ.MethodByName(m)
			assert.True(t, ok, "%s has no method %s", k.typ, m)
		}
	}
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
			for call, f := range segmentCalls {
				testproc.Say(k.kind + "." + call + ": " + callClosed(f, h))
			}
			for call, f := range harmless {
				if _, ok := k.typ.MethodByName(call); ok {
					testproc.Say(k.kind + "." + call + ": " + callHarmless(f, h))
				}
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

// callHarmless calls f on a closed handle and says "ok" if it returned
// nil without panicking.
func callHarmless(f func(any) error, h any) (what string) {
	defer func() {
		if r := recover(); r != nil {
			what = fmt.Sprintf("panic %v", r)
		}
	}()
	if err := f(h); err != nil {
		return fmt.Sprintf("returned %v", err)
	}
	return "ok"
}

// TestUseAfterClose: every method of a closed named handle fails with
// ErrClosed, returned or in a panic that recover catches, instead of a
// fault that kills the process; so do the calls through its Segment
// that would read the unmapped memory; the methods that touch no shared
// memory still work.
func TestUseAfterClose(t *testing.T) {
	name := testproc.Name(t)
	c := testproc.Start(t, "use-after-close", name)
	c.Expect("done")
	c.Wait()
	out := c.Output()
	closed, ok := 0, 0
	for _, k := range afterClose {
		for call := range k.calls {
			assert.Contains(t, out, k.kind+"."+call+": closed\n")
			closed++
		}
		for call := range segmentCalls {
			assert.Contains(t, out, k.kind+"."+call+": closed\n")
			closed++
		}
		for call := range harmless {
			if _, has := k.typ.MethodByName(call); has {
				assert.Contains(t, out, k.kind+"."+call+": ok\n")
				ok++
			}
		}
	}
	assert.Equal(t, closed, strings.Count(out, ": closed\n"), "%s", out)
	assert.Equal(t, ok, strings.Count(out, ": ok\n"), "%s", out)
}
