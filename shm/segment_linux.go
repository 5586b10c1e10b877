package shm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"

	"github.com/xproc-go/xproc/internal/layout"
	"github.com/xproc-go/xproc/internal/owner"
	"github.com/xproc-go/xproc/internal/region"
)

// Create makes a new named segment holding spec and maps it. It fails with
// ErrExist if the name is taken.
//
// The segment is built in an unnamed file (O_TMPFILE, or a hidden
// temporary name where the file system lacks it), fully initialised —
// header, Spec.Init, ready flag — and only then linked under its name. So
// no process can ever open a half-made segment, and a creator killed
// half-way leaves nothing behind. Linking fails if the name exists, which
// makes creation exclusive.
func Create(name string, spec Spec, opts ...Option) (*Segment, error) {
	fail := func(err error) (*Segment, error) { return nil, &Error{Op: "create", Name: name, Err: err} }
	path, err := segmentPath(name, opts)
	if err != nil {
		return fail(err)
	}
	h, err := spec.header()
	if err != nil {
		return fail(err)
	}
	o := getOptions(opts)
	f, tmp, err := createTemp(o.dir, o.perm)
	if err != nil {
		return fail(o.dirErr(err, false))
	}
	if tmp != "" {
		defer os.Remove(tmp)
	}
	// f stays open as the segment's own file: it holds the liveness lock.
	s, err := initFile(f, f, &h, spec.Init)
	if err != nil {
		f.Close()
		return fail(err)
	}
	if err := publish(f, tmp, path); err != nil {
		s.Close()
		if errors.Is(err, ErrExist) {
			if info, serr := statFile(name, path); serr == nil && info.Stale() {
				err = fmt.Errorf("%w; it is a leftover (its creator, pid %d, has exited and no process maps it): shm.RemoveStale or xproc rm -stale removes it", err, info.Creator)
			}
		}
		return fail(err)
	}
	s.name, s.path = name, path
	return s, nil
}

// CreateAnonymous makes a segment with no name (memfd_create). It lives as
// long as some process maps it or holds its file; hand File() to children
// through exec.Cmd.ExtraFiles and map it there with OpenFile.
func CreateAnonymous(spec Spec) (*Segment, error) {
	fail := func(err error) (*Segment, error) { return nil, &Error{Op: "create", Err: err} }
	h, err := spec.header()
	if err != nil {
		return fail(err)
	}
	fd, err := unix.MemfdCreate("xproc", unix.MFD_CLOEXEC)
	if err != nil {
		return fail(osErr(err))
	}
	f := os.NewFile(uintptr(fd), "memfd:xproc")
	// Children inherit f's open file description; the liveness lock must
	// be on one of this process's own.
	own := reopen(f)
	s, err := initFile(f, own, &h, spec.Init)
	if err != nil {
		if own != nil {
			own.Close()
		}
		f.Close()
		return fail(err)
	}
	s.file = f
	return s, nil
}

// Open maps the named segment after checking its header against spec:
// kind always, element type and length when spec sets them. Every problem
// with the file has its own error (ErrNotExist, ErrBadMagic, ErrVersion,
// ErrChecksum, ErrTruncated, ErrBadSize, ErrCorrupt, ErrKind,
// ErrTypeMismatch, ErrLenMismatch).
func Open(name string, spec Spec, opts ...Option) (*Segment, error) {
	fail := func(err error) (*Segment, error) { return nil, &Error{Op: "open", Name: name, Err: err} }
	path, err := segmentPath(name, opts)
	if err != nil {
		return fail(err)
	}
	f, err := openNoFollow(path, unix.O_RDWR)
	if err != nil {
		o := getOptions(opts)
		return fail(o.dirErr(err, true))
	}
	s, err := mapFile(f, &spec, f)
	if err != nil {
		f.Close()
		return fail(err)
	}
	s.name, s.path = name, path
	return s, nil
}

// OpenFile maps a segment from an open file, typically an anonymous
// segment inherited from the parent: os.NewFile(3, "segment") for the
// first of exec.Cmd.ExtraFiles. The header is checked as in Open. The
// caller keeps ownership of f and may close it once OpenFile returns.
func OpenFile(f *os.File, spec Spec) (*Segment, error) {
	if f == nil {
		return nil, &Error{Op: "open", Name: "(nil file)", Err: fmt.Errorf("%w: no file: was the segment handed over (process.Files, exec.Cmd.ExtraFiles)?", ErrInvalid)}
	}
	own := reopen(f)
	s, err := mapFile(f, &spec, own)
	if err != nil {
		if own != nil {
			own.Close()
		}
		return nil, &Error{Op: "open", Name: f.Name(), Err: err}
	}
	return s, nil
}

