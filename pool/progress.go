package pool

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Verbose prints progress to w as joblib's Parallel(verbose=...) does,
// one line at 1, 2, 4, 8, ... completed calls and one when a call
// finishes:
//
//	[Pool(n_jobs=2)]: Done   1 tasks      | elapsed:    0.0s
//	[Pool(n_jobs=2)]: Done  10 out of  10 | elapsed:    1.4s finished
//
// Lines of concurrent calls interleave; each line is written whole.
func Verbose(w io.Writer) Option {
	return func(o *options) {
		o.progress = func() func(int, int, bool) { return newLines(w, o.workerCount()) }
	}
}

// ProgressBar shows the progress of each call as a bar on standard error
// when it is a terminal (schollz/progressbar draws it), and as Verbose's
// lines otherwise.
func ProgressBar() Option {
	return func(o *options) {
		o.progress = func() func(int, int, bool) {
			n := o.workerCount()
			if !term.IsTerminal(int(os.Stderr.Fd())) {
				return newLines(os.Stderr, n)
			}
			return newBar(n)
		}
	}
}

var linesMu sync.Mutex // lines of concurrent calls are written whole

func newLines(w io.Writer, workers int) func(done, total int, finished bool) {
	start := time.Now()
	nextAt := 1
	return func(done, total int, finished bool) {
		if !finished && (done < nextAt || done == total) {
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
		linesMu.Lock()
		io.WriteString(w, s)
		linesMu.Unlock()
	}
}

func newBar(workers int) func(done, total int, finished bool) {
	var bar *progressbar.ProgressBar
	return func(done, total int, finished bool) {
		if bar == nil {
			bar = progressbar.NewOptions(total,
				progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetDescription(fmt.Sprintf("Pool(n_jobs=%d)", workers)),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish())
		}
		if total > 0 && int64(total) != bar.GetMax64() {
			bar.ChangeMax(total)
		}
		bar.Set(done)
		if finished {
			bar.Finish()
		}
	}
}
