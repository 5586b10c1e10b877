// Package pipe connects two processes with a message pipe in shared
// memory: Python's multiprocessing.Pipe for separately exec'd processes,
// with no socket and no system call on the data path while both ends are
// running.
//
// # Basics
//
// One process makes the pipe and holds its first end; one other process
// takes the second end:
//
//	a, err := pipe.Create("chan", pipe.Options{})   // duplex by default
//	b, err := pipe.Open("chan")                     // in another process
//	err = a.Send(ctx, []byte("ping"))
//	msg, err := b.Recv(ctx)
//
// A third Open fails with ErrBusy. CreateAnonymous and OpenFile make a
// pipe with no name whose second end goes to a child through
// exec.Cmd.ExtraFiles. A one-way pipe (Options.Direction) refuses calls
// in the wrong direction with ErrDirection rather than hanging.
//
// Messages keep their boundaries: "a", "b" and "cd" sent arrive as three
// messages, and an empty message is a message (Poll reports it). A
// message larger than a quarter of the ring travels in chunks and arrives
// whole, up to Options.MaxMessage (1 GiB by default). RecvInto reuses a
// buffer and, if the buffer is too small, returns a *ShortBufferError
// (io.ErrShortBuffer) and keeps the message.
//
// When one end closes or its process dies, the other end's Recv returns
// io.EOF once it has read everything sent before, and its Send fails with
// ErrPeerClosed. An End is also an io.ReadWriteCloser: Write sends a
// message, Read reads the messages as one byte stream.
//
// # From Python
//
//	multiprocessing.Pipe()                 Create(name, Options{}) + Open(name)
//	Pipe(duplex=False)                     Options{Direction: CreatorSends}
//	conn.send_bytes(b), conn.recv_bytes()  Send(ctx, b), Recv(ctx)
//	conn.recv_bytes_into(buf)              RecvInto(ctx, buf)
//	conn.poll(timeout)                     Poll(ctx)  (deadline in ctx)
//	EOFError                               io.EOF
//	BufferTooShort                         *ShortBufferError (keeps the message)
//	conn.send(obj), conn.recv()            Send/Recv of bytes from a codec (queue.GobCodec)
//
// # Design
//
// A pipe is two single-producer, single-consumer rings of internal/ring,
// one per direction, in one segment: the ring of package queue, so that a
// message crosses a pipe as it crosses a queue (a claim, a copy, one
// release store), and a receiver spins for up to 20µs before it sleeps on
// a futex word, with a count of sleepers that spares the sender a system
// call while the receiver runs. The first ring's control block records
// the two ends' identities (pid and start time), so that a peer's death
// is told from its slowness.
//
// # Caveats
//
// A peer's death (as opposed to Close) is seen through its pidfd, within
// about a millisecond, once an end knows its peer (the opener at once, the
// creator at its first call after the peer opened, or within 100ms while
// blocked): Recv then returns io.EOF once everything sent before is read,
// and Send fails with ErrPeerClosed. A peer in another
// PID namespace (or on a kernel without pidfds), or one that execs, is
// noticed by a blocked call, every 100ms; until then a Send that finds
// room succeeds though nobody will read it. A message whose sender died
// half-way through its chunks is dropped.
//
// A Recv or RecvInto cancelled while a chunked message is arriving keeps
// the chunks that arrived, and the next Recv or RecvInto goes on with the
// same message: nothing is lost. A Send cancelled half-way leaves a
// truncated message, which the receiver drops (the sender got ctx.Err(),
// so it knows the message did not go).
//
// A pipe connects its two ends once: after the second end closes, Open
// fails with ErrBusy.
package pipe
