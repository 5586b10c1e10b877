package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/xproc-go/xproc/array"
	xsync "github.com/xproc-go/xproc/sync"
	"github.com/xproc-go/xproc/value"
)

// The demo runs the classic multiprocessing workloads with real worker
// processes (this program, re-executed) that share memory through xproc:
//
//   - a counter that every worker increments under the Value's lock;
//   - hogwild: workers add to every element of a float64 Array without
//     locks, then with atomic adds;
//   - Monte Carlo π: workers sample and write their hit counts into an
//     Array.
//
// Every run meets at a Barrier before starting and after finishing, so
// the times exclude process start-up; a worker that dies breaks the
// barrier and the demo reports it instead of hanging.

func init() {
	commands["demo"] = cmdDemo
	workers["demo-counter"] = demoCounterWorker
	workers["demo-hogwild"] = demoHogwildWorker
	workers["demo-pi"] = demoPiWorker
}

// demoParams are the demo's flags.
type demoParams struct {
	workers    int
	increments int
	elements   int
	passes     int
	samples    int
	tasks      int
}

// control is the shared state of one workload: start and finish lines,
// and progress for the display.
type control struct {
	Line     xsync.Barrier
	Progress atomic.Int64
}

const demoTimeout = 2 * time.Minute

func cmdDemo(args []string, w io.Writer) error {
	fs := newFlags("demo", "")
	var p demoParams
	fs.IntVar(&p.workers, "workers", 10, "worker processes")
	fs.IntVar(&p.increments, "increments", 10000, "locked increments per worker")
	fs.IntVar(&p.elements, "elements", 1<<16, "elements of the hogwild array")
	fs.IntVar(&p.passes, "passes", 320, "hogwild passes over the array per worker")
	fs.IntVar(&p.samples, "samples", 100_000_000, "Monte Carlo samples in all")
	fs.IntVar(&p.tasks, "tasks", 200_000, "tasks through the producer/consumer queue")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if p.workers < 1 || p.workers > xsync.MaxParties-1 || p.increments < 1 || p.elements < 1 || p.passes < 1 || p.samples < p.workers || p.tasks < p.workers {
		return fmt.Errorf("demo: flags out of range")
	}
	fmt.Fprintf(w, "xproc demo: %d worker processes sharing memory (GOMAXPROCS=%d per process)\n\n", p.workers, maxProcs())
	for _, step := range []func(io.Writer, demoParams) error{demoCounter, demoHogwild, demoPi, demoQueue} {
		if err := step(w, p); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}

// run starts p.workers workers of job with the given arguments (each also
// gets its index and the control segment's name), waits for all of them
// at the start line, shows progress of total units until they reach the
// finish line, and returns the time between the two.
func run(label, job string, p demoParams, total int64, args ...string) (time.Duration, error) {
	ctlName := demoName(job + "-ctl")
	ctl, err := value.Create(ctlName, control{})
	if err != nil {
		return 0, err
	}
	defer ctl.Close()
	defer ctl.Unlink()
	if err := ctl.Ptr().Line.Init(p.workers+1, demoTimeout); err != nil {
		return 0, err
	}
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()
	for i := range p.workers {
		c, err := startWorker(job, append([]string{ctlName, strconv.Itoa(i)}, args...)...)
		if err != nil {
			return 0, err
		}
		cmds = append(cmds, c)
	}
	line := &ctl.Ptr().Line
	if _, err := line.Wait(); err != nil {
		return 0, fmt.Errorf("%s: start: %w", label, err)
	}
	start := time.Now()
	stopProgress := showProgress(label, &ctl.Ptr().Progress, total)
	_, err = line.Wait()
	took := time.Since(start)
	stopProgress()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", label, err)
	}
	var errs []error
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("%s: worker: %w", label, err))
		}
	}
	cmds = nil
	return took, errors.Join(errs...)
}

