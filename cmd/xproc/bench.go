package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/xproc-go/xproc/internal/bench"
	"github.com/xproc-go/xproc/internal/spin"
	"github.com/xproc-go/xproc/shm"
)

func init() {
	commands["bench"] = cmdBench
	workers["bench-peer"] = func(args []string) error {
		seg, sh, err := openBenchShared(args[0])
		if err != nil {
			return err
		}
		defer seg.Close()
		n, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		if spin.Limit, err = time.ParseDuration(args[3]); err != nil {
			return err
		}
		return bench.Peer(sh, args[1], n)
	}
}

// benchRow is one row of xproc bench: a workload of package bench, with
// waiters that spin before they sleep or that sleep at once, and the
// reference row it is compared with, which does the same work in the
// same way (both spin, or neither): like with like.
type benchRow struct {
	name, workload string
	spin           bool   // waiters spin for spin.Limit first; else they sleep at once
	ref            string // the row this one is compared with, if any
	what           string
	// run, if set, measures the row instead of a workload of package
	// bench (the message rows, which use internal/qbench), and units
	// names its figure where it is neither Mops/s nor a round trip.
	run   func(n int) (measurement, error)
	units string
	// alt, if set, is a second row the table compares this one with:
	// what a user would pick instead (a Unix socket), which works another
	// way (it sleeps in the kernel, where the row may spin first), so
	// not like with like; the table says so.
	alt string
}

var benchRows = []benchRow{
	{"mutex", "mutex", true, "bare-mutex-spin", "xsync.Mutex: lock, increment, unlock, in 2 processes", nil, "", ""},
	{"bare-mutex-spin", "bare-mutex-spin", true, "", "reference: textbook futex mutex, spinning as long first", nil, "", ""},
	{"mutex-sleeping", "mutex", false, "bare-mutex", "xsync.Mutex as above, waiters sleeping at once", nil, "", ""},
	{"bare-mutex", "bare-mutex", false, "", "reference: textbook futex mutex (Drepper's), no spinning", nil, "", ""},
	{"event-pingpong", "event-pingpong", true, "futex-pingpong-spin", "xsync.Event ping-pong between 2 processes, waiters spinning first", nil, "", ""},
	{"futex-pingpong-spin", "futex-pingpong-spin", true, "", "reference: bare futex pair, spinning as long first, waking only sleepers", nil, "", ""},
	{"event-pingpong-sleeping", "event-pingpong", false, "futex-pingpong", "xsync.Event ping-pong, waiters sleeping at once", nil, "", ""},
	{"futex-pingpong", "futex-pingpong", false, "", "reference: bare futex pair, sleeping at once", nil, "", ""},
	{"barrier", "barrier", true, "", "xsync.Barrier(2) rounds between 2 processes", nil, "", ""},
}

// roundTrips reports whether the row measures round trips (lower is
// better) rather than a rate (higher is better).
func (r benchRow) roundTrips() bool { return strings.Contains(r.workload, "pingpong") }

func (r benchRow) unit() string {
	if r.units != "" {
		return r.units
	}
	if r.roundTrips() {
		return "µs/round trip"
	}
	return "Mops/s"
}

// spinLimit is the spin limit the row runs with.
func (r benchRow) spinLimit() time.Duration {
	if r.spin {
		return spin.Limit
	}
	return 0
}

// calibrationSize is the number of iterations of a row's first run, which
// sizes the others, and the fewest any run has.
const calibrationSize = 1000

// A measurement is one run of a row: its figure (Mops/s, or the median
// round trip in µs) and how long the work took.
type measurement struct {
	value float64
	took  time.Duration
}

func cmdBench(args []string, w io.Writer) error {
	fs := newFlags("bench", "[ROW...]")
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintln(fs.Output(), "rows (all by default; a row named runs with its reference):")
		for _, r := range allRows() {
			fmt.Fprintf(fs.Output(), "  %-24s %s\n", r.name, r.what)
		}
	}
	per := fs.Duration("time", 300*time.Millisecond, "target duration of each run of a row")
	runs := fs.Int("runs", 5, "runs of each row (at least 3): min, median and max are shown")
	maxSpread := fs.Float64("spread", 0.25, "flag rows whose runs spread over more than this fraction of their median")
	names, err := parseArgs(fs, args)
	switch {
	case err != nil:
		return err
	case *runs < 3:
		return usageError(fs, "-runs %d: min, median and max need at least 3 runs", *runs)
	case *per < time.Millisecond:
		return usageError(fs, "-time %v: want at least 1ms", *per)
	case *maxSpread <= 0:
		return usageError(fs, "-spread %v: want more than 0", *maxSpread)
	}
	rows, err := selectRows(allRows(), names)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	return runBench(w, rows, *runs, *per, *maxSpread, measureRow)
}

