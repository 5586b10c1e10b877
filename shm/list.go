package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/xproc-go/xproc/internal/layout"
	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/region"
)

// Info describes a segment from its header, as read by Stat and List.
type Info struct {
	Name     string
	Path     string
	Kind     Kind
	Type     string // element type name recorded by the creator
	ElemSize uint64
	Len      uint64
	Shape    []uint64
	DataSize uint64
	FileSize int64
	Created  time.Time
	Creator  int // pid of the creating process, in its own PID namespace
	// CreatorAlive reports whether the creating process still runs. A
	// creator in another PID namespace counts as running: its pid cannot
	// be looked up from here.
	CreatorAlive bool
	// CreatorForeign reports that the creator is in another PID namespace
	// (another container sharing the segment directory, say).
	CreatorForeign bool
	// InUse reports whether any process maps the segment, as the
	// kernel's record of liveness locks says (see package owner); exact,
	// whatever PID namespace the processes are in.
	InUse bool
	// Attached lists the pids recorded in the attach table; Dead those of
	// them that no longer map the segment (they died, exec'd another
	// program or closed it without clearing their entry).
	Attached []int
	Dead     []int
	// Err is set by List for files that look like segments (right magic)
	// but fail validation; the other fields are then unreliable. Info of
	// a closed Segment sets it to an error wrapping ErrClosed; the fields
	// then say what the header said, and nothing of who maps it.
	Err error
}

// Stat reads the header of the named segment without mapping it.
func Stat(name string, opts ...Option) (Info, error) {
	path, err := segmentPath(name, opts)
	if err != nil {
		return Info{}, &Error{Op: "stat", Name: name, Err: err}
	}
	info, err := statFile(name, path)
	if err != nil {
		o := getOptions(opts)
		return Info{}, &Error{Op: "stat", Name: name, Err: o.dirErr(err, true)}
	}
	return info, nil
}

