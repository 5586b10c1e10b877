// Package pool runs registered Go functions over many inputs in a pool
// of worker processes: Python's multiprocessing.Pool (map, imap,
// imap_unordered, starmap, apply, apply_async) and joblib's
// Parallel(n_jobs)(delayed(f)(x) for x in xs), for separately exec'd Go
// processes.
//
// # Basics
//
// Functions are registered with process.Register (or Register2, for
// Starmap) at package initialisation, and main calls process.Init first:
// the workers are this program started again (see package process).
//
//	var square = process.Register("square", func(ctx context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
//	func main() {
//		process.Init()
//		p, err := pool.New(ctx, pool.Workers(4))
//		defer p.Close(ctx)
//		squares, err := pool.Map(ctx, p, square, []int{0, 1, 2, 3})
//		for y, err := range pool.Imap(ctx, p, square, slices.Values(xs)) { ... }
//	}
//
// Inputs go to the workers in batches through a queue in shared memory
// (package queue), and results come back through another. Fixed-size,
// pointer-free arguments and results (numbers, arrays and structs of
// them) travel as raw bytes; any other type with encoding/gob, or the
// codec the function was registered with (process.Encoding). Batches
// are sized automatically (see ChunkSize): tiny calls go by thousands,
// long ones one by one. Imap reads its input in a goroutine of its own
// and sends what it has read so far, so a slow or blocking input holds
// back no result. Large data is better shared than sent: create a
// value.Value or array.Array and open it by name in the function.
//
// # Failures
//
// Nothing a worker does makes a call hang:
//
//   - A function that returns an error or panics fails its call with a
//     *TaskError (the worker's pid, the message, the stack of a panic);
//     the other calls go on and the pool stays usable.
//   - A worker killed in the middle of a call (SIGKILL, the OOM killer) is
//     seen through its pidfd and replaced, and the calls of the batch it
//     was running fail at once with a *TaskError wrapping ErrWorkerDied
//     and the worker's exit (signal or status), or run again if Retries
//     allows. The other calls go on. A worker takes a batch from the
//     tasks queue as a lease, and acknowledges it once it has noted in
//     shared memory the batch it runs: the lease covers a death before
//     that, the note (which the parent reads when the worker dies) one
//     after, and the batch's room in the queue is free while it runs, so
//     that a call that runs for hours holds up no other. (A lease held
//     until the batch is answered, as the project's design notes first had it, stalls the
//     queue behind a long batch once the ring has gone round.)
//   - An argument or a result that cannot be encoded or decoded fails its
//     call with process.ErrCodec.
//   - When a call's context ends, it stops sending inputs, and the
//     functions running its batches see their context end (within a few
//     milliseconds: the call is named in shared memory, which the workers
//     watch). A worker still running one after the grace period (its
//     function ignores its context) is killed with SIGKILL and replaced.
//     The call returns ctx.Err() at once (an Imap yields no result
//     after that, even one already arrived, and ends with ctx.Err()).
//     (Not SIGTERM, as the design notes first had it: a signal cannot
//     say which call to stop, and would end the batch of another call
//     that the worker had moved on to.)
//   - A panic, or runtime.Goexit, in the caller's code that runs within
//     a call (an Imap's input iterator or loop body, a Progress
//     function) cancels the call's work in the workers as an ended
//     context does, and goes on to the caller unchanged.
//   - A worker whose resident memory passes MaxRSS while it runs a
//     batch (a watchdog looks every 5ms) fails that batch's calls with
//     ErrMaxRSS, exits and is replaced; the other calls go on.
//
// Workers never outlive the program (package process), and Close and
// Terminate reap every one: no child process, no zombie and no segment
// is left (the queues are anonymous).
//
// # Caveats
//
// An Imap's input iterator that blocks for ever keeps the goroutine
// reading it for ever (Imap itself returns when its context ends, and
// the pool goes on); one that yields again after Imap has returned is
// stopped then.
//
// Functions must be registered in every process alike, at package
// initialisation; one registered later is unknown to the workers
// (process.ErrUnknownFunc). A call may run twice when Retries is set, or
// when a worker dies after its result was sent and before the batch was
// acknowledged (the second result is dropped): calls should not have
// effects that must happen once. An
// argument or a result that takes more than a message, 2 MiB less a few
// dozen bytes of headers, encoded fails its call
// (queue.ErrTooLarge); batches are cut to fit, so only a single call's
// value is bound by this: split the work, or share the data by name (an
// array.Array) and send the name.
package pool
