package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/region"
	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
)

func dirOption(dir string) []shm.Option {
	if dir == "" {
		return nil
	}
	return []shm.Option{shm.Dir(dir)}
}

const dirUsage = "segment directory (default $XPROC_SHM_DIR or /dev/shm)"

func cmdList(args []string, w io.Writer) error {
	fs := newFlags("ls", "")
	dir := fs.String("dir", "", dirUsage)
	names, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return usageError(fs, "ls takes no arguments, got %q", names)
	}
	infos, err := shm.List(dirOption(*dir)...)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tTYPE\tLEN\tSIZE\tCREATOR\tATTACHED\tAGE")
	for _, in := range infos {
		if in.Err != nil {
			fmt.Fprintf(tw, "%s\t(invalid: %v)\n", in.Name, in.Err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%s\t%s\t%s\t%s\n", in.Name, in.Kind, typeName(in), in.Len,
			byteSize(in.FileSize), creatorState(in), attached(in),
			time.Since(in.Created).Round(time.Second))
	}
	return tw.Flush()
}

// creatorState shows a segment's creator: its pid, marked if it has
// exited, or if it is of another PID namespace (where it may or may not
// run: its pid cannot be looked up here).
func creatorState(in shm.Info) string {
	switch {
	case in.CreatorForeign:
		return foreignPid(in.Creator)
	case in.CreatorAlive:
		return fmt.Sprint(in.Creator)
	}
	return fmt.Sprintf("%d (exited)", in.Creator)
}

// foreignPid shows the pid of a process of another PID namespace (the
// same number here is another process, or none).
func foreignPid(pid int) string { return fmt.Sprintf("%d (other PID namespace)", pid) }

// typeName shows what a segment holds elements of: its element type, or
// for a queue or a pipe of byte messages (the element type they record
// is uint8) "bytes". A queue.Of[T] shows T (queue.Of[uint8] shows
// bytes too: the header cannot tell it from a byte queue).
func typeName(in shm.Info) string {
	if (in.Kind == shm.KindQueue || in.Kind == shm.KindPipe) && in.Type == byteType.Name && in.ElemSize == byteType.Size {
		return "bytes"
	}
	return in.Type
}

var byteType, _ = shm.TypeOf[byte]()

func attached(in shm.Info) string {
	if len(in.Attached) == 0 {
		return "-"
	}
	s := fmt.Sprint(len(in.Attached))
	if len(in.Dead) > 0 {
		s += fmt.Sprintf(" (%d dead)", len(in.Dead))
	}
	return s
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprint(n)
}

func cmdInspect(args []string, w io.Writer) error {
	fs := newFlags("inspect", "NAME")
	dir := fs.String("dir", "", dirUsage)
	names, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return usageError(fs, "inspect takes one segment name, got %d", len(names))
	}
	name, opts := names[0], dirOption(*dir)
	in, err := shm.Stat(name, opts...)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("name", in.Name)
	row("path", in.Path)
	row("kind", in.Kind)
	if t := typeName(in); t == "bytes" {
		row("type", t)
	} else {
		row("type", fmt.Sprintf("%s (%d bytes)", t, in.ElemSize))
	}
	row("len", in.Len)
	if len(in.Shape) > 0 {
		row("shape", in.Shape)
	}
	row("data", fmt.Sprintf("%d bytes; file %d bytes", in.DataSize, in.FileSize))
	row("created", in.Created.Format(time.RFC3339Nano))
	row("creator", creatorState(in))
	row("attached", fmt.Sprintf("%v (dead: %v)", in.Attached, in.Dead))
	if state, err := segmentState(name, in.Kind, opts); err != nil {
		row("state", "unavailable: "+err.Error())
	} else if state != "" {
		row("state", state)
	}
	return tw.Flush()
}

// segmentState describes the state of what a segment holds: the
// primitive of a named xsync primitive, the lock of a Value or an Array,
// the messages of a queue or a pipe.
// It maps the segment without joining anything (a Barrier is looked at,
// not joined as a party).
func segmentState(name string, kind shm.Kind, opts []shm.Option) (string, error) {
	if kind == shm.KindQueue || kind == shm.KindPipe {
		return messageState(name, kind, opts)
	}
	spec := shm.Spec{Kind: kind}
	if typeOf := kindTypes[kind]; typeOf != nil {
		t, err := typeOf()
		if err != nil {
			return "", err
		}
		spec.Type, spec.Len = t, 1
	}
	seg, err := shm.Open(name, spec, opts...)
	if err != nil {
		return "", err
	}
	defer seg.Close()
	switch kind {
	case shm.KindMutex:
		return lockAt(seg, 0)
	case shm.KindReentrantMutex:
		state, err := lockAt(seg, 0)
		if depth, derr := shm.View[atomic.Uint32](seg, rmutexDepthOffset); err == nil && derr == nil && depth.Load() > 0 {
			state += fmt.Sprintf(", %d times by one goroutine", depth.Load())
		}
		return state, err
	case shm.KindSemaphore:
		s, err := shm.View[xsync.Semaphore](seg, 0)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("value %d, bounded %v", s.Value(), s.Bounded()), nil
	case shm.KindEvent:
		e, err := shm.View[xsync.Event](seg, 0)
		if err != nil {
			return "", err
		}
		return map[bool]string{true: "set", false: "clear"}[e.IsSet()], nil
	case shm.KindCond:
		c, err := shm.View[xsync.Cond](seg, condOffset)
		if err != nil {
			return "", err
		}
		lock, err := lockAt(seg, 0)
		return fmt.Sprintf("%d waiting; mutex %s", c.Waiting(), lock), err
	case shm.KindBarrier:
		b, err := shm.View[xsync.Barrier](seg, 0)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d parties, %d waiting, broken %v", b.Parties(), b.Waiting(), b.Broken()), nil
	case shm.KindValue, shm.KindArray:
		lock, err := lockAt(seg, seg.Params()[0])
		return "lock " + lock, err
	}
	return "", nil
}

