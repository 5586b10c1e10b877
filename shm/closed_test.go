//go:build linux

package shm_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
)

// segmentAfterClose lists every exported method of *shm.Segment, and the
// package functions that take one, with a call on a closed segment that
// returns nil if the call did what the documentation promises after
// Close. None may touch the unmapped memory: that would fault, which
// kills the process (recover cannot catch it).
var segmentAfterClose = map[string]func(s *shm.Segment) error{
	"Name":   func(s *shm.Segment) error { s.Name(); return nil },
	"Path":   func(s *shm.Segment) error { s.Path(); return nil },
	"Kind":   func(s *shm.Segment) error { return want(s.Kind() == shm.KindArray, "Kind %v", s.Kind()) },
	"Type":   func(s *shm.Segment) error { return want(s.Type().Size == 8, "Type %v", s.Type()) },
	"Len":    func(s *shm.Segment) error { return want(s.Len() == 4, "Len %d", s.Len()) },
	"Shape":  func(s *shm.Segment) error { s.Shape(); return nil },
	"Params": func(s *shm.Segment) error { s.Params(); return nil },
	"Data":   func(s *shm.Segment) error { return want(s.Data() == nil, "Data is not nil") },
	"Closed": func(s *shm.Segment) error { return want(s.Closed(), "Closed is false") },
	"File":   func(s *shm.Segment) error { s.File(); return nil },
	"Info": func(s *shm.Segment) error {
		in := s.Info()
		if !errors.Is(in.Err, shm.ErrClosed) {
			return fmt.Errorf("Info.Err %v, want ErrClosed", in.Err)
		}
		return want(in.Kind == shm.KindArray && in.Len == 4 && !in.InUse && in.Attached == nil, "Info %+v", in)
	},
	"Close": func(s *shm.Segment) error { return s.Close() },
	"Unlink": func(s *shm.Segment) error {
		if err := s.Unlink(); s.Path() != "" && !errors.Is(err, shm.ErrNotExist) || s.Path() == "" && err != nil {
			return fmt.Errorf("Unlink: %v", err)
		}
		return nil
	},
	"func View": func(s *shm.Segment) error {
		_, err := shm.View[int64](s, 0)
		return want(errors.Is(err, shm.ErrClosed), "View: %v", err)
	},
	"func Slice": func(s *shm.Segment) error {
		_, err := shm.Slice[int64](s, 0, 4)
		return want(errors.Is(err, shm.ErrClosed), "Slice: %v", err)
	},
}

func want(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

func init() {
	// shm-use-after-close NAME: make a named and an anonymous segment,
	// unlink and close them, call everything on them, and say what each
	// did. Info used to read the unmapped attach table and fault.
	testproc.Register("shm-use-after-close", func(args []string) error {
		ty, _ := shm.TypeOf[int64]()
		spec := shm.Spec{Kind: shm.KindArray, Type: ty, Len: 4}
		named, err := shm.Create(args[0], spec)
		if err != nil {
			return err
		}
		anon, err := shm.CreateAnonymous(spec)
		if err != nil {
			return err
		}
		for what, s := range map[string]*shm.Segment{"named": named, "anonymous": anon} {
			if err := s.Unlink(); err != nil {
				return err
			}
			if err := s.Close(); err != nil {
				return err
			}
			for call, f := range segmentAfterClose {
				testproc.Say(what + "." + call + ": " + callAfterClose(f, s))
			}
		}
		testproc.Say("done")
		return nil
	})
}

func callAfterClose(f func(*shm.Segment) error, s *shm.Segment) (what string) {
	defer func() {
		if r := recover(); r != nil {
			what = fmt.Sprintf("panic %v", r)
		}
	}()
	if err := f(s); err != nil {
		return "wrong: " + err.Error()
	}
	return "ok"
}

// TestSegmentUseAfterClose: after Close, no method of a Segment faults:
// each answers from the header copy or fails with ErrClosed, as
// documented, in a child process, where a fault would kill it.
func TestSegmentUseAfterClose(t *testing.T) {
	typ := reflect.TypeFor[*shm.Segment]()
	for i := range typ.NumMethod() {
		m := typ.Method(i).Name
		assert.Contains(t, segmentAfterClose, m, "method %s is not checked after Close", m)
	}
	c := testproc.Start(t, "shm-use-after-close", testproc.Name(t))
	c.Expect("done")
	c.Wait()
	out := c.Output()
	for _, what := range []string{"named", "anonymous"} {
		for call := range segmentAfterClose {
			assert.Contains(t, out, what+"."+call+": ok\n")
		}
	}
	assert.Equal(t, 2*len(segmentAfterClose), strings.Count(out, ": ok\n"), "%s", out)
}
