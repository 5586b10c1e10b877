package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/xproc-go/xproc/shm"
	xsync "github.com/xproc-go/xproc/sync"
)

func dirOption(dir string) []shm.Option {
	if dir == "" {
		return nil
	}
	return []shm.Option{shm.Dir(dir)}
}

func cmdList(args []string, w io.Writer) error {
	fs := newFlags("ls", "")
	dir := fs.String("dir", "", "segment directory (default $XPROC_SHM_DIR or /dev/shm)")
	if err := fs.Parse(args); err != nil {
		return err
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
		fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%s\t%s\t%s\t%s\n", in.Name, in.Kind, in.Type, in.Len,
			byteSize(in.FileSize), pidState(in.Creator, in.CreatorAlive), attached(in),
			time.Since(in.Created).Round(time.Second))
	}
	return tw.Flush()
}

func pidState(pid int, alive bool) string {
	if alive {
		return fmt.Sprint(pid)
	}
	return fmt.Sprintf("%d (exited)", pid)
}

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
	dir := fs.String("dir", "", "segment directory (default $XPROC_SHM_DIR or /dev/shm)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	name, opts := fs.Arg(0), dirOption(*dir)
	in, err := shm.Stat(name, opts...)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("name", in.Name)
	row("path", in.Path)
	row("kind", in.Kind)
	row("type", fmt.Sprintf("%s (%d bytes)", in.Type, in.ElemSize))
	row("len", in.Len)
	if len(in.Shape) > 0 {
		row("shape", in.Shape)
	}
	row("data", fmt.Sprintf("%d bytes; file %d bytes", in.DataSize, in.FileSize))
	row("created", in.Created.Format(time.RFC3339Nano))
	row("creator", pidState(in.Creator, in.CreatorAlive))
	row("attached", fmt.Sprintf("%v (dead: %v)", in.Attached, in.Dead))
	if state, err := primitiveState(name, in.Kind, opts); err != nil {
		row("state", "unavailable: "+err.Error())
	} else if state != "" {
		row("state", state)
	}
	return tw.Flush()
}

// primitiveState describes the state of a named xsync primitive.
func primitiveState(name string, kind shm.Kind, opts []shm.Option) (string, error) {
	type closer interface{ Close() error }
	var c closer
	var state string
	switch kind {
	case shm.KindMutex:
		m, err := xsync.OpenMutex(name, opts...)
		if err != nil {
			return "", err
		}
		c, state = m, lockedState(m.Locked())
	case shm.KindReentrantMutex:
		m, err := xsync.OpenReentrantMutex(name, opts...)
		if err != nil {
			return "", err
		}
		c, state = m, lockedState(m.Locked())
	case shm.KindSemaphore:
		s, err := xsync.OpenSemaphore(name, opts...)
		if err != nil {
			return "", err
		}
		c, state = s, fmt.Sprintf("value %d, bounded %v", s.Value(), s.Bounded())
	case shm.KindEvent:
		e, err := xsync.OpenEvent(name, opts...)
		if err != nil {
			return "", err
		}
		c, state = e, map[bool]string{true: "set", false: "clear"}[e.IsSet()]
	case shm.KindCond:
		cv, err := xsync.OpenCond(name, opts...)
		if err != nil {
			return "", err
		}
		c, state = cv, fmt.Sprintf("%d waiting; mutex %s", cv.Cond().Waiting(), lockedState(cv.Mutex().Locked()))
	case shm.KindBarrier:
		b, err := xsync.OpenBarrier(name, opts...)
		if err != nil {
			return "", err
		}
		c, state = b, fmt.Sprintf("%d parties, %d waiting, broken %v", b.Parties(), b.Waiting(), b.Broken())
	default:
		return messageState(name, kind, opts)
	}
	return state, c.Close()
}

func lockedState(locked bool) string {
	if locked {
		return "locked"
	}
	return "unlocked"
}

func cmdRemove(args []string, w io.Writer) error {
	fs := newFlags("rm", "NAME...")
	dir := fs.String("dir", "", "segment directory (default $XPROC_SHM_DIR or /dev/shm)")
	stale := fs.Bool("stale", false, "remove every segment whose creator and attached processes have all exited")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := dirOption(*dir)
	names := fs.Args()
	if *stale {
		infos, err := shm.List(opts...)
		if err != nil {
			return err
		}
		for _, in := range infos {
			if in.Stale() {
				names = append(names, in.Name)
			}
		}
	} else if len(names) == 0 {
		fs.Usage()
		return errUsage
	}
	var errs []error
	for _, name := range names {
		if err := shm.Remove(name, opts...); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(w, "removed", name)
	}
	return errors.Join(errs...)
}
