//go:build linux

package ring_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/ring"
)

// FuzzRing runs operations on a ring whose records and control words the
// input corrupts (all but the producers' lock, which is package sync's).
// Whatever the bytes, no operation may panic or loop for ever; and until
// the first corruption, messages must come out as they went in.
//
// Input: a sequence of commands, each one byte of opcode and two of
// argument.
func FuzzRing(f *testing.F) {
	f.Add([]byte{0, 10, 0, 0, 5, 0, 1, 0, 0, 1, 0, 0})
	f.Add([]byte{0, 200, 0, 0, 200, 0, 0, 200, 0, 3, 40, 0, 1, 0, 0, 1, 0, 0})
	f.Add([]byte{0, 1, 0, 4, 8, 0, 1, 0, 0, 4, 130, 0, 1, 0, 0})
	f.Add([]byte{0, 100, 0, 2, 0, 0, 5, 0, 0, 1, 0, 0, 6, 0, 0})
	f.Add([]byte{0, 10, 0, 8, 50, 0, 0, 20, 0, 1, 0, 0, 1, 0, 0})
	f.Add([]byte{0, 10, 0, 5, 0x45, 0x30, 1, 0, 0, 0, 5, 0})
	f.Fuzz(func(t *testing.T, cmds []byte) {
		cfg := ring.Config{Size: 4096, MaxPayload: 300}
		r := newRing(t, cfg)
		self := owner.Self()
		ghost := owner.ID(uint64(self) ^ 1<<40)
		r.SetAlive(func(id owner.ID) bool { return id == self })
		var want [][]byte
		var held []ring.Slot
		corrupted := false
		seq := byte(0)
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%d commands took %v", len(cmds)/3, d)
			}
		}()
		for i := 0; i+3 <= len(cmds); i += 3 {
			arg := int(binary.LittleEndian.Uint16(cmds[i+1:]))
			switch cmds[i] % 9 {
			case 0: // put arg%400 bytes
				seq++
				msg := bytes.Repeat([]byte{seq}, arg%400)
				err := put(t, r, msg, false)
				if err == nil {
					want = append(want, msg)
				} else if !corrupted && !errors.Is(err, ring.ErrFull) && !errors.Is(err, ring.ErrTooLarge) {
					t.Fatalf("put: %v", err)
				}
			case 1: // get
				var s ring.Slot
				err := r.Claim(bg, nil, false, &s)
				if err != nil {
					if !corrupted && !errors.Is(err, ring.ErrEmpty) {
						t.Fatalf("get: %v", err)
					}
					break
				}
				if !corrupted {
					if len(want) == 0 || !bytes.Equal(s.Data, want[0]) {
						t.Fatalf("got %d bytes, want %d", len(s.Data), len(want[0]))
					}
					want = want[1:]
				}
				r.Release(&s)
			case 2: // claim and hold
				var s ring.Slot
				if err := r.Claim(bg, nil, false, &s); err == nil {
					held = append(held, s)
					corrupted = true // order no longer checked
				}
			case 3: // return or release a held record
				if len(held) > 0 {
					if arg%2 == 0 {
						r.Return(&held[0], 0)
					} else {
						r.Release(&held[0])
					}
					held = held[1:]
				}
			case 4: // corrupt a byte of the records
				r.Buf()[arg%len(r.Buf())] = byte(arg >> 8)
				corrupted = true
			case 5: // corrupt a control word (not the lock)
				c := r.Control()
				words := []func(uint64){
					c.Tail.Store, c.Head.Store, c.Put.Store, c.LastRec.Store, c.Void.Store,
					c.Read.Store, c.Returned.Store, c.Removed.Store,
				}
				v := uint64(arg>>3) * uint64(arg%7+1) * 8
				if arg&4 != 0 {
					v += uint64(arg>>12) % 8 // not on a word: a torn or hostile index
				}
				words[arg%len(words)](v)
				corrupted = true
			case 6: // a held record's owner dies
				if len(held) > 0 {
					r.ForgeState(held[0].Pos, ring.Leased(ghost))
					held = held[1:]
				}
				r.Recover(bg)
			case 7:
				r.Stats()
				r.Peek()
				r.Len()
			case 8: // a producer dies half-way through writing arg%300 bytes
				var s ring.Slot
				if err := r.Reserve(bg, arg%300, 0, 0, false, &s); err == nil {
					copy(s.Data, bytes.Repeat([]byte{0xee}, len(s.Data)/2))
					r.ForgeState(s.Pos, ring.Writing(ghost))
				}
				r.Recover(bg) // voids it: the messages after it come out in order
			}
		}
	})
}
