//go:build linux

package shm_test

import (
	"errors"
	"fmt"
	"hash/maphash"
	"runtime/cgo"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/shm"
	"github.com/xproc-go/xproc/value"
)

// Types a process might open a segment of shared with: each holds
// something that means nothing in another process. They are not named:
// types of this module are identified by name too, and seeded must have
// the same fingerprint as shared.
type (
	// shared is a legal element type with the layout of seeded: two
	// 8-byte words, the second in a struct of its own, as in
	// maphash.Seed.
	shared = struct {
		N uint64
		S struct{ V uint64 }
	}
	seeded = struct {
		N    uint64
		Seed maphash.Seed
	}
	myMu     sync.Mutex
	withMyMu struct {
		N  uint64
		Mu myMu
	}
	myHandle   cgo.Handle
	withHandle struct {
		N uint64
		H myHandle
	}
)

func init() {
	// open-local NAME: open the value and the array NAME (made with
	// element type shared) as types holding process-local fields, and say
	// each error. Before such types were refused, the seeded one opened:
	// its layout is the same.
	testproc.Register("open-local", func(args []string) error {
		say := func(what string, err error) error {
			if !errors.Is(err, shm.ErrUnsupportedType) {
				return fmt.Errorf("%s: %v, want ErrUnsupportedType", what, err)
			}
			testproc.Say(what + ": " + err.Error())
			return nil
		}
		for _, err := range []error{
			func() error { _, err := value.Open[seeded](args[0]); return say("value seeded", err) }(),
			func() error { _, err := array.Open[seeded](args[0]+"-array", 3); return say("array seeded", err) }(),
			func() error { _, err := value.Open[withMyMu](args[0]); return say("value mymu", err) }(),
			func() error { _, err := value.Open[withHandle](args[0]); return say("value handle", err) }(),
			func() error {
				ty, err := shm.TypeOf[seeded]()
				if err == nil {
					_, err = shm.Open(args[0], shm.Spec{Kind: shm.KindValue, Type: ty})
				}
				return say("shm seeded", err)
			}(),
		} {
			if err != nil {
				return err
			}
		}
		testproc.Say("done")
		return nil
	})
}

// TestProcessLocalFieldAcrossProcesses: a process that opens a value or
// an array made with a legal type, as a type of the same layout holding
// a maphash.Seed (or a type declared as sync.Mutex, or as cgo.Handle),
// is refused with ErrUnsupportedType naming the field it wrote, and what
// to use instead.
func TestProcessLocalFieldAcrossProcesses(t *testing.T) {
	name := testproc.Name(t)
	v, err := value.Create(name, shared{N: 1})
	require.NoError(t, err)
	defer v.Close()
	arrName := name + "-array"
	a, err := array.Create[shared](arrName, 3)
	require.NoError(t, err)
	t.Cleanup(func() { shm.Remove(arrName) })
	defer a.Close()

	c := testproc.Start(t, "open-local", name)
	require.Contains(t, c.ExpectPrefix("value seeded: "), "field struct { N uint64; Seed maphash.Seed }.Seed is maphash.Seed, which works only within one process: a maphash Seed")
	require.Contains(t, c.ExpectPrefix("array seeded: "), "field struct { N uint64; Seed maphash.Seed }.Seed is maphash.Seed")
	mu := c.ExpectPrefix("value mymu: ")
	require.Contains(t, mu, "field shm_test.withMyMu.Mu is shm_test.myMu (declared as sync.Mutex), which works only within one process: use xsync.Mutex")
	require.NotContains(t, mu, "noCopy")
	require.Contains(t, c.ExpectPrefix("value handle: "), "field shm_test.withHandle.H is a uintptr (shm_test.myHandle)")
	require.Contains(t, c.ExpectPrefix("shm seeded: "), "field struct { N uint64; Seed maphash.Seed }.Seed is maphash.Seed")
	c.Expect("done")
	c.Wait()
}
