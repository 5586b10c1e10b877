package pool

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// A reporter hears of one call's progress: done calls of total (-1 while
// unknown), as answers arrive (running), then once more when the call
// ends, having run to its end (finished) or not (stopped).
type reporter func(done, total int, s stage)

type stage int

const (
	running stage = iota
	finished
	stopped
)

// Verbose prints progress to w as joblib's Parallel(verbose=...) does,
// one line when the completed calls reach (or, as results come in
// batches, pass) 1, 2, 4, 8, ... and one when a call finishes:
//
//	[Pool(n_jobs=2)]: Done   1 out of  10 | elapsed:    0.0s
//	[Pool(n_jobs=2)]: Done   2 out of  10 | elapsed:    0.3s
//	[Pool(n_jobs=2)]: Done   5 out of  10 | elapsed:    0.7s
//	[Pool(n_jobs=2)]: Done  10 out of  10 | elapsed:    1.4s finished
//
// (Imap, whose total is not known until its input ends, says "Done   5
// tasks".)
//
// Lines of concurrent calls interleave; each line is written whole.
func Verbose(w io.Writer) Option {
	return func(o *options) {
		o.progress = func() reporter { return newLines(w, o.workerCount()) }
	}
}

// ProgressBar shows the progress of each call as a bar on standard error
// when it is a terminal of known width (vbauerster/mpb draws it; the bar
// goes when the call ends), and as Verbose's lines otherwise.
func ProgressBar() Option {
	return func(o *options) {
		o.progress = func() reporter {
			n := o.workerCount()
			if w, _, err := term.GetSize(int(os.Stderr.Fd())); err != nil || w <= 0 {
				return newLines(os.Stderr, n) // not a terminal, or one of no known width
			}
			return stderrBars.reporter(n)
		}
	}
}

var linesMu sync.Mutex // lines of concurrent calls are written whole

func newLines(w io.Writer, workers int) reporter {
	start := time.Now()
	nextAt := 1
	return func(done, total int, st stage) {
		finished := st == finished
		if st == stopped || !finished && (done < nextAt || done == total) {
			return // the last line is the one that says finished
		}
		for nextAt <= done {
			nextAt *= 2
		}
		elapsed := time.Since(start).Seconds()
		var s string
		switch {
		case finished:
			s = fmt.Sprintf("[Pool(n_jobs=%d)]: Done %3d out of %3d | elapsed: %6.1fs finished\n", workers, done, done, elapsed)
		case total > 0:
			s = fmt.Sprintf("[Pool(n_jobs=%d)]: Done %3d out of %3d | elapsed: %6.1fs\n", workers, done, total, elapsed)
		default:
			s = fmt.Sprintf("[Pool(n_jobs=%d)]: Done %3d tasks      | elapsed: %6.1fs\n", workers, done, elapsed)
		}
		writeLine(w, s)
	}
}

// writeLine writes s to w under linesMu, which a panicking writer does
// not leave locked.
func writeLine(w io.Writer, s string) {
	linesMu.Lock()
	defer linesMu.Unlock()
	io.WriteString(w, s)
}

// barBoard draws the bars of the calls under way at once, one line each,
// in one mpb container: containers of their own would each redraw the
// terminal's last lines over the others'. The container lives while it
// has bars. There is one, for standard error: the calls of every pool of
// the process share it.
type barBoard struct {
	out  io.Writer             // nil: os.Stderr
	opts []mpb.ContainerOption // tests': after the defaults
	mu   sync.Mutex
	p    *mpb.Progress
	bars int
}

var stderrBars barBoard

// reporter returns the reporter of one call, whose bar appears at its
// first report and goes when the call ends.
func (b *barBoard) reporter(workers int) reporter {
	var bar *mpb.Bar
	return func(done, total int, s stage) {
		if bar == nil {
			if s == stopped {
				return
			}
			bar = b.add(workers)
		}
		if total > 0 {
			bar.SetTotal(int64(total), false)
		}
		bar.SetCurrent(int64(done))
		switch s {
		case finished:
			bar.SetTotal(-1, true)
			b.remove(bar)
		case stopped:
			bar.Abort(true)
			b.remove(bar)
		}
	}
}

func (b *barBoard) add(workers int) *mpb.Bar {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p == nil {
		out := b.out
		if out == nil {
			out = os.Stderr
		}
		b.p = mpb.New(append([]mpb.ContainerOption{mpb.WithOutput(out), mpb.WithRefreshRate(100 * time.Millisecond)}, b.opts...)...)
	}
	b.bars++
	// Made with no total, the bar completes only when told to (Imap
	// learns its total late).
	return b.p.New(0, mpb.BarStyle(),
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("Pool(n_jobs=%d) ", workers)), decor.CountersNoUnit("%d / %d")),
		mpb.AppendDecorators(decor.AverageSpeed(0, " %.0f tasks/s "), decor.Elapsed(decor.ET_STYLE_GO)),
		mpb.BarRemoveOnComplete())
}

// remove waits until bar, completed or aborted, is gone, and shuts the
// container down once it has no bar left (outside the lock: a call that
// starts meanwhile gets a container of its own).
func (b *barBoard) remove(bar *mpb.Bar) {
	bar.Wait()
	b.mu.Lock()
	var last *mpb.Progress
	if b.bars--; b.bars == 0 {
		last, b.p = b.p, nil
	}
	b.mu.Unlock()
	if last != nil {
		last.Wait()
	}
}