// selectRows returns the rows named (all of them if none is), each with
// its reference, in the table's order.
func selectRows(all []benchRow, names []string) ([]benchRow, error) {
	if len(names) == 0 {
		return all, nil
	}
	byName := map[string]benchRow{}
	for _, r := range all {
		byName[r.name] = r
	}
	want := map[string]bool{}
	for _, n := range names {
		r, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("no row %q (xproc bench -h lists them all)", n)
		}
		want[n] = true
		for _, o := range []string{r.ref, r.alt} {
			if o != "" {
				want[o] = true
			}
		}
	}
	var rows []benchRow
	for _, r := range all {
		if want[r.name] {
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// allRows returns every row of xproc bench: locks and events, messages,
// pools.
func allRows() []benchRow {
	rows := append(benchRows[:len(benchRows):len(benchRows)], messageRows()...)
	return append(rows, poolRows()...)
}

// runBench measures each row runs times, one run of every row after the
// other (so that a row and its reference see the machine alike), and
// prints the table. A first, short run of each row, not counted, sizes
// the others to take about per each.
func runBench(w io.Writer, rows []benchRow, runs int, per time.Duration, maxSpread float64,
	measure func(benchRow, int) (measurement, error)) error {
	results := make([][]float64, len(rows))
	sizes := make([]int, len(rows))
	for i := range sizes {
		sizes[i] = calibrationSize
	}
	machine0, ours0, loadKnown := cpuTimes()
	start := time.Now()
	for run := -1; run < runs; run++ {
		for i, row := range rows {
			m, err := measure(row, sizes[i])
			if err != nil {
				return fmt.Errorf("%s: %w", row.name, err)
			}
			if run >= 0 {
				results[i] = append(results[i], m.value)
			}
			if m.took > 0 {
				sizes[i] = max(calibrationSize, int(float64(sizes[i])*float64(per)/float64(m.took)))
			}
		}
	}

	wall := time.Since(start)
	machine1, ours1, ok := cpuTimes()
	others := (machine1 - machine0) - (ours1 - ours0)
	fmt.Fprintf(w, "xproc bench: %d runs of each row, about %v each, rows taking turns; spinning waiters spin for up to %v\n",
		runs, per, spin.Limit)
	busy := false
	if loadKnown && ok && wall >= minLoadWall {
		share := max(0, float64(others)/float64(wall))
		busy = share > maxOthers
		mark := ""
		if busy {
			mark = " !"
		}
		fmt.Fprintf(w, "other processes used %.0f%% of a CPU during the runs (%d CPUs)%s\n", 100*share, runtime.NumCPU(), mark)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tUNIT\tRUNS\tMIN\tMEDIAN\tMAX\tSPREAD\tAGAINST ITS REFERENCE")
	stats := make(map[string]summary, len(rows))
	for i, row := range rows {
		stats[row.name] = summarize(results[i])
	}
	anyFlagged := false
	for _, row := range rows {
		s := stats[row.name]
		flag := ""
		if s.spread > maxSpread {
			flag, anyFlagged = " !", true
		}
		var against []string
		for _, o := range []string{row.ref, row.alt} {
			ref, ok := stats[o]
			if !ok {
				continue
			}
			a := compare(row, s.median, o, ref.median)
			if o == row.alt {
				a += " (sleeps in the kernel)"
			}
			if s.spread > maxSpread || ref.spread > maxSpread || busy {
				a += " !"
			}
			against = append(against, a)
		}
		if len(against) == 0 {
			against = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%.0f%%%s\t%s\n", row.name, row.unit(), s.n,
			figure(s.min), figure(s.median), figure(s.max), 100*s.spread, flag, strings.Join(against, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nSPREAD is (max - min) / median. AGAINST ITS REFERENCE compares the medians: how many times faster\n(or slower) the row is than the reference it is measured with.\n")
	if anyFlagged {
		fmt.Fprintf(w, "! marks a row whose runs spread over more than %.0f%% of their median, and the ratios with it:\nthe machine was busy or unsteady, and those figures cannot be trusted. Run again on a quieter\nmachine, or with more -runs.\n", 100*maxSpread)
	}
	if busy {
		fmt.Fprintf(w, "! after the CPU share of other processes: they used more than %.0f%% of a CPU while the rows ran, so\nevery figure here, however steady, may be off (a steadily busy machine does not show in SPREAD).\nRun again on a quieter machine.\n", 100*maxOthers)
	}
	fmt.Fprintln(w)
	for _, row := range rows {
		fmt.Fprintf(w, "%-24s %s\n", row.name, row.what)
	}
	return nil
}

// minLoadWall is the shortest run of the rows whose load is reported:
// the machine's CPU time is counted in hundredths of a second.
const minLoadWall = time.Second

// maxOthers is the share of a CPU that other processes may use while the
// rows run before the table warns that the machine was busy.
const maxOthers = 0.10

// summary is what the table shows of a row's runs.
type summary struct {
	n                int
	min, median, max float64
	spread           float64 // (max - min) / median
}

func summarize(xs []float64) summary {
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := summary{n: len(s), min: s[0], max: s[len(s)-1]}
	if len(s)%2 == 1 {
		sum.median = s[len(s)/2]
	} else {
		sum.median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if sum.median > 0 {
		sum.spread = (sum.max - sum.min) / sum.median
	}
	return sum
}

// figure formats a figure with three significant digits or more.
func figure(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// measureRow runs row's workload n times in this process and in a peer
// process, both with the row's spin limit.
func measureRow(row benchRow, n int) (measurement, error) {
	if row.run != nil {
		return row.run(n)
	}
	limit := row.spinLimit()
	defer func(old time.Duration) { spin.Limit = old }(spin.Limit)
	spin.Limit = limit

	name := fmt.Sprintf("xproc-bench-%d-%d", time.Now().UnixNano(), n)
	ty, err := shm.TypeOf[bench.Shared]()
	if err != nil {
		return measurement{}, err
	}
	seg, err := shm.Create(name, shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 1})
	if err != nil {
		return measurement{}, err
	}
	defer seg.Close()
	defer seg.Unlink()
	sh, err := shm.View[bench.Shared](seg, 0)
	if err != nil {
		return measurement{}, err
	}
	if err := sh.Init(); err != nil {
		return measurement{}, err
	}
	peer, err := startWorker("bench-peer", nil, name, row.workload, strconv.Itoa(n), limit.String())
	if err != nil {
		return measurement{}, err
	}
	var lat []time.Duration
	if row.roundTrips() {
		lat = make([]time.Duration, min(n, 1<<20))
	}
	var sw bench.Stopwatch
	runErr := bench.Run(sh, row.workload, n, lat, &sw)
	if runErr != nil {
		peer.Kill()
	}
	if err := peer.Wait(); err != nil && runErr == nil {
		runErr = fmt.Errorf("peer: %w", err)
	}
	if runErr != nil {
		return measurement{}, runErr
	}
	if lat != nil {
		slices.Sort(lat)
		return measurement{value: float64(lat[len(lat)/2]) / float64(time.Microsecond), took: sw.Elapsed}, nil
	}
	ops := float64(bench.Workloads[row.workload].Ops(n))
	return measurement{value: ops / sw.Elapsed.Seconds() / 1e6, took: sw.Elapsed}, nil
}

func openBenchShared(name string) (*shm.Segment, *bench.Shared, error) {
	ty, err := shm.TypeOf[bench.Shared]()
	if err != nil {
		return nil, nil, err
	}
	seg, err := shm.Open(name, shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 1})
	if err != nil {
		return nil, nil, err
	}
	sh, err := shm.View[bench.Shared](seg, 0)
	if err != nil {
		seg.Close()
		return nil, nil, err
	}
	return seg, sh, nil
}

// compare says how many times faster or slower a row's median is than its
// reference's, whichever way its unit counts (a rate: higher is faster; a
// time: lower is faster).
func compare(row benchRow, median float64, other string, ref float64) string {
	f := median / ref
	if row.lowerIsBetter() {
		f = ref / median
	}
	if f >= 1 {
		return fmt.Sprintf("%.2f× faster than %s", f, other)
	}
	return fmt.Sprintf("%.2f× slower than %s", 1/f, other)
}

// lowerIsBetter reports whether the row's figure is a time.
func (r benchRow) lowerIsBetter() bool {
	u := r.unit()
	return u == "µs/round trip" || u == "ms" || u == "ns/op"
}
