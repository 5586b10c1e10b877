package pipe_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xproc-go/xproc/internal/testproc"
	"github.com/xproc-go/xproc/pipe"
	"github.com/xproc-go/xproc/queue"
	"github.com/xproc-go/xproc/shm"
)

// The tests of CPython's Lib/test/_test_multiprocessing.py for
// connections (_TestConnection.test_connection, test_duplex_false,
// _TestPoll.test_strings and test_dont_merge), ported with every peer a
// separate process, and more.

func init() {
	testproc.Register("echo", func(args []string) error {
		var e *pipe.End
		var err error
		if args[0] == "fd" {
			e, err = pipe.OpenFile(os.NewFile(3, "pipe"))
		} else {
			e, err = pipe.Open(args[0])
		}
		if err != nil {
			return err
		}
		defer e.Close()
		for {
			msg, err := e.Recv(bg)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := e.Send(bg, msg); err != nil {
				return err
			}
		}
	})
	testproc.Register("send-strings", func(args []string) error {
		e, err := pipe.Open(args[0])
		if err != nil {
			return err
		}
		defer e.Close()
		for _, s := range args[1:] {
			// Pacing as in CPython's test, not synchronisation.
			time.Sleep(100 * time.Millisecond)
			if err := e.Send(bg, []byte(strings.TrimPrefix(s, "="))); err != nil {
				return err
			}
		}
		return nil
	})
	testproc.Register("open-and-wait", func(args []string) error {
		e, err := pipe.Open(args[0])
		if err != nil {
			return err
		}
		if len(args) > 1 {
			for _, m := range args[1:] {
				if err := e.Send(bg, []byte(m)); err != nil {
					return err
				}
			}
		}
		testproc.Say("open")
		if err := testproc.Await("close"); err != nil {
			return err
		}
		return e.Close()
	})
}

func create(t *testing.T, o pipe.Options) (string, *pipe.End) {
	t.Helper()
	name := testproc.Name(t)
	e, err := pipe.Create(name, o)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return name, e
}

func TestPythonConnection(t *testing.T) {
	name, conn := create(t, pipe.Options{})
	child := testproc.Start(t, "echo", name)
	ok, err := conn.Poll(ctxDone())
	require.NoError(t, err)
	assert.False(t, ok, "nothing to poll")
	msgs := [][]byte{[]byte("hello world"), {}, bytes.Repeat([]byte("hello world"), 10), {}, {0, 1, 2, 3}}
	for _, m := range msgs {
		require.NoError(t, conn.Send(bg, m))
		got, err := conn.Recv(bg)
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}

	// RecvInto: a big enough buffer, then one too small, which keeps the
	// message (where Python's BufferTooShort consumes it).
	require.NoError(t, conn.Send(bg, []byte("hello world")))
	ok, err = conn.Poll(bg)
	require.NoError(t, err)
	assert.True(t, ok)
	small := make([]byte, 5)
	_, err = conn.RecvInto(bg, small)
	require.ErrorIs(t, err, io.ErrShortBuffer)
	var sb *pipe.ShortBufferError
	require.ErrorAs(t, err, &sb)
	assert.Equal(t, 11, sb.Need)
	buf := make([]byte, 20)
	n, err := conn.RecvInto(bg, buf)
	require.NoError(t, err)
	assert.Equal(t, "hello world", string(buf[:n]))

	// Poll with nothing to read gives up after about the timeout.
	start := time.Now()
	ctx, cancel := timeout(100 * time.Millisecond)
	ok, err = conn.Poll(ctx)
	cancel()
	took := time.Since(start)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.GreaterOrEqual(t, took, 100*time.Millisecond)
	assert.Less(t, took, 1100*time.Millisecond, "generous bound")

	// 64 MiB, larger than the ring: streamed, whole.
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	require.NoError(t, conn.Send(bg, big))
	got, err := conn.Recv(bg)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, got), "64 MiB echoed")

	require.NoError(t, conn.Close())
	child.Wait()
}

func ctxDone() context.Context {
	ctx, cancel := context.WithCancel(bg)
	cancel()
	return ctx
}

func TestPythonDuplexFalse(t *testing.T) {
	name, w := create(t, pipe.Options{Direction: pipe.CreatorSends})
	child := testproc.Start(t, "open-and-wait", name)
	child.Expect("open")
	require.NoError(t, w.Send(bg, []byte{1}))
	_, err := w.Recv(bg)
	require.ErrorIs(t, err, pipe.ErrDirection)
	_, err = w.Poll(bg)
	require.ErrorIs(t, err, pipe.ErrDirection)
	_, err = w.RecvInto(bg, nil)
	require.ErrorIs(t, err, pipe.ErrDirection)
	child.Send("close")
	child.Wait()

	name, r := create(t, pipe.Options{Direction: pipe.OpenerSends})
	child = testproc.Start(t, "open-and-wait", name, "from the opener")
	child.Expect("open")
	require.ErrorIs(t, r.Send(bg, []byte{2}), pipe.ErrDirection)
	msg, err := r.Recv(bg)
	require.NoError(t, err)
	assert.Equal(t, "from the opener", string(msg))
	child.Send("close")
	child.Wait()
}

