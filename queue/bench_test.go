package queue_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/xproc-go/xproc/internal/qbench"
	"github.com/xproc-go/xproc/internal/testproc"
)

// Cross-process benchmarks: the workloads of internal/qbench (the same
// code "xproc bench" runs), with worker processes re-executed from the
// test binary. Start-up is not timed, and every run checks what arrived.

func init() {
	for _, role := range qbench.Roles {
		testproc.Register(role, func(args []string) error { return qbench.Worker(role, args, testproc.File) })
	}
}

func starter(b *testing.B) qbench.Starter {
	return func(role string, files []*os.File, args ...string) (qbench.Proc, error) {
		return child{testproc.StartCmd(b, role, func(c *exec.Cmd) { c.ExtraFiles = files }, args...)}, nil
	}
}

func report(b *testing.B, r qbench.Result, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.MsgRate()/1e6, "Mmsg/s")
	if r.Bytes > 0 {
		b.ReportMetric(r.ByteRate()/1e9, "GB/s")
	}
}

// BenchmarkThroughput: one producer process sends b.N messages of 64
// bytes or 4 KiB to one consumer process through a queue; peers: a Unix
// stream socket, a pipe (os.Pipe), and a buffered channel between two
// goroutines. Two producers and two consumers share a queue in "2p2c",
// and a Unix socket pair of kind SOCK_SEQPACKET (one end each) in
// "unix-seqpacket-2p2c".
func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{64, 4096} {
		name := map[int]string{64: "64B", 4096: "4KiB"}[size]
		b.Run(name+"/queue-1p1c", func(b *testing.B) {
			b.StopTimer()
			r, err := qbench.Queue(starter(b), b, testproc.Name(b), 1, 1, b.N, size)
			report(b, r, err)
		})
		if size == 64 {
			b.Run(name+"/queue-2p2c", func(b *testing.B) {
				b.StopTimer()
				r, err := qbench.Queue(starter(b), b, testproc.Name(b), 2, 2, b.N, size)
				report(b, r, err)
			})
			b.Run(name+"/unix-seqpacket-2p2c", func(b *testing.B) {
				b.StopTimer()
				r, err := qbench.Socket(starter(b), b, testproc.Name(b), 2, 2, b.N, size)
				report(b, r, err)
			})
		}
		for _, kind := range []string{"socket", "pipe"} {
			b.Run(name+"/unix-"+kind, func(b *testing.B) {
				b.StopTimer()
				r, err := qbench.FD(starter(b), b, kind, b.N, size)
				report(b, r, err)
			})
		}
		b.Run(name+"/channel-goroutines", func(b *testing.B) {
			b.StopTimer()
			r, err := qbench.Chan(b, b.N, size)
			report(b, r, err)
		})
	}
}

// BenchmarkOfInt64PutGet: one goroutine puts an int64 into a queue.Of and
// gets it back, against the same on a buffered channel.
func BenchmarkOfInt64PutGet(b *testing.B) {
	b.Run("queue.Of", func(b *testing.B) {
		b.StopTimer()
		if _, err := qbench.OfPutGet(b, testproc.Name(b), b.N); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("channel", func(b *testing.B) {
		b.StopTimer()
		if _, err := qbench.ChanPutGet(b, b.N); err != nil {
			b.Fatal(err)
		}
	})
}
