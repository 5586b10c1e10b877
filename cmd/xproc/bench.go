package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/xproc-go/xproc/internal/bench"
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
		return bench.Peer(sh, args[1], n)
	}
}

var benchRows = []struct{ workload, what string }{
	{"mutex", "xsync.Mutex: lock, increment, unlock; 2 processes"},
	{"bare-mutex", "textbook futex mutex, same work (reference)"},
	{"event-pingpong", "xsync.Event ping-pong round trips"},
	{"futex-pingpong", "bare futex ping-pong round trips (reference)"},
	{"barrier", "xsync.Barrier(2) rounds between 2 processes"},
}

func cmdBench(args []string, w io.Writer) error {
	fs := newFlags("bench", "")
	per := fs.Duration("time", 500*time.Millisecond, "target duration of each measurement")
	runs := fs.Int("runs", 3, "measurements per workload; the median is shown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tMOPS/S\tMEDIAN ROUND TRIP\tWHAT")
	for _, row := range benchRows {
		var rates, medians []float64
		n := 10000
		for range *runs {
			rate, median, took, err := benchOnce(row.workload, n)
			if err != nil {
				return fmt.Errorf("%s: %w", row.workload, err)
			}
			rates, medians = append(rates, rate), append(medians, median)
			// Size the next run to take about *per.
			n = max(1000, int(float64(n)*float64(*per)/float64(took)))
		}
		rt := "-"
		if m := median(medians); m > 0 {
			rt = time.Duration(m).String()
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%s\t%s\n", row.workload, median(rates)/1e6, rt, row.what)
	}
	if err := benchMessages(tw, *per, *runs); err != nil {
		return err
	}
	return tw.Flush()
}

// benchOnce runs workload n times in this process and in a peer process.
func benchOnce(workload string, n int) (rate, medianRT float64, took time.Duration, err error) {
	name := fmt.Sprintf("xproc-bench-%d-%d", time.Now().UnixNano(), n)
	ty, err := shm.TypeOf[bench.Shared]()
	if err != nil {
		return 0, 0, 0, err
	}
	seg, err := shm.Create(name, shm.Spec{Kind: shm.KindRaw, Type: ty, Len: 1})
	if err != nil {
		return 0, 0, 0, err
	}
	defer seg.Close()
	defer seg.Unlink()
	sh, err := shm.View[bench.Shared](seg, 0)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := sh.Init(); err != nil {
		return 0, 0, 0, err
	}
	peer, err := startWorker("bench-peer", name, workload, strconv.Itoa(n))
	if err != nil {
		return 0, 0, 0, err
	}
	var lat []time.Duration
	if workload == "event-pingpong" || workload == "futex-pingpong" {
		lat = make([]time.Duration, min(n, 1<<20))
	}
	var sw bench.Stopwatch
	runErr := bench.Run(sh, workload, n, lat, &sw)
	if runErr != nil {
		peer.Process.Kill()
	}
	if err := peer.Wait(); err != nil && runErr == nil {
		runErr = fmt.Errorf("peer: %w", err)
	}
	if runErr != nil {
		return 0, 0, 0, runErr
	}
	ops := float64(bench.Workloads[workload].Ops(n))
	if lat != nil {
		slices.Sort(lat)
		medianRT = float64(lat[len(lat)/2])
	}
	return ops / sw.Elapsed.Seconds(), medianRT, sw.Elapsed, nil
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

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