func TestPythonStrings(t *testing.T) {
	strs := []string{"hello", "", "a", "b", "", "bye", "", "lop"}
	name, a := create(t, pipe.Options{Direction: pipe.OpenerSends})
	args := []string{name}
	for _, s := range strs {
		args = append(args, "="+s)
	}
	child := testproc.Start(t, "send-strings", args...)
	for _, s := range strs {
		ctx, cancel := timeout(testproc.Bound)
		ok, err := a.Poll(ctx)
		cancel()
		require.NoError(t, err)
		require.True(t, ok)
		x, err := a.Recv(bg)
		require.NoError(t, err)
		assert.Equal(t, s, string(x))
	}
	_, err := a.Recv(bg)
	assert.Equal(t, io.EOF, err, "the child closed its end")
	child.Wait()
}

func TestPythonDontMerge(t *testing.T) {
	name, a := create(t, pipe.Options{})
	child := testproc.Start(t, "open-and-wait", name, "a", "b", "cd")
	child.Expect("open")
	for _, want := range []string{"a", "b", "cd"} {
		for range 2 {
			ok, err := a.Poll(bg)
			require.NoError(t, err)
			assert.True(t, ok)
		}
		msg, err := a.Recv(bg)
		require.NoError(t, err)
		assert.Equal(t, want, string(msg))
	}
	ok, err := a.Poll(ctxDone())
	require.NoError(t, err)
	assert.False(t, ok)
	child.Send("close")
	child.Wait()
}

func TestPeerClosedOrKilled(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name, e := create(t, pipe.Options{})
		child := testproc.Start(t, "open-and-wait", name, "last words")
		child.Expect("open")
		if kill {
			child.Kill()
		} else {
			child.Send("close")
			child.Wait()
		}
		msg, err := e.Recv(bg)
		require.NoError(t, err, "what was sent before is read first")
		assert.Equal(t, "last words", string(msg))
		ctx, cancel := timeout(testproc.Bound)
		_, err = e.Recv(ctx)
		cancel()
		assert.Equal(t, io.EOF, err)
		ok, err := e.Poll(bg)
		require.NoError(t, err)
		assert.True(t, ok, "Poll says a Recv would not block")
		require.ErrorIs(t, e.Send(bg, []byte("x")), pipe.ErrPeerClosed)
	}
}

// TestSendToDeadPeer: once the peer is killed, Send fails with
// ErrPeerClosed although nothing is blocked: the peer's exit is seen
// through its pidfd. The sends use a cancelled context, so that a full
// ring gives context.Canceled at once rather than a blocked call, whose
// periodic check would find the death by itself; with only that check,
// ErrPeerClosed never comes.
func TestSendToDeadPeer(t *testing.T) {
	name, e := create(t, pipe.Options{Size: 64 << 10})
	child := testproc.Start(t, "open-and-wait", name)
	child.Expect("open")
	require.NoError(t, e.Send(bg, []byte("before")), "the peer's identity is learnt on a call")
	child.Kill()
	cancelled, cancel := context.WithCancel(bg)
	cancel()
	var err error
	testproc.Within(t, 2*time.Second, "Send to a dead peer failing", func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if err = e.Send(cancelled, []byte("x")); err != nil && !errors.Is(err, context.Canceled) {
				break // sent (nil) or ring full (Canceled): go on; anything else ends it
			}
		}
	})
	require.ErrorIs(t, err, pipe.ErrPeerClosed)
	_, err = e.Recv(bg)
	assert.Equal(t, io.EOF, err)
}

func TestBusyAndBadInput(t *testing.T) {
	name, e := create(t, pipe.Options{Size: 4096, MaxMessage: 1 << 20})
	child := testproc.Start(t, "open-and-wait", name)
	child.Expect("open")
	_, err := pipe.Open(name)
	require.ErrorIs(t, err, pipe.ErrBusy)
	err = e.Send(bg, make([]byte, 1<<20+1))
	require.ErrorIs(t, err, pipe.ErrTooLarge)
	child.Send("close")
	child.Wait()
	_, err = pipe.Open(name)
	require.ErrorIs(t, err, pipe.ErrBusy, "a pipe connects two ends once")

	_, err = pipe.Create(testproc.Name(t), pipe.Options{Direction: 7})
	require.ErrorIs(t, err, shm.ErrInvalid)

	qname := testproc.Name(t)
	q, err := queue.Create(qname, queue.Options{})
	require.NoError(t, err)
	defer q.Close()
	_, err = pipe.Open(qname)
	require.ErrorIs(t, err, shm.ErrKind)
	_, err = queue.Open(name)
	require.ErrorIs(t, err, shm.ErrKind)

	require.NoError(t, e.Close())
	require.ErrorIs(t, e.Send(bg, nil), pipe.ErrClosed)
	_, err = e.Recv(bg)
	require.ErrorIs(t, err, pipe.ErrClosed)
}

