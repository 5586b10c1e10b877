// Rings in these tests live in anonymous shared mappings, as in a
// segment: the race detector does not watch such memory (a ring's
// speculative reads of reused records are benign by design, and would be
// reported in Go memory), so the rings' own synchronisation is what these
// tests check.

//go:build linux

package ring_test

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/ring"
)

func newRing(t testing.TB, cfg ring.Config) *ring.Ring {
	t.Helper()
	mem, err := syscall.Mmap(-1, 0, int(ring.MemSize(cfg)), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_ANONYMOUS)
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Munmap(mem) })
	r, err := ring.New(mem, cfg)
	require.NoError(t, err)
	return r
}

var bg = context.Background()

func put(t testing.TB, r *ring.Ring, msg []byte, block bool) error {
	var s ring.Slot
	err := r.Reserve(bg, len(msg), 0, 0, block, &s)
	if err != nil {
		return err
	}
	copy(s.Data, msg)
	r.Commit(&s)
	return nil
}

func get(t testing.TB, r *ring.Ring, block bool) ([]byte, error) {
	var s ring.Slot
	err := r.Claim(bg, nil, block, &s)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(s.Data))
	copy(out, s.Data)
	require.NoError(t, r.Release(&s))
	return out, nil
}

func TestConfig(t *testing.T) {
	for _, c := range []ring.Config{
		{Size: 1000, MaxPayload: 10}, {Size: 2048, MaxPayload: 10}, {Size: 1 << 32, MaxPayload: 10},
		{Size: 4096, MaxPayload: 4096}, {Size: 4096, MaxPayload: ring.MaxPayloadFor(4096) + 1},
	} {
		assert.Error(t, c.Check(), "%+v", c)
	}
	assert.NoError(t, ring.Config{Size: 4096, MaxPayload: ring.MaxPayloadFor(4096)}.Check())
	_, err := ring.New(make([]byte, 100), ring.Config{Size: 4096, MaxPayload: 100})
	assert.Error(t, err)
}

