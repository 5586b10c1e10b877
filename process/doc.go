// Package process runs registered Go functions in worker processes:
// Python's multiprocessing.Process for a language that cannot fork.
//
// # Basics
//
// A worker is this same program started again (/proc/self/exe) with an
// environment variable naming the function to run. So functions are
// registered by name, at package initialisation, the way flag
// definitions and database/sql drivers are, and main calls Init first:
//
//	var square = process.Register("square", func(ctx context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
//	func main() {
//		process.Init() // in a worker: runs the function and exits
//		p, err := process.Start(ctx, square, 7)
//		...
//		y, err := p.Wait(ctx) // 49
//	}
//
// The argument and the result travel between the processes through
// pipes, encoded with encoding/gob, or with the codec given to Register
// (Encoding: JSON, or protobuf, msgpack... over their libraries). Shared
// data goes through segments
// (package value and array): by name, or as anonymous segments handed to
// the worker with the Files option and mapped there with File(i) and
// value.OpenFile or array.OpenFile.
//
// Test binaries call Init at the top of TestMain, so that tests can start
// workers.
//
// # Process death
//
// A worker never outlives its parent. It inherits the read end of a
// "lifeline" pipe whose write end only the parent holds; when the parent
// dies, however it dies, the kernel closes that end and the worker exits.
// As a second line, workers are started with a parent-death signal
// (SIGKILL); because the kernel sends it when the thread that forked the
// child exits, not the process, all workers are forked from one OS thread
// that never exits.
//
// A worker that dies is seen by Wait, with an *ExitError naming the
// signal or exit status (errors.Is ErrDied), and by ExitCode, which gives
// -N for death by signal N, as Python's exitcode does. Terminate is
// Python's terminate(): the worker dies of SIGTERM (exit code -15).
// Before it dies, Go code gets to clean up: the function's context is
// cancelled, and the worker dies as soon as the function returns, or
// after TerminateGrace (half a second) if it has not returned by then.
// Kill (SIGKILL, -9) gives no such chance. Signals go through the
// process's pidfd (Go's os.Process holds one), so a pid reused after the
// worker exited is never signalled.
//
// A program whose main does not call Init would, started as a worker, run
// the whole program again, and start workers of its own, without end.
// The worker detects it: Start called before Init in a worker stops it,
// and a worker that has not reached Init 10 seconds after starting exits;
// its parent's Wait then returns ErrNoInit, as it does for a worker that
// exits without reaching Init.
//
// # Caveats
//
// Linux only: elsewhere Start returns ErrNotSupported. Start costs the
// start-up of the program (a few milliseconds for a Go binary); package
// pool keeps workers running to amortise it.
package process