// kindTypes gives the element type of the kinds that have one.
var kindTypes = map[shm.Kind]func() (shm.Type, error){
	shm.KindMutex:          shm.TypeOf[xsync.Mutex],
	shm.KindReentrantMutex: shm.TypeOf[xsync.ReentrantMutex],
	shm.KindSemaphore:      shm.TypeOf[xsync.Semaphore],
	shm.KindEvent:          shm.TypeOf[xsync.Event],
	shm.KindBarrier:        shm.TypeOf[xsync.Barrier],
}

// Offsets in the segments of named primitives (LAYOUT.md, "Kinds" and the
// primitives' sections).
const (
	condOffset        = 8  // the Cond after its Mutex
	rmutexDepthOffset = 24 // a ReentrantMutex's depth
)

// lockAt describes the xsync.Mutex at offset off of seg's data: unlocked,
// or which process holds it, and whether that process can still unlock
// it (it maps the segment) and whether it still runs.
func lockAt(seg *shm.Segment, off uint64) (string, error) {
	word, err := shm.View[atomic.Uint64](seg, off)
	if err != nil {
		return "", err
	}
	v := word.Load()
	if v == 0 {
		return "unlocked", nil
	}
	id, maps, waiters := lockHolder(v, region.Lookup(word))
	who := fmt.Sprintf("pid %d", id.Pid())
	if !id.Local() {
		who += " of another PID namespace"
	}
	const takeover = ": the next locker takes the lock over"
	var s string
	switch {
	case maps:
		s = "locked by " + who + " (running)"
	case !id.Local():
		// Its pid means nothing here: whether it runs cannot be told.
		s = "locked by " + who + ", which no longer maps the segment (it exited, exec'd another program or closed the segment)" + takeover
	case owner.Alive(id):
		// Same pid and start time: the process that locked, or the
		// program it exec'd; either way it can never unlock.
		s = "locked by " + who + ", which still runs but no longer maps the segment (it exec'd another program or closed the segment)" + takeover
	default:
		s = "locked by " + who + ", which has exited" + takeover
	}
	if waiters {
		s += ", with waiters asleep"
	}
	return s, nil
}

// lockHolder decodes a locked xsync.Mutex word (LAYOUT.md, "Mutex") in
// the segment reg: the holder's identity, whether that process still
// maps the segment (as a waiter judges it: a holder that died, exec'd or
// closed the segment does not, and is taken over from), and whether
// waiters may sleep.
func lockHolder(word uint64, reg *region.Region) (id owner.ID, maps, waiters bool) {
	const waitersBit = 1 << 31
	id = owner.ID(word &^ waitersBit)
	return id, reg.Alive(id), word&waitersBit != 0
}

