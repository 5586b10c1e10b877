package pipe

import (
	"context"

	"github.com/xproc-go/xproc/internal/ring"
)

// Hooks for tests in package pipe_test.

// Flag bits of a pipe's records: a message's first chunk (its aux word is
// the whole message's length), a chunk with more to follow, a chunk
// after the first.
const (
	FlagFirst = ring.FlagFirst
	FlagMore  = ring.FlagMore
	FlagChunk = ring.FlagChunk
)

// SendRaw puts one record of data on e's sending ring with the given
// flags and aux word, as a faulty or hostile peer might: no check of its
// own. It fails with ring.ErrFull if there is no room.
func SendRaw(e *End, data []byte, flags uint16, aux uint64) error {
	var s ring.Slot
	if err := e.send.Reserve(context.Background(), len(data), flags, aux, false, &s); err != nil {
		return err
	}
	copy(s.Data, data)
	e.send.Commit(&s)
	return nil
}

// ChunkSize returns the largest record payload of e's rings.
func ChunkSize(e *End) int { return int(e.send.MaxPayload()) }

// AfterChunk sets a function e's receives call after taking each chunk of
// a chunked message but its last.
func AfterChunk(e *End, f func()) { e.afterChunk = f }