// TestFIFO puts and gets messages of every size from 0 to the maximum,
// so that records wrap and pad at every offset.
func TestFIFO(t *testing.T) {
	cfg := ring.Config{Size: 4096, MaxPayload: 700}
	r := newRing(t, cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	var pending [][]byte
	for i := range 20000 {
		if len(pending) < 3 && rng.IntN(2) == 0 || len(pending) == 0 {
			msg := make([]byte, i%701)
			for j := range msg {
				msg[j] = byte(i + j)
			}
			err := put(t, r, msg, false)
			if errors.Is(err, ring.ErrFull) {
				require.NotEmpty(t, pending, "full when empty")
			} else {
				require.NoError(t, err)
				pending = append(pending, msg)
				continue
			}
		}
		got, err := get(t, r, false)
		require.NoError(t, err)
		require.Equal(t, pending[0], got, "message %d", i)
		pending = pending[1:]
	}
	for range pending {
		_, err := get(t, r, false)
		require.NoError(t, err)
	}
	_, err := get(t, r, false)
	require.ErrorIs(t, err, ring.ErrEmpty)
	assert.Equal(t, 0, r.Len())
	err = r.Reserve(bg, 701, 0, 0, false, new(ring.Slot))
	assert.ErrorIs(t, err, ring.ErrTooLarge)
}

func TestFullAndMaxMessages(t *testing.T) {
	r := newRing(t, ring.Config{Size: 4096, MaxPayload: 64, MaxMessages: 6})
	for i := range 6 {
		require.NoError(t, put(t, r, []byte{byte(i)}, false))
	}
	require.ErrorIs(t, put(t, r, []byte{6}, false), ring.ErrFull)
	assert.Equal(t, 6, r.Len())
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	err := r.Reserve(ctx, 1, 0, 0, true, new(ring.Slot))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	got, err := get(t, r, false)
	require.NoError(t, err)
	assert.Equal(t, []byte{0}, got)
	require.NoError(t, put(t, r, []byte{6}, false))

	// Bytes: 4096 / RecordLen(64) records of the largest message.
	r = newRing(t, ring.Config{Size: 4096, MaxPayload: 64})
	n := 0
	for put(t, r, make([]byte, 64), false) == nil {
		n++
	}
	assert.Equal(t, 4096/int(ring.RecordLen(64)), n)
}

// TestBlocking: a blocked consumer is woken by a put, a blocked producer
// by a get.
func TestBlocking(t *testing.T) {
	r := newRing(t, ring.Config{Size: 4096, MaxPayload: 1000})
	r.Spin = 0
	done := make(chan []byte)
	go func() {
		b, err := get(t, r, true)
		assert.NoError(t, err)
		done <- b
	}()
	require.NoError(t, put(t, r, []byte("x"), true))
	assert.Equal(t, []byte("x"), <-done)

	for put(t, r, make([]byte, 1000), false) == nil {
	}
	go func() { done <- nil; assert.NoError(t, put(t, r, []byte("y"), true)); done <- nil }()
	<-done
	_, err := get(t, r, false)
	require.NoError(t, err)
	<-done
}

// TestMPMC: goroutines put and get concurrently; every message arrives
// once, intact, in order per producer.
func TestMPMC(t *testing.T) {
	r := newRing(t, ring.Config{Size: 1 << 14, MaxPayload: 300})
	const producers, consumers, per = 4, 4, 20000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(p), 9))
			for i := range per {
				msg := make([]byte, 12+rng.IntN(289))
				binary.LittleEndian.PutUint32(msg, uint32(p))
				binary.LittleEndian.PutUint32(msg[4:], uint32(i))
				for j := 12; j < len(msg); j++ {
					msg[j] = byte(rng.Uint32())
				}
				binary.LittleEndian.PutUint32(msg[8:], crc32.ChecksumIEEE(msg[12:]))
				if err := put(t, r, msg, true); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := make([][]bool, producers)
	for p := range seen {
		seen[p] = make([]bool, per)
	}
	var mu sync.Mutex
	var cw sync.WaitGroup
	total := 0
	for range consumers {
		cw.Add(1)
		go func() {
			defer cw.Done()
			last := make([]int, producers)
			for p := range last {
				last[p] = -1
			}
			for {
				mu.Lock()
				if total == producers*per {
					mu.Unlock()
					return
				}
				mu.Unlock()
				ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
				var s ring.Slot
				err := r.Claim(ctx, nil, true, &s)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					continue
				}
				if !assert.NoError(t, err) {
					return
				}
				msg := s.Data
				p, i := int(binary.LittleEndian.Uint32(msg)), int(binary.LittleEndian.Uint32(msg[4:]))
				ok := crc32.ChecksumIEEE(msg[12:]) == binary.LittleEndian.Uint32(msg[8:])
				assert.NoError(t, r.Release(&s))
				mu.Lock()
				assert.True(t, ok, "torn message %d/%d", p, i)
				assert.False(t, seen[p][i], "duplicate %d/%d", p, i)
				assert.Greater(t, i, last[p], "order")
				seen[p][i] = true
				last[p] = i
				total++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	cw.Wait()
	assert.Equal(t, producers*per, total)
	assert.Equal(t, 0, r.Len())
}

// TestReturnAndRecovery: Nak'd records and records of dead consumers are
// delivered again, first, with their delivery count; a dead writer's
// record is skipped.
func TestReturnAndRecovery(t *testing.T) {
	r := newRing(t, ring.Config{Size: 4096, MaxPayload: 64})
	self := owner.Self()
	ghost := owner.ID(uint64(self) ^ 1<<40) // another process, dead
	r.SetAlive(func(id owner.ID) bool { return id == self })
	for _, m := range []string{"a", "b", "c"} {
		require.NoError(t, put(t, r, []byte(m), false))
	}
	var s ring.Slot
	err := r.Claim(bg, nil, false, &s)
	require.NoError(t, err)
	assert.Equal(t, "a", string(s.Data))
	assert.Equal(t, 1, s.Hdr.Deliveries())
	require.NoError(t, r.Return(&s, 0))
	err = r.Claim(bg, nil, false, &s)
	require.NoError(t, err)
	assert.Equal(t, "a", string(s.Data))
	assert.Equal(t, 2, s.Hdr.Deliveries())
	assert.NotZero(t, s.Hdr.Flags()&ring.FlagReturned)
	assert.Zero(t, s.Hdr.DiedOwner())

	// "a" is now held by a process that died.
	r.ForgeState(s.Pos, ring.Leased(ghost))
	assert.ErrorIs(t, r.Release(&s), ring.ErrNotOwner)
	var b ring.Slot
	err = r.Claim(bg, nil, false, &b)
	require.NoError(t, err)
	assert.Equal(t, "b", string(b.Data))
	v, ret, err := r.Recover(bg)
	require.NoError(t, err)
	assert.Equal(t, 0, v)
	assert.Equal(t, 1, ret)
	err = r.Claim(bg, nil, false, &s)
	require.NoError(t, err)
	assert.Equal(t, "a", string(s.Data))
	assert.Equal(t, 3, s.Hdr.Deliveries())
	assert.Equal(t, ghost, s.Hdr.DiedOwner())
	require.NoError(t, r.Release(&s))
	require.NoError(t, r.Release(&b))

	// A writer that died blocks the ring until the scan voids its record.
	var w ring.Slot
	err = r.Reserve(bg, 5, 0, 0, false, &w)
	require.NoError(t, err)
	r.ForgeState(w.Pos, ring.Writing(ghost))
	require.NoError(t, put(t, r, []byte("d"), false))
	got, err := get(t, r, false)
	require.NoError(t, err)
	assert.Equal(t, "c", string(got))
	void := r.Stats().Void
	_, err = get(t, r, false)
	require.ErrorIs(t, err, ring.ErrEmpty, "blocked behind the dead writer")
	// That poll may have run the scan itself (a polling consumer does,
	// at most every CheckInterval); if not, Recover does.
	v, _, err = r.Recover(bg)
	require.NoError(t, err)
	assert.Equal(t, void+1, r.Stats().Void, "voided once, by the poll or by Recover (%d)", v)
	assert.Zero(t, r.Stats().Writing)
	got, err = get(t, r, false)
	require.NoError(t, err)
	assert.Equal(t, "d", string(got))
	assert.Equal(t, 0, r.Len())
}

// TestBlockedRecovery: a consumer blocked behind a dead writer is
// released by its own periodic scan.
func TestBlockedRecovery(t *testing.T) {
	r := newRing(t, ring.Config{Size: 4096, MaxPayload: 64})
	self := owner.Self()
	ghost := owner.ID(uint64(self) ^ 1<<40)
	r.SetAlive(func(id owner.ID) bool { return id == self })
	var w ring.Slot
	err := r.Reserve(bg, 5, 0, 0, false, &w)
	require.NoError(t, err)
	r.ForgeState(w.Pos, ring.Writing(ghost))
	require.NoError(t, put(t, r, []byte("e"), false))
	ctx, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	var s ring.Slot
	err = r.Claim(ctx, nil, true, &s)
	require.NoError(t, err)
	assert.Equal(t, "e", string(s.Data))
}

func TestCheck(t *testing.T) {
	r := newRing(t, ring.Config{Size: 4096, MaxPayload: 64})
	require.NoError(t, put(t, r, []byte("hello"), false))
	short := func(h ring.Header) error {
		if h.Len() > 3 {
			return &ring.ShortBufferError{Need: h.Len()}
		}
		return nil
	}
	err := r.Claim(bg, short, false, new(ring.Slot))
	var sb *ring.ShortBufferError
	require.ErrorAs(t, err, &sb)
	assert.Equal(t, 5, sb.Need)
	got, err := get(t, r, false)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(got))
}

func TestFlags(t *testing.T) {
	r := newRing(t, ring.Config{Size: 4096, MaxPayload: 64})
	require.NoError(t, put(t, r, []byte("x"), false))
	done := make(chan error)
	r2 := newRing(t, ring.Config{Size: 4096, MaxPayload: 64})
	go func() { _, err := get(t, r2, true); done <- err }()
	r.SetFlags(ring.NoPut)
	r2.SetFlags(ring.NoPut)
	assert.ErrorIs(t, <-done, ring.ErrShutdown)
	assert.ErrorIs(t, put(t, r, []byte("y"), false), ring.ErrShutdown)
	got, err := get(t, r, false)
	require.NoError(t, err)
	assert.Equal(t, "x", string(got))
	_, err = get(t, r, false)
	assert.ErrorIs(t, err, ring.ErrShutdown)
}

// TestDeadLockHolder: a producer killed holding the producers' lock,
// after moving the tail over its record but before counting it, is taken
// over by the next producer (after xsync's liveness interval), which
// repairs the count; the scan then voids the dead producer's record.
func TestDeadLockHolder(t *testing.T) {
	r := newRing(t, ring.Config{Size: 4096, MaxPayload: 64})
	self := owner.Self()
	ghost := owner.ID(uint64(self) ^ 1<<40) // our pid, another start time: dead
	r.SetAlive(func(id owner.ID) bool { return id == self })
	var w ring.Slot
	require.NoError(t, r.Reserve(bg, 5, 0, 0, false, &w))
	r.ForgeState(w.Pos, ring.Writing(ghost))
	r.ForgeDeadHolder(ghost)
	assert.Equal(t, 0, r.Len(), "the dead holder's record is not counted yet")
	ctx, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	var s ring.Slot
	require.NoError(t, r.Reserve(ctx, 1, 0, 0, true, &s), "the lock is taken over")
	copy(s.Data, "x")
	r.Commit(&s)
	assert.Equal(t, 2, r.Len(), "the count is repaired")
	v, _, err := r.Recover(bg)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	got, err := get(t, r, false)
	require.NoError(t, err)
	assert.Equal(t, "x", string(got))
	assert.Equal(t, 0, r.Len())
}

// TestShutdownDrainDespiteOverCount: a consumer killed between counting
// a removal and marking its record leaves Removed one too high, so Len
// says 0 while its lease still waits to be recovered. A shut-down ring
// must not tell consumers it is drained then: the message comes back and
// is delivered.
func TestShutdownDrainDespiteOverCount(t *testing.T) {
	r := newRing(t, ring.Config{Size: 4096, MaxPayload: 100})
	self := owner.Self()
	ghost := owner.ID(uint64(self) ^ 1<<40)
	r.SetAlive(func(id owner.ID) bool { return id == self })
	require.NoError(t, put(t, r, []byte("last"), false))
	var s ring.Slot
	require.NoError(t, r.Claim(bg, nil, false, &s))
	r.Control().Removed.Add(1)              // Release's count ...
	r.ForgeState(s.Pos, ring.Leased(ghost)) // ... and then its process died
	r.SetFlags(ring.NoPut)                  // Shutdown, not immediate
	assert.Zero(t, r.Len(), "the counts are one off")
	_, err := get(t, r, false)
	require.ErrorIs(t, err, ring.ErrEmpty, "not drained: a lease may come back")
	_, ret, err := r.Recover(bg)
	require.NoError(t, err)
	assert.Equal(t, 1, ret)
	got, err := get(t, r, false)
	require.NoError(t, err)
	assert.Equal(t, "last", string(got))
	_, err = get(t, r, false)
	require.ErrorIs(t, err, ring.ErrShutdown, "drained now")
}

// TestDeadLockHolderPolled: consumers that only poll (TryGet) take over
// the producers' lock from a producer killed holding it, repair the
// count, void its record and deliver what follows; on a shut-down ring
// they then learn it is drained, instead of finding it empty for ever.
func TestDeadLockHolderPolled(t *testing.T) {
	r := newRing(t, ring.Config{Size: 4096, MaxPayload: 64})
	self := owner.Self()
	ghost := owner.ID(uint64(self) ^ 1<<40) // our pid, another start time: dead
	r.SetAlive(func(id owner.ID) bool { return id == self })
	require.NoError(t, put(t, r, []byte("first"), false))
	var w ring.Slot
	require.NoError(t, r.Reserve(bg, 5, 0, 0, false, &w))
	r.ForgeState(w.Pos, ring.Writing(ghost))
	r.ForgeDeadHolder(ghost)
	r.SetFlags(ring.NoPut)
	var got []string
	deadline := time.Now().Add(time.Minute)
	for {
		require.True(t, time.Now().Before(deadline), "polling never got past the dead holder (got %q)", got)
		m, err := get(t, r, false)
		if errors.Is(err, ring.ErrShutdown) {
			break
		}
		if err == nil {
			got = append(got, string(m))
			continue
		}
		require.ErrorIs(t, err, ring.ErrEmpty)
		runtime.Gosched()
	}
	assert.Equal(t, []string{"first"}, got)
	assert.False(t, r.Control().Lock.Locked(), "taken over and released")
	assert.Zero(t, r.Stats().Writing, "the dead producer's record voided")
}
