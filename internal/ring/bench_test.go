//go:build linux

package ring_test

import (
	"testing"

	"github.com/xproc-go/xproc/internal/ring"
)

// BenchmarkPutGet: one goroutine reserves, commits, claims and releases
// an 8-byte message: the ring's own cost, with no other core involved.
func BenchmarkPutGet(b *testing.B) {
	r := newRing(b, ring.Config{Size: 1 << 16, MaxPayload: 64})
	for b.Loop() {
		var s ring.Slot
		err := r.Reserve(bg, 8, 0, 0, false, &s)
		if err != nil {
			b.Fatal(err)
		}
		r.Commit(&s)
		var c ring.Slot
		if err := r.Claim(bg, nil, false, &c); err != nil {
			b.Fatal(err)
		}
		r.Release(&c)
	}
}

func BenchmarkReserveCommit(b *testing.B) {
	r := newRing(b, ring.Config{Size: 1 << 16, MaxPayload: 64})
	for b.Loop() {
		var s ring.Slot
		err := r.Reserve(bg, 8, 0, 0, false, &s)
		if err != nil {
			b.StopTimer()
			for {
				var c ring.Slot
				err := r.Claim(bg, nil, false, &c)
				if err != nil {
					break
				}
				r.Release(&c)
			}
			b.StartTimer()
			continue
		}
		r.Commit(&s)
	}
}