// reopen opens f's file again, read-write and close-on-exec, for an open
// file description private to this process, or returns nil if it cannot
// (no /proc). A description inherited from another process, or handed to
// children, is shared with them, and so cannot hold this process's
// liveness lock: the lock would outlive this process in theirs.
func reopen(f *os.File) *os.File {
	g, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	return g
}

// openNoFollow opens the segment file at path with flag (O_RDONLY or
// O_RDWR) for Open and Stat. It never follows a symbolic link at the name,
// never blocks (O_NONBLOCK: opening a FIFO for reading would otherwise
// wait for a writer forever) and reports a symbolic link or a directory
// as ErrBadMagic, not a segment, as mapFile and statFile report any other
// file that is not regular.
func openNoFollow(path string, flag int) (*os.File, error) {
	fd, err := unix.Open(path, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case err == nil:
		return os.NewFile(uintptr(fd), path), nil
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("%w: is a symbolic link", ErrBadMagic)
	case errors.Is(err, unix.EISDIR):
		return nil, fmt.Errorf("%w: is a directory", ErrBadMagic)
	}
	return nil, osErr(err)
}

// createTemp opens an unnamed file in dir, or failing that a hidden,
// randomly named one (returned as tmp, to be removed by the caller).
func createTemp(dir string, perm os.FileMode) (f *os.File, tmp string, err error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, uint32(perm))
	if err == nil {
		return os.NewFile(uintptr(fd), dir), "", nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return nil, "", err
	}
	for range 8 {
		var rnd [8]byte
		rand.Read(rnd[:])
		tmp = filepath.Join(dir, ".xproc-tmp-"+hex.EncodeToString(rnd[:]))
		fd, err = unix.Open(tmp, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, uint32(perm))
		if err == nil {
			return os.NewFile(uintptr(fd), tmp), tmp, nil
		}
		if !errors.Is(err, unix.EEXIST) {
			break
		}
	}
	return nil, "", err
}

// publish gives the initialised file its name, failing if it exists.
func publish(f *os.File, tmp, path string) error {
	var err error
	if tmp != "" {
		err = unix.Link(tmp, path)
	} else {
		proc := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
		err = unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, unix.ENOENT) {
			// No /proc: linking by descriptor needs CAP_DAC_READ_SEARCH.
			err = unix.Linkat(int(f.Fd()), "", unix.AT_FDCWD, path, unix.AT_EMPTY_PATH)
		}
	}
	return osErr(err)
}

// initFile sizes f and reserves its space, maps it, attaches this process
// through own (see owner.Attach), writes the header, runs init and sets
// the ready flag. own is the open file the segment keeps for itself: f
// for a named segment, a private reopening for an anonymous one (nil if
// there is none). The segment owns it once initFile returns without
// error; on error the caller closes what it opened.
func initFile(f, own *os.File, h *layout.Header, init func(*Segment) error) (*Segment, error) {
	end := h.DataOffset + h.DataSize
	if err := reserve(f, int64(end)); err != nil {
		return nil, err
	}
	mem, err := mmap.MapRegion(f, int(end), mmap.RDWR, 0, 0)
	if err != nil {
		return nil, osErr(err)
	}
	s := &Segment{mem: mem, data: mem[h.DataOffset:end], unmap: mem.Unmap, own: own}
	// Attach before this process's identity can appear anywhere in the
	// segment (attach table, lock words written by init).
	if err := s.attach(f); err != nil {
		mem.Unmap()
		return nil, err
	}
	h.Ready = 0
	h.Encode(mem)
	s.hdr = *h
	if init != nil {
		if err := init(s); err != nil {
			mem.Unmap()
			return nil, err
		}
	}
	readyWord(mem).Store(1)
	s.hdr.Ready = 1
	s.register()
	return s, nil
}

// attach takes this process's liveness lock through s.own and records
// whether it holds it. Without it (no private file, or a file system
// without locks), liveness falls back to /proc (see package owner).
//
// A process that maps a segment without its liveness lock, on a file
// system where the others ask for it, would look dead to them, and have
// its locks taken: so attach fails then, with ErrLiveness. Only where the
// file system answers no lock queries at all (f, the segment's file,
// cannot be asked) does it go on without one, every process then falling
// back alike.
func (s *Segment) attach(f *os.File) error {
	var err error
	if s.own == nil {
		err = errors.New("no open file of its own to hold it: the segment was inherited and /proc, needed to reopen it, is not mounted")
	} else if err = owner.Attach(s.own); err == nil {
		s.locked = true
		return nil
	}
	if _, qerr := owner.InUse(f); qerr != nil {
		return nil // no locks on this file system: /proc decides, for everyone
	}
	return fmt.Errorf("%w: %v", ErrLiveness, err)
}

