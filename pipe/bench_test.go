package pipe_test

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/xproc-go/xproc/internal/qbench"
	"github.com/xproc-go/xproc/internal/testproc"
)

func init() {
	for _, role := range qbench.Roles {
		testproc.Register(role, func(args []string) error { return qbench.Worker(role, args, testproc.File) })
	}
}

type child struct{ c *testproc.Child }

func (c child) Kill()       { c.c.Stop() }
func (c child) Wait() error { return c.c.Exit() }

func starter(b *testing.B) qbench.Starter {
	return func(role string, files []*os.File, args ...string) (qbench.Proc, error) {
		return child{testproc.StartCmd(b, role, func(c *exec.Cmd) { c.ExtraFiles = files }, args...)}, nil
	}
}

// BenchmarkPingPong bounces a 64-byte message between two processes and
// reports the median round trip: over a pipe with both ends spinning
// before they sleep (both running), and with no spinning (the receiver
// always asleep), against a bare futex pair (asleep), a Unix socket and a
// pair of os.Pipes.
func BenchmarkPingPong(b *testing.B) {
	run := func(b *testing.B, f func() (qbench.Result, error)) {
		b.StopTimer()
		r, err := f()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(r.Median().Nanoseconds()), "ns/rt-median")
	}
	b.Run("pipe-spinning", func(b *testing.B) {
		run(b, func() (qbench.Result, error) {
			return qbench.PipePingPong(starter(b), b, testproc.Name(b), b.N, 20*time.Microsecond)
		})
	})
	b.Run("pipe-sleeping", func(b *testing.B) {
		run(b, func() (qbench.Result, error) { return qbench.PipePingPong(starter(b), b, testproc.Name(b), b.N, 0) })
	})
	b.Run("bare-futex-sleeping", func(b *testing.B) {
		run(b, func() (qbench.Result, error) { return qbench.FutexPingPong(starter(b), b, testproc.Name(b), b.N) })
	})
	for _, kind := range []string{"socket", "pipe"} {
		b.Run("unix-"+kind, func(b *testing.B) {
			run(b, func() (qbench.Result, error) { return qbench.FDPingPong(starter(b), b, kind, b.N) })
		})
	}
}