func cmdRemove(args []string, w io.Writer) error {
	fs := newFlags("rm", "NAME...")
	dir := fs.String("dir", "", dirUsage)
	stale := fs.Bool("stale", false, "remove only stale segments, the NAMEs given or all: creator exited (crashed, or left the segment on purpose) and no process attached")
	force := fs.Bool("force", false, "remove the NAMEs even if they are not segments (never directories)")
	foreign := fs.Bool("foreign", false, "with -stale: also remove segments no process maps whose creator is in another PID namespace (another container), which may still run")
	prefix := fs.String("prefix", "", "with -stale and no NAMEs: only segments whose names start with `P`; with -foreign, how a restarted container (a new PID namespace) removes its previous run's leftovers and nothing of other containers'")
	names, err := parseArgs(fs, args)
	prefixed := false // -prefix given, even empty (an unset variable: refused, not "all")
	fs.Visit(func(f *flag.Flag) { prefixed = prefixed || f.Name == "prefix" })
	switch {
	case err != nil:
		return err
	case *stale && *force:
		return usageError(fs, "-stale and -force exclude each other")
	case *foreign && !*stale:
		return usageError(fs, "-foreign goes with -stale")
	case prefixed && !*stale:
		return usageError(fs, "-prefix goes with -stale")
	case prefixed && len(names) > 0:
		return usageError(fs, "-prefix chooses the segments: give it or NAMEs, not both")
	case prefixed && shm.ValidName(*prefix) != nil:
		return usageError(fs, "-prefix %q: no segment name starts so: %v", *prefix, shm.ValidName(*prefix))
	case !*stale && len(names) == 0:
		return usageError(fs, "no segment named: give the NAMEs to remove, or -stale to remove stale segments")
	}
	opts := dirOption(*dir)
	if prefixed {
		opts = append(opts, shm.Prefix(*prefix))
	}
	isStale := shm.Info.Stale
	if *foreign {
		opts = append(opts, shm.Foreign())
		isStale = shm.Info.Unused
	}
	var errs []error
	switch {
	case *stale && len(names) == 0:
		removed, err := shm.Sweep(opts...)
		for _, name := range removed {
			fmt.Fprintln(w, "removed", name)
		}
		if len(removed) == 0 && err == nil {
			fmt.Fprintln(w, "nothing stale to remove"+foreignHint(*foreign, *prefix, opts))
		}
		if err != nil {
			errs = append(errs, err)
		}
	case *stale:
		for _, name := range names {
			var why string
			removed, err := shm.RemoveIf(name, func(in shm.Info) bool {
				why = notStale(in)
				return isStale(in)
			}, opts...)
			switch {
			case err != nil:
				errs = append(errs, err)
			case !removed:
				errs = append(errs, fmt.Errorf("%s is not stale (%s); it was left alone", name, why))
			default:
				fmt.Fprintln(w, "removed", name)
			}
		}
	default:
		for _, name := range names {
			in, serr := shm.Stat(name, opts...)
			err := shm.Remove(name, opts...)
			if errors.Is(err, shm.ErrBadMagic) && *force {
				err = forceRemove(name, opts)
			} else if errors.Is(err, shm.ErrBadMagic) {
				err = fmt.Errorf("%w (rm -force removes it anyway)", err)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if serr == nil && in.InUse {
				// As rm of an open file: the name goes, the memory stays
				// with those that map it.
				who, keep := "processes", "which keep it until they close it"
				if live := liveAttached(in); len(live) > 0 {
					who = pids(live)
					if len(live) == 1 {
						keep = "which keeps it until it closes it"
					}
				}
				fmt.Fprintf(w, "removed %s (still mapped by %s, %s; no process can open it any more)\n", name, who, keep)
				continue
			}
			fmt.Fprintln(w, "removed", name)
		}
	}
	return errors.Join(errs...)
}

// foreignHint says, after a sweep without -foreign, how many segments
// of creators of another PID namespace no process maps (rm -stale
// -foreign would remove them; with the same -prefix, if one was given).
func foreignHint(foreign bool, prefix string, opts []shm.Option) string {
	if foreign {
		return ""
	}
	infos, err := shm.List(opts...)
	if err != nil {
		return ""
	}
	n := 0
	for _, in := range infos {
		if in.Unused() && !in.Stale() {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	cmd := "rm -stale -foreign"
	if prefix != "" {
		cmd += " -prefix " + prefix
	}
	return fmt.Sprintf(" (%d unused segments of creators of another PID namespace, which may still run: %s removes them)", n, cmd)
}

// notStale says why a segment is not a crash's leftover.
func notStale(in shm.Info) string {
	switch {
	case in.Err != nil:
		return "damaged: " + in.Err.Error() + "; rm without -stale removes it"
	case in.CreatorAlive && !in.CreatorForeign:
		return fmt.Sprintf("its creator, pid %d, is running", in.Creator)
	case in.InUse && len(in.Attached) > len(in.Dead):
		live := liveAttached(in)
		if len(live) == 1 {
			return pids(live) + " has it mapped"
		}
		return pids(live) + " have it mapped"
	case in.InUse:
		return "a process has it mapped"
	case in.CreatorForeign:
		return fmt.Sprintf("its creator, %s, may still run; rm -stale -foreign removes it", foreignPid(in.Creator))
	}
	return "not a leftover"
}

// pids names processes: "process 12", "processes [12 34]".
func pids(ps []int) string {
	if len(ps) == 1 {
		return fmt.Sprintf("process %d", ps[0])
	}
	return fmt.Sprintf("processes %v", ps)
}

func liveAttached(in shm.Info) []int {
	var live []int
	for _, pid := range in.Attached {
		dead := false
		for _, d := range in.Dead {
			dead = dead || d == pid
		}
		if !dead {
			live = append(live, pid)
		}
	}
	return live
}

// forceRemove unlinks whatever file is at the segment name, but never a
// directory.
func forceRemove(name string, opts []shm.Option) error {
	path, err := shm.Path(name, opts...)
	if err != nil {
		return err
	}
	if err := syscall.Unlink(path); err != nil {
		return &os.PathError{Op: "rm -force", Path: path, Err: err}
	}
	return nil
}