// openControl is the worker's side of run: it maps the control segment,
// meets the others at the start line, runs work, and meets them at the
// finish line.
func openControl(name string, work func(progress *atomic.Int64) error) error {
	ctl, err := value.Open[control](name)
	if err != nil {
		return err
	}
	defer ctl.Close()
	line := &ctl.Ptr().Line
	if _, err := line.Wait(); err != nil {
		return err
	}
	if err := work(&ctl.Ptr().Progress); err != nil {
		line.Abort()
		return err
	}
	_, err = line.Wait()
	return err
}

// --- counter ---

func demoCounter(w io.Writer, p demoParams) error {
	fmt.Fprintf(w, "1. Locked counter: %d workers × %d increments of a value.Value[int64] under its lock\n", p.workers, p.increments)
	name := demoName("counter")
	v, err := value.Create[int64](name, 0)
	if err != nil {
		return err
	}
	defer v.Close()
	defer v.Unlink()
	total := int64(p.workers * p.increments)
	took, err := run("counter", "demo-counter", p, total, name, strconv.Itoa(p.increments))
	if err != nil {
		return err
	}
	got := v.Load()
	// The same increments in one process, for comparison.
	one := timeIt(func() {
		for range total {
			v.Update(func(x *int64) { *x++ })
		}
	})
	fmt.Fprintf(w, "   counter = %d, expected %d: %s\n", got, total, verdict(got == total))
	fmt.Fprintf(w, "   %d processes: %v (%.1f M increments/s); 1 process: %v (%.1f M/s)\n",
		p.workers, round(took), rate(total, took), round(one), rate(total, one))
	if got != total {
		return fmt.Errorf("counter: lost %d increments under the lock", total-got)
	}
	return nil
}

func demoCounterWorker(args []string) error {
	v, err := value.Open[int64](args[2])
	if err != nil {
		return err
	}
	defer v.Close()
	n, err := strconv.Atoi(args[3])
	if err != nil {
		return err
	}
	return openControl(args[0], func(progress *atomic.Int64) error {
		for i := range n {
			v.Update(func(x *int64) { *x++ })
			if i%1000 == 999 {
				progress.Add(1000)
			}
		}
		return nil
	})
}

// --- hogwild ---

func demoHogwild(w io.Writer, p demoParams) error {
	fmt.Fprintf(w, "2. Hogwild: %d workers × %d passes adding 1 to each of %d float64s in an array.Array\n", p.workers, p.passes, p.elements)
	name := demoName("hogwild")
	a, err := array.Create[float64](name, p.elements)
	if err != nil {
		return err
	}
	defer a.Close()
	defer a.Unlink()
	updates := int64(p.workers) * int64(p.passes) * int64(p.elements)
	for _, mode := range []string{"plain", "atomic"} {
		clear(a.Slice())
		took, err := run("hogwild "+mode, "demo-hogwild", p, updates, name, mode, strconv.Itoa(p.passes))
		if err != nil {
			return err
		}
		got := sum(a.Slice())
		// The same passes in one process, for the speed-up.
		clear(a.Slice())
		one := timeIt(func() { hogwildPasses(a, mode, p.workers*p.passes, nil) })
		speedup := fmt.Sprintf("%v (%.0f M updates/s); 1 process: %v; speed-up %.2f×",
			round(took), rate(updates, took), round(one), one.Seconds()/took.Seconds())
		switch mode {
		case "plain":
			lost := updates - got
			fmt.Fprintf(w, "   without locks: %d of %d updates arrived, %d lost (%.3f%%) to races, as expected\n      %s\n",
				got, updates, lost, 100*float64(lost)/float64(updates), speedup)
		case "atomic":
			fmt.Fprintf(w, "   atomic adds:   %d of %d updates arrived: %s\n      %s\n", got, updates, verdict(got == updates), speedup)
			if got != updates {
				return fmt.Errorf("hogwild: atomic adds lost %d updates", updates-got)
			}
		}
	}
	return nil
}

