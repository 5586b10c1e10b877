package pool

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/vbauerster/mpb/v8"
)

// read returns what was written through l, a lockedWriter over a
// bytes.Buffer.
func read(l *lockedWriter) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.(*bytes.Buffer).String()
}

// TestBarBoardSharesFrames: the bars of calls under way at once are
// drawn in one frame, a line each, and each frame is erased as a whole
// (cursor up two lines): bars of their own would each redraw the last
// line over the other's. The board shuts its container down with the
// last bar.
func TestBarBoardSharesFrames(t *testing.T) {
	out := &lockedWriter{w: new(bytes.Buffer)}
	b := &barBoard{out: out, opts: []mpb.ContainerOption{mpb.WithRefreshRate(time.Millisecond), mpb.WithWidth(80), mpb.WithAutoRefresh()}}
	r1, r2 := b.reporter(2), b.reporter(2)
	r1(5, 10, running)
	r2(3, 10, running)
	// Both bars are up until finished: watch the frames go by.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(read(out), "\x1b[2A\x1b[J") && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // observing the renderer, not synchronising
	}
	r1(10, 10, finished)
	r2(10, 10, finished)
	got := read(out)
	assert.True(t, strings.Contains(got, "\x1b[2A\x1b[J"), "no frame of two lines in %d bytes of output", len(got))
	assert.Contains(t, got, "5 / 10")
	assert.Contains(t, got, "3 / 10")
	b.mu.Lock()
	defer b.mu.Unlock()
	assert.Nil(t, b.p, "the container goes with the last bar")
	assert.Zero(t, b.bars)
}
