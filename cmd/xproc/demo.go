package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/xproc-go/xproc/array"
	"github.com/xproc-go/xproc/process"
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
//
// All segments are anonymous (memfd), handed to the workers as inherited
// files: the control block as file 3, the workload's data as files 4,
// 5, ...
// Nothing has a name in /dev/shm, so a demo killed at any moment leaves
// nothing behind.

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
	fs.IntVar(&p.increments, "increments", 100000, "locked increments per worker")
	fs.IntVar(&p.elements, "elements", 1<<16, "elements of the hogwild array")
	fs.IntVar(&p.passes, "passes", 320, "hogwild passes over the array per worker")
	fs.IntVar(&p.samples, "samples", 100_000_000, "Monte Carlo samples in all")
	fs.IntVar(&p.tasks, "tasks", 200_000, "tasks through the producer/consumer queue")
	names, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		flag     string
		got, min int
		max      int
	}{
		{"workers", p.workers, 1, xsync.MaxParties - 1},
		{"increments", p.increments, 1, math.MaxInt},
		{"elements", p.elements, 1, math.MaxInt},
		{"passes", p.passes, 1, math.MaxInt},
		{"samples", p.samples, p.workers, math.MaxInt},
		{"tasks", p.tasks, p.workers, math.MaxInt},
	} {
		if c.got < c.min || c.got > c.max {
			return usageError(fs, "-%s %d: want %s", c.flag, c.got, describeRange(c.min, c.max))
		}
	}
	if len(names) > 0 {
		return usageError(fs, "demo takes no arguments, got %q", names)
	}
	fmt.Fprintf(w, "xproc demo: %d worker processes sharing memory (GOMAXPROCS=%d per process)\n\n", p.workers, maxProcs())
	for _, step := range []func(io.Writer, demoParams) error{demoCounter, demoHogwild, demoPi, demoQueue, demoPool} {
		if err := step(w, p); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}

// run starts p.workers workers of job with the given arguments (each
// also gets its index, the control segment as file 3 and data as files
// 4, 5, ...), waits for all of them at the start line, shows progress of
// total units until they reach the finish line, and returns the time
// between the two.
func run(label, job string, p demoParams, total int64, data []*os.File, args ...string) (time.Duration, error) {
	ctl, err := value.CreateAnonymous(control{})
	if err != nil {
		return 0, err
	}
	defer ctl.Close()
	if err := ctl.Ptr().Line.Init(p.workers+1, demoTimeout); err != nil {
		return 0, err
	}
	var cmds []worker
	defer func() {
		for _, c := range cmds {
			c.Kill()
		}
	}()
	for i := range p.workers {
		files := append([]*os.File{ctl.Segment().File()}, data...)
		c, err := startWorker(job, files, append([]string{strconv.Itoa(i)}, args...)...)
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

// The files a worker inherits (exec.Cmd.ExtraFiles start at 3).
var (
	controlFile = func() *os.File { return process.File(0) }
	dataFile    = func(i int) *os.File { return process.File(1 + i) }
)

// openControl is the worker's side of run: it maps the control segment,
// meets the others at the start line, runs work, and meets them at the
// finish line.
func openControl(work func(progress *atomic.Int64) error) error {
	ctl, err := value.OpenFile[control](controlFile())
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
	v, err := value.CreateAnonymous[int64](0)
	if err != nil {
		return err
	}
	defer v.Close()
	total := int64(p.workers * p.increments)
	took, err := run("counter", "demo-counter", p, total, []*os.File{v.Segment().File()}, strconv.Itoa(p.increments))
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
	v, err := value.OpenFile[int64](dataFile(0))
	if err != nil {
		return err
	}
	defer v.Close()
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	return openControl(func(progress *atomic.Int64) error {
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
	a, err := array.CreateAnonymous[float64](p.elements)
	if err != nil {
		return err
	}
	defer a.Close()
	updates := int64(p.workers) * int64(p.passes) * int64(p.elements)
	for _, mode := range []string{"plain", "atomic"} {
		clear(a.Slice())
		took, err := run("hogwild "+mode, "demo-hogwild", p, updates, []*os.File{a.Segment().File()}, mode, strconv.Itoa(p.passes))
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
	a, err := array.OpenFile[float64](dataFile(0), 0)
	if err != nil {
		return err
	}
	defer a.Close()
	mode := args[1]
	passes, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	return openControl(func(progress *atomic.Int64) error {
		hogwildPasses(a, mode, passes, progress)
		return nil
	})
}

// --- Monte Carlo π ---

func demoPi(w io.Writer, p demoParams) error {
	fmt.Fprintf(w, "3. Monte Carlo π: %d samples split over %d workers, hit counts in an array.Array[int64]\n", p.samples, p.workers)
	hits, err := array.CreateAnonymous[int64](p.workers)
	if err != nil {
		return err
	}
	defer hits.Close()
	per := p.samples / p.workers
	total := int64(per * p.workers)
	took, err := run("pi", "demo-pi", p, total, []*os.File{hits.Segment().File()}, strconv.Itoa(per))
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
		p.workers, round(took), round(one), one.Seconds()/took.Seconds(), process.CPUCount())
	return nil
}

func demoPiWorker(args []string) error {
	hits, err := array.OpenFile[int64](dataFile(0), 0)
	if err != nil {
		return err
	}
	defer hits.Close()
	idx, err := strconv.Atoi(args[0])
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	return openControl(func(progress *atomic.Int64) error {
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

// showProgress shows the progress of a run as a bar on stderr, if it is a
// terminal of known width (vbauerster/mpb draws it), until the returned
// function is called, which clears it.
func showProgress(label string, done *atomic.Int64, total int64) (stop func()) {
	if w, _, err := term.GetSize(int(os.Stderr.Fd())); err != nil || w <= 0 {
		return func() {}
	}
	p := mpb.New(mpb.WithOutput(os.Stderr), mpb.WithRefreshRate(100*time.Millisecond))
	bar := p.AddBar(total, mpb.PrependDecorators(decor.Name("   "+label+" ")), mpb.AppendDecorators(decor.Percentage()))
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			bar.SetCurrent(done.Load())
			select {
			case <-quit:
				bar.Abort(true) // the bar goes, complete or not
				p.Wait()
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(quit); <-finished }
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

// describeRange says which values from min to max a flag takes.
func describeRange(min, max int) string {
	if max == math.MaxInt {
		return fmt.Sprintf("at least %d", min)
	}
	return fmt.Sprintf("%d to %d", min, max)
}
