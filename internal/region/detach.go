package region

import (
	"context"
	"sync"
	"time"

	"github.com/xproc-go/xproc/internal/owner"
)

// DetachPoll is how often the processes that waiters wait on, and whose
// exit no pidfd shows (one that execs, one of another PID namespace), are
// asked whether they still map their segment: one system call each, by
// one goroutine for the whole process, only while someone waits. It
// bounds the takeover of a lock from such a holder to a few milliseconds
// rather than the waiters' periodic liveness check (100ms).
const DetachPoll = 2 * time.Millisecond

type detachKey struct {
	r  *Region
	id owner.ID
}

type detachEntry struct {
	ctx    context.Context
	cancel context.CancelFunc
	refs   int
}

var detaches struct {
	mu      sync.Mutex
	m       map[detachKey]*detachEntry
	running bool // pollDetaches runs
}

// DetachContext returns a context that is done once id no longer maps
// r's segment (it died, exec'd another program or closed the segment:
// Alive says false), and a function to call once the caller no longer
// waits. Callers waiting on the same process of the same segment share
// one watch. It returns a nil context where there is nothing to ask (a
// nil region, one without liveness locks, or id this process).
func (r *Region) DetachContext(id owner.ID) (context.Context, func()) {
	if r == nil || r.lock == nil || id == owner.Self() {
		return nil, func() {}
	}
	k := detachKey{r, id}
	detaches.mu.Lock()
	defer detaches.mu.Unlock()
	if detaches.m == nil {
		detaches.m = make(map[detachKey]*detachEntry)
	}
	e := detaches.m[k]
	if e == nil {
		ctx, cancel := context.WithCancel(context.Background())
		e = &detachEntry{ctx: ctx, cancel: cancel}
		detaches.m[k] = e
		if !detaches.running {
			detaches.running = true
			go pollDetaches()
		}
	}
	e.refs++
	var once sync.Once
	return e.ctx, func() {
		once.Do(func() {
			detaches.mu.Lock()
			defer detaches.mu.Unlock()
			if e.refs--; e.refs == 0 && detaches.m[k] == e {
				delete(detaches.m, k)
				e.cancel()
			}
		})
	}
}

// pollDetaches asks, every DetachPoll, whether each process watched
// through DetachContext still maps its segment, and ends the watches of
// those that do not. It returns once nothing is watched.
func pollDetaches() {
	t := time.NewTicker(DetachPoll)
	defer t.Stop()
	var keys []detachKey
	for range t.C {
		detaches.mu.Lock()
		if len(detaches.m) == 0 {
			detaches.running = false
			detaches.mu.Unlock()
			return
		}
		keys = keys[:0]
		for k := range detaches.m {
			keys = append(keys, k)
		}
		detaches.mu.Unlock()
		for _, k := range keys {
			// Inside the region, so that Close (which its waiters
			// leave through anyway) does not close the file under us.
			if !k.r.Enter() {
				continue
			}
			alive := k.r.Alive(k.id)
			k.r.Leave()
			if alive {
				continue
			}
			detaches.mu.Lock()
			if e := detaches.m[k]; e != nil {
				delete(detaches.m, k)
				e.cancel()
			}
			detaches.mu.Unlock()
		}
	}
}
