package pipe_test

import (
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/pipe"
)

// FuzzPipe feeds a receiver records framed as a faulty or hostile sender
// might: any flags (first chunk, more to come, a later chunk), any
// announced length, any sizes. Whatever arrives, Recv and RecvInto may
// return messages, io.EOF once the sender has closed, a short-buffer
// error or ErrCorrupt; they never panic, never return a message longer
// than the pipe's maximum, and come to io.EOF. (TestHugeAnnouncedLength
// checks what a receive allocates.)
//
// Input: records of 4 bytes: flags (low 3 bits), length (one byte, times
// a sixteenth of the chunk size), and an announced length (a power of
// two, from 1 to 2^63).
func FuzzPipe(f *testing.F) {
	f.Add([]byte{0, 3, 0, 0})
	f.Add([]byte{1 | 2, 16, 12, 0, 4 | 2, 16, 0, 0, 4, 4, 0, 0})
	f.Add([]byte{1 | 2, 16, 40, 0, 4, 16, 0, 0})
	f.Add([]byte{1, 16, 63, 0, 2, 4, 0, 0, 4, 1, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxMsg = 1 << 20
		name := testproc.Name(t)
		recv, err := pipe.Create(name, pipe.Options{Size: 16 << 10, MaxMessage: maxMsg})
		if err != nil {
			t.Fatal(err)
		}
		defer recv.Close()
		defer recv.Unlink()
		send, err := pipe.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		chunk := pipe.ChunkSize(send)
		records := 0
		for i := 0; i+4 <= len(in) && records < 64; i += 4 {
			var flags uint16
			for bit, f := range []uint16{pipe.FlagFirst, pipe.FlagMore, pipe.FlagChunk} {
				if in[i]&(1<<bit) != 0 {
					flags |= f
				}
			}
			n := min(int(in[i+1])*chunk/16, chunk)
			aux := uint64(1) << (in[i+2] % 64)
			if binary.LittleEndian.Uint16(in[i+2:])&0x100 != 0 {
				aux = uint64(n) // an announced length that fits
			}
			if pipe.SendRaw(send, make([]byte, n), flags, aux) != nil {
				break // full
			}
			records++
		}
		send.Close()

		buf := make([]byte, 100)
		for calls := 0; ; calls++ {
			if calls > records+1 {
				t.Fatalf("%d receive calls for %d records without io.EOF", calls, records)
			}
			var msg []byte
			var err error
			if calls%2 == 0 {
				var n int
				n, err = recv.RecvInto(bg, buf)
				msg = buf[:max(n, 0)]
			} else {
				msg, err = recv.Recv(bg)
			}
			var short *pipe.ShortBufferError
			switch {
			case errors.Is(err, io.EOF):
				return
			case errors.As(err, &short):
				calls-- // nothing was taken: the next call is a Recv
				msg, err = recv.Recv(bg)
				if errors.Is(err, io.EOF) {
					return
				}
			}
			if err != nil && !errors.Is(err, pipe.ErrCorrupt) {
				t.Fatalf("receive: %v", err)
			}
			if len(msg) > maxMsg {
				t.Fatalf("a message of %d bytes from a pipe of at most %d", len(msg), maxMsg)
			}
		}
	})
}

// TestHugeAnnouncedLength: a first chunk announcing a message of 1 TiB
// (as large as the pipe's recorded maximum, which a damaged file may set
// that high) makes a receiver take memory as chunks arrive, not the
// announced length ahead: the chunks never come, and Recv ends with
// io.EOF having taken a few MiB.
func TestHugeAnnouncedLength(t *testing.T) {
	name := testproc.Name(t)
	recv, err := pipe.Create(name, pipe.Options{Size: 16 << 10, MaxMessage: 1 << 40})
	require.NoError(t, err)
	defer recv.Close()
	defer recv.Unlink()
	send, err := pipe.Open(name)
	require.NoError(t, err)
	require.NoError(t, pipe.SendRaw(send, make([]byte, 100), pipe.FlagFirst|pipe.FlagMore, 1<<40))
	send.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = recv.Recv(bg)
	runtime.ReadMemStats(&after)
	assert.ErrorIs(t, err, io.EOF)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "bytes allocated by Recv")
}