func TestAnonymousAndStream(t *testing.T) {
	e, err := pipe.CreateAnonymous(pipe.Options{Size: 4096})
	require.NoError(t, err)
	defer e.Close()
	child := testproc.StartCmd(t, "echo", func(c *exec.Cmd) { c.ExtraFiles = []*os.File{e.File()} }, "fd")
	// The stream view: io.Copy through the echo, in chunks larger than
	// the ring.
	src := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	go func() {
		w := io.Writer(e)
		for p := src; len(p) > 0; {
			n := min(len(p), 3000)
			if _, err := w.Write(p[:n]); err != nil {
				t.Error(err)
				return
			}
			if _, err := w.Write(nil); err != nil { // an empty message: no bytes in the stream
				t.Error(err)
				return
			}
			p = p[n:]
		}
	}()
	got := make([]byte, 0, len(src))
	for len(got) < len(src) {
		n, err := e.Read(got[len(got):cap(got)])
		require.NoError(t, err)
		require.Positive(t, n, "Read returned 0 bytes and no error (io.Reader discourages it)")
		got = got[:len(got)+n]
	}
	assert.True(t, bytes.Equal(src, got))
	require.NoError(t, e.Close())
	child.Wait()
}

// TestUseAfterClose: after Close, every call on the end fails with
// ErrClosed, and Close again does nothing.
func TestUseAfterClose(t *testing.T) {
	_, e := create(t, pipe.Options{})
	require.NoError(t, e.Close())
	require.NoError(t, e.Close(), "Close is idempotent")
	buf := make([]byte, 8)
	for op, f := range map[string]func() error{
		"Send":     func() error { return e.Send(bg, nil) },
		"Recv":     func() error { _, err := e.Recv(bg); return err },
		"RecvInto": func() error { _, err := e.RecvInto(bg, buf); return err },
		"Poll":     func() error { _, err := e.Poll(bg); return err },
		"Read":     func() error { _, err := e.Read(buf); return err },
		"Write":    func() error { _, err := e.Write(buf); return err },
	} {
		assert.ErrorIs(t, f(), pipe.ErrClosed, op)
	}
}

// TestForeignPeer: a peer in another PID namespace (another container
// sharing /dev/shm) is never taken for dead while it lives, however long
// a Recv waits; once it dies, Recv returns io.EOF (seen by the periodic
// check: its pidfd cannot be had from here).
func TestForeignPeer(t *testing.T) {
	name, e := create(t, pipe.Options{})
	child := testproc.StartInPIDNamespace(t, "open-and-wait", name)
	child.Expect("open")
	ctx, cancel := timeout(350 * time.Millisecond)
	defer cancel()
	_, err := e.Recv(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "a live peer of another namespace is not dead")
	require.NoError(t, e.Send(bg, []byte("x")))
	child.Kill()
	ctx2, cancel2 := timeout(testproc.Bound)
	defer cancel2()
	_, err = e.Recv(ctx2)
	assert.Equal(t, io.EOF, err)
}

// TestRecvCancelledMidMessage: a receive cancelled while a chunked message
// is arriving loses nothing: the next Recv or RecvInto goes on with the
// same message, and the one after it follows. The peer is an echo
// process; the cancellations happen between chunks, through a hook.
func TestRecvCancelledMidMessage(t *testing.T) {
	name, e := create(t, pipe.Options{Size: 64 << 10})
	child := testproc.Start(t, "echo", name)
	msg := make([]byte, 1<<20)
	for i := range msg {
		msg[i] = byte(i * 7 / 3)
	}
	ctx, cancel := timeout(testproc.Bound)
	defer cancel()
	require.NoError(t, e.Send(ctx, msg))
	require.NoError(t, e.Send(ctx, []byte("next")))

	chunks := 0
	cancelAfter := func(n int) (context.Context, context.CancelFunc) {
		c, cancel := context.WithCancel(ctx)
		chunks = 0
		pipe.AfterChunk(e, func() {
			if chunks++; chunks == n {
				cancel()
			}
		})
		return c, cancel
	}
	c1, cancel1 := cancelAfter(3)
	_, err := e.Recv(c1)
	cancel1()
	require.ErrorIs(t, err, context.Canceled, "cancelled after 3 chunks")

	_, err = e.RecvInto(ctx, make([]byte, 100))
	var sb *pipe.ShortBufferError
	require.ErrorAs(t, err, &sb, "the half-received message is still the next one")
	assert.Equal(t, len(msg), sb.Need)

	buf := make([]byte, 2<<20)
	c2, cancel2 := cancelAfter(5)
	_, err = e.RecvInto(c2, buf)
	cancel2()
	require.ErrorIs(t, err, context.Canceled, "cancelled again, 5 chunks later")

	pipe.AfterChunk(e, nil)
	got, err := e.Recv(ctx)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(msg, got), "the whole message, once (got %d bytes)", len(got))
	got, err = e.Recv(ctx)
	require.NoError(t, err)
	assert.Equal(t, "next", string(got))
	require.NoError(t, e.Close())
	child.Wait()
}