// register enters the mapping in this process's table of regions,
// claiming a slot in the attach table.
func (s *Segment) register() {
	var lock *os.File
	if s.locked {
		lock = s.own
	}
	s.region = region.Register(s.mem, attachTable(s.mem), lock)
}

// reserve sizes f to size bytes and has the file system allocate them
// (fallocate), so that running out of space is an error here, matching
// syscall.ENOSPC, rather than a SIGBUS at the first write into the
// mapping. Where fallocate is not supported, it writes a zero byte into
// every block instead, which allocates it on most file systems (a file
// system that keeps zeros as holes, ZFS with compression, does not).
func reserve(f *os.File, size int64) error {
	fd := int(f.Fd())
	for {
		err := unix.Fallocate(fd, 0, 0, size)
		switch {
		case err == nil:
			return nil
		case err == unix.EINTR:
			continue
		case err != unix.EOPNOTSUPP && err != unix.ENOSYS:
			return fmt.Errorf("reserving %d bytes: %w", size, err)
		}
		break
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("reserving %d bytes: %w", size, osErr(err))
	}
	var st unix.Stat_t
	blk := int64(4096)
	if unix.Fstat(fd, &st) == nil && st.Blksize > 0 {
		blk = int64(st.Blksize)
	}
	zero := []byte{0}
	for off := int64(0); off < size; off += blk {
		if _, err := f.WriteAt(zero, off); err != nil {
			return fmt.Errorf("reserving %d bytes: %w", size, err)
		}
	}
	return nil
}

// mapFile validates the header of f against spec and maps it, attaching
// this process through own (as initFile does). A named segment (own == f)
// that a sweeper removed while it was being opened (see RemoveStale)
// fails with ErrNotExist.
func mapFile(f *os.File, spec *Spec, own *os.File) (*Segment, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, osErr(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", ErrBadMagic)
	}
	buf := make([]byte, layout.HeaderSize)
	n, _ := f.ReadAt(buf, 0)
	h, err := layout.Decode(buf[:n], fi.Size())
	if err != nil {
		return nil, err
	}
	if err := spec.check(&h); err != nil {
		return nil, err
	}
	end := h.DataOffset + h.DataSize
	mem, err := mmap.MapRegion(f, int(end), mmap.RDWR, 0, 0)
	if err != nil {
		return nil, osErr(err)
	}
	s := &Segment{hdr: h, mem: mem, data: mem[h.DataOffset:end], unmap: mem.Unmap, own: own}
	// The attach waits while a sweeper holds the segment; if the sweeper
	// removed it meanwhile, the name is gone.
	if err := s.attach(f); err != nil {
		mem.Unmap()
		return nil, err
	}
	if own == f && unlinked(f) {
		mem.Unmap()
		return nil, fmt.Errorf("%w (removed while being opened)", ErrNotExist)
	}
	s.register()
	return s, nil
}

// unlinked reports whether the file open as f no longer has a name.
func unlinked(f *os.File) bool {
	var st unix.Stat_t
	return unix.Fstat(int(f.Fd()), &st) == nil && st.Nlink == 0
}

// unlinkIfSame removes the name path if it still refers to the file fi
// describes, and reports whether it did, or changed if another file has
// taken the name (then nothing is removed). The name is first moved
// aside, atomically, to a hidden one: checking and then unlinking path
// would remove a segment created under the name in between.
func unlinkIfSame(path string, fi os.FileInfo) (removed, changed bool, err error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	aside := filepath.Join(filepath.Dir(path), ".xproc-rm-"+hex.EncodeToString(rnd[:]))
	err = unix.Renameat2(unix.AT_FDCWD, path, unix.AT_FDCWD, aside, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// No renameat2 flags on this file system: check, then unlink.
		if now, err := os.Lstat(path); err != nil || !os.SameFile(fi, now) {
			return false, err == nil, osErr(err)
		}
		err := os.Remove(path)
		return err == nil, false, osErr(err)
	}
	if err != nil {
		return false, false, osErr(err)
	}
	if now, err := os.Lstat(aside); err == nil && os.SameFile(fi, now) {
		return true, false, osErr(os.Remove(aside))
	}
	// Another file took the name: give it back.
	if err := unix.Renameat2(unix.AT_FDCWD, aside, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE); err != nil {
		return false, false, fmt.Errorf("the segment at %s was replaced while being removed, and could not be put back (it is at %s): %w", path, aside, osErr(err))
	}
	return false, true, nil
}