// List returns the segments in the segment directory, sorted by name
// (with the Prefix option, those whose names start with the prefix).
// Files without the segment magic are skipped; files with it that fail
// validation are listed with Err set.
func List(opts ...Option) ([]Info, error) {
	o := getOptions(opts)
	dir := o.dir
	if err := o.checkPrefix(); err != nil {
		return nil, &Error{Op: "list", Name: dir, Err: err}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			err = errno // without the path, which the message gives once
		}
		return nil, &Error{Op: "list", Name: dir, Err: fmt.Errorf("%s: %w", o.describeDir(false), err)}
	}
	var out []Info
	for _, e := range ents {
		if ValidName(e.Name()) != nil || !o.selected(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err != nil || fi.Size() < int64(len(layout.Magic)) {
			continue // too short to say it is a segment
		}
		info, err := statFile(e.Name(), filepath.Join(dir, e.Name()))
		switch {
		case errors.Is(err, ErrBadMagic), errors.Is(err, ErrNotExist):
			continue
		case err != nil:
			info = Info{Name: e.Name(), Path: filepath.Join(dir, e.Name()), Err: err}
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// RemoveStale removes the named segment if it is stale (see Info.Stale;
// Info.Unused with the Foreign option) and reports whether it did:
// RemoveIf with that test. A process that
// opens the segment at the same moment either keeps it from being removed
// or, if it comes a moment later, gets ErrNotExist: a segment in use is
// never removed. A segment that fails validation is never stale, nor is
// one whose name does not start with the Prefix option's prefix.
func RemoveStale(name string, opts ...Option) (bool, error) {
	o := getOptions(opts)
	if err := o.checkPrefix(); err != nil {
		return false, &Error{Op: "unlink", Name: name, Err: err}
	}
	if !o.selected(name) {
		return false, nil
	}
	return RemoveIf(name, staleFor(opts), opts...)
}

// Sweep removes every stale segment in the segment directory (see
// Info.Stale and RemoveStale) and returns the names it removed. Programs
// that may be killed call it at start-up, for their own directory, to
// clean up after a previous run; xproc rm -stale does the same.
//
// In a container, a restart brings a new PID namespace, and the
// leftovers of the previous run then count as another namespace's, which
// Sweep keeps: sweep with Prefix and Foreign there (see Prefix). The
// hidden files a creation or removal killed half-way leaves are removed
// whatever the options, once old and unmapped.
func Sweep(opts ...Option) ([]string, error) {
	infos, err := List(opts...)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	removed = append(removed, sweepHidden(getOptions(opts).dir)...)
	stale := staleFor(opts)
	for _, in := range infos {
		if !stale(in) {
			continue
		}
		ok, err := RemoveStale(in.Name, opts...)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			removed = append(removed, in.Name)
		}
	}
	return removed, errors.Join(errs...)
}

func statFile(name, path string) (Info, error) {
	// Not os.Open: it follows symbolic links (which Open refuses) and
	// blocks forever on a FIFO put at the name.
	f, err := openNoFollow(path, os.O_RDONLY)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	return statOpen(name, path, f)
}

// statOpen reads and validates the header of the segment open as f, and
// asks the kernel, through f, which processes map it.
func statOpen(name, path string, f *os.File) (Info, error) {
	fi, err := f.Stat()
	if err != nil {
		return Info{}, err
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("%w: not a regular file", ErrBadMagic)
	}
	buf := make([]byte, layout.HeaderSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return Info{}, err
	}
	h, err := layout.Decode(buf[:n], fi.Size())
	if err != nil {
		return Info{}, err
	}
	var attached []owner.ID
	for i := range layout.AttachSlots {
		off := layout.AttachOffset + 8*i
		if id := region.EntryID(binary.LittleEndian.Uint64(buf[off:])); id != 0 {
			attached = append(attached, id)
		}
	}
	alive := func(id owner.ID) bool {
		ok, err := owner.Attached(f, id)
		if err != nil {
			return owner.Alive(id)
		}
		return ok
	}
	inUse, err := owner.InUse(f)
	if err != nil {
		inUse = slices.ContainsFunc(attached, alive)
	}
	return infoFromHeader(name, path, &h, fi.Size(), attached, alive, inUse), nil
}

// Stale reports whether the segment is a leftover of a crash, safe to
// remove: it was read without error, no process maps it, and its creator
// no longer runs. A segment whose creator closed it and still runs is not
// stale: the creator may mean to open it again. A creator of another PID
// namespace counts as running, since that cannot be told from here; the
// Foreign option has Sweep and RemoveStale remove its segments too, once
// unused (see Unused).
func (i Info) Stale() bool {
	return i.Err == nil && !i.InUse && !i.CreatorAlive
}

// Unused reports whether the segment was read without error, no process
// maps it, and its creator is gone or of another PID namespace: Stale,
// or a foreign creator's segment that nobody maps (whether that creator
// runs cannot be told). A segment whose creator runs in this namespace is
// not Unused, mapped or not.
func (i Info) Unused() bool {
	return i.Err == nil && !i.InUse && (!i.CreatorAlive || i.CreatorForeign)
}

// staleFor is the test of RemoveStale and Sweep under opts.
func staleFor(opts []Option) func(Info) bool {
	if getOptions(opts).foreign {
		return Info.Unused
	}
	return Info.Stale
}

func infoFromHeader(name, path string, h *layout.Header, fileSize int64, attached []owner.ID, alive func(owner.ID) bool, inUse bool) Info {
	info := Info{
		Name: name, Path: path,
		Kind: h.Kind, Type: h.Name(), ElemSize: h.ElemSize, Len: h.Len,
		DataSize: h.DataSize, FileSize: fileSize,
		Created:        time.Unix(0, h.Created),
		Creator:        int(h.CreatorPid),
		CreatorAlive:   creatorAlive(h),
		CreatorForeign: foreign(h),
		InUse:          inUse,
	}
	if h.NDim > 0 {
		info.Shape = append([]uint64(nil), h.Shape[:h.NDim]...)
	}
	for _, id := range attached {
		info.Attached = append(info.Attached, id.Pid())
		if !alive(id) {
			info.Dead = append(info.Dead, id.Pid())
		}
	}
	return info
}

// creatorAlive reports whether the creator recorded in h still runs,
// never calling one of another PID namespace dead.
func creatorAlive(h *layout.Header) bool {
	return foreign(h) || owner.Alive(owner.Make(int(h.CreatorPid), h.CreatorStart))
}

// foreign reports whether the creator recorded in h is of another PID
// namespace.
func foreign(h *layout.Header) bool {
	return h.CreatorPidNS != 0 && owner.PidNS() != 0 && h.CreatorPidNS != owner.PidNS()
}

// sweepHidden removes the hidden files a killed process can leave in dir:
// a segment being created where the file system has no O_TMPFILE
// (.xproc-tmp-*) and a segment being removed (.xproc-rm-*), each only if
// no process has it mapped and it is older than hiddenAge (a live process
// is done with its own within moments). It returns the names it removed.
func sweepHidden(dir string) []string {
	const hiddenAge = time.Minute
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, ".xproc-tmp-") && !strings.HasPrefix(name, ".xproc-rm-") {
			continue
		}
		if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < hiddenAge {
			continue
		}
		path := filepath.Join(dir, name)
		f, err := openNoFollow(path, os.O_RDWR)
		if err != nil {
			continue
		}
		if free, err := owner.Exclude(f); err == nil && free && os.Remove(path) == nil {
			removed = append(removed, name)
		}
		f.Close()
	}
	return removed
}