// hogwildPasses adds 1 to every element of a, passes times, without locks
// ("plain") or with atomic adds; it reports each pass to progress.
func hogwildPasses(a *array.Array[float64], mode string, passes int, progress *atomic.Int64) {
	s := a.Slice()
	for range passes {
		if mode == "atomic" {
			for i := range s {
				a.Add(i, 1)
			}
		} else {
			for i := range s {
				s[i]++
			}
		}
		if progress != nil {
			progress.Add(int64(len(s)))
		}
	}
}

func sum(s []float64) int64 {
	var t float64
	for _, x := range s {
		t += x
	}
	return int64(t)
}

func demoHogwildWorker(args []string) error {
	a, err := array.Open[float64](args[2], 0)
	if err != nil {
		return err
	}
	defer a.Close()
	mode := args[3]
	passes, err := strconv.Atoi(args[4])
	if err != nil {
		return err
	}
	return openControl(args[0], func(progress *atomic.Int64) error {
		hogwildPasses(a, mode, passes, progress)
		return nil
	})
}

// --- Monte Carlo π ---

func demoPi(w io.Writer, p demoParams) error {
	fmt.Fprintf(w, "3. Monte Carlo π: %d samples split over %d workers, hit counts in an array.Array[int64]\n", p.samples, p.workers)
	name := demoName("pi")
	hits, err := array.Create[int64](name, p.workers)
	if err != nil {
		return err
	}
	defer hits.Close()
	defer hits.Unlink()
	per := p.samples / p.workers
	total := int64(per * p.workers)
	took, err := run("pi", "demo-pi", p, total, name, strconv.Itoa(per))
	if err != nil {
		return err
	}
	var in int64
	for _, h := range hits.Slice() {
		in += h
	}
	pi := 4 * float64(in) / float64(total)
	// One process doing all the sampling, for the speed-up.
	var oneIn int64
	one := timeIt(func() { oneIn = sample(total, 1, nil) })
	onePi := 4 * float64(oneIn) / float64(total)
	fmt.Fprintf(w, "   π ≈ %.6f (error %.1e); one process: π ≈ %.6f\n", pi, pi-3.141592653589793, onePi)
	fmt.Fprintf(w, "   %d processes: %v; 1 process: %v; speed-up %.2f× on %d cores\n",
		p.workers, round(took), round(one), one.Seconds()/took.Seconds(), numCPU())
	return nil
}

func demoPiWorker(args []string) error {
	hits, err := array.Open[int64](args[2], 0)
	if err != nil {
		return err
	}
	defer hits.Close()
	idx, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(args[3])
	if err != nil {
		return err
	}
	return openControl(args[0], func(progress *atomic.Int64) error {
		hits.Set(idx, sample(int64(n), uint64(idx)+2, progress))
		return nil
	})
}

// sample throws n darts at the unit square and counts those inside the
// quarter circle.
func sample(n int64, seed uint64, progress *atomic.Int64) int64 {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	var in int64
	for i := range n {
		x, y := r.Float64(), r.Float64()
		if x*x+y*y <= 1 {
			in++
		}
		if progress != nil && i&0xffff == 0xffff {
			progress.Add(0x10000)
		}
	}
	return in
}

// --- helpers ---

// showProgress prints the progress of a run on stderr, if it is a
// terminal, until the returned function is called.
func showProgress(label string, done *atomic.Int64, total int64) (stop func()) {
	if fi, err := os.Stderr.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			pct := min(100, 100*float64(done.Load())/float64(total))
			fmt.Fprintf(os.Stderr, "\r   %-14s %5.1f%%", label, pct)
			select {
			case <-ctx.Done():
				fmt.Fprint(os.Stderr, "\r\033[K")
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-finished }
}

func demoName(what string) string {
	return fmt.Sprintf("xproc-demo-%d-%s", os.Getpid(), what)
}

func timeIt(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

func rate(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

func verdict(ok bool) string {
	if ok {
		return "exact ✓"
	}
	return "WRONG ✗"
}
