// Package shm creates, opens, validates and lists shared-memory segments:
// files mapped MAP_SHARED by every process that opens them, each starting
// with a header page that says what the segment holds.
//
// # Basics
//
// A named segment lives in a directory, /dev/shm unless XPROC_SHM_DIR or
// the Dir option says otherwise (any directory works; one on disk gives
// persistent, file-backed data). Names are 1 to 200 bytes of
// [A-Za-z0-9._-], not starting with '.' or '-'. A directory that is
// missing is named in the error, not taken for a missing segment.
//
// Create is exclusive and atomic: the segment is built in an unnamed file
// (O_TMPFILE), initialised completely, header and data, and only then
// linked under its name, which fails if the name exists. No process can
// open a half-built segment and a creator killed half-way leaves nothing
// behind, so Open never has to wait for a creator to finish. (The design
// first called for publishing a ready flag in place and having Open wait
// for it; linking a finished file makes the wait, and the stale
// half-created files a killed creator would leave, unnecessary. The ready
// flag is still written and checked, for files made by other tools.)
//
// Remove and RemoveIf unlink a segment by name, and refuse files that
// are not segments; RemoveStale (RemoveIf(name, Info.Stale)) removes a
// crash's leftover and nothing else.
//
// Open reads the header into private memory and validates all of it before
// trusting any offset: magic, version, checksum, field consistency, sizes
// against the file size, kind, element type and length. Each problem has
// its own sentinel error (ErrBadMagic, ErrVersion, ErrChecksum, ErrCorrupt,
// ErrTruncated, ErrBadSize, ErrNotReady, ErrKind, ErrTypeMismatch,
// ErrLenMismatch), wrapped in an *Error naming the operation and segment.
// ErrExist, ErrNotExist and ErrClosed also match io/fs's errors of the
// same names, and the system's own error (for example fs.ErrPermission)
// stays in the chain. LAYOUT.md documents the format byte by byte, for other languages.
//
// CreateAnonymous makes a segment without a name (memfd_create); pass its
// File to a child process through exec.Cmd.ExtraFiles and map it there
// with OpenFile.
//
// Create reserves the segment's space in the file system (fallocate)
// before mapping it: on a full /dev/shm (Docker's is 64 MiB by default) it
// fails with an error matching syscall.ENOSPC and leaves no file, rather
// than handing out a mapping whose first write kills the process with
// SIGBUS. Where the file system has no fallocate, a byte is written into
// each block instead, which allocates it on most file systems (not on
// those that store zeros as holes, such as ZFS with compression).
//
// Pages of /dev/shm (tmpfs) and of anonymous segments are memory,
// charged to the memory cgroup of the process that reserves them. In a
// container with a memory limit, a Create or CreateAnonymous bigger than
// the room left under the limit does not fail: the kernel's OOM killer
// kills the process inside it (leaving no file). Size the container's
// memory limit for its heap plus its segments.
//
// # Who maps a segment
//
// Every process that maps a segment holds an open-file-description lock
// on one byte of its file, chosen by its identity (see internal/owner and
// LAYOUT.md), for as long as it maps it. The kernel drops the lock when
// the process unmaps, dies or execs, so Info.InUse and Info.Dead, and the
// lock-owner checks of package sync, are exact whatever PID namespace the
// processes are in. The header also keeps a table of the attached
// processes, which Info and List report.
//
// # Cleaning up after a crash
//
// A process killed with SIGKILL cannot unlink its named segments. A
// segment is stale (Info.Stale) when no process maps it and its creator is
// no longer running (with the Foreign option, also when its creator is in
// another PID namespace, where that cannot be told); RemoveStale removes one such segment and Sweep every
// one in a directory, deciding under a lock that keeps a process from
// opening the segment meanwhile (a concurrent Open either keeps the
// segment or gets ErrNotExist). A program that may be killed can sweep
// its directory at start-up (xproc rm -stale does the same), or use
// anonymous segments, which vanish with the last process that has them.
//
// A container that restarts gets a new PID namespace: the leftovers of
// its previous run then have a creator of another namespace, and Sweep
// keeps them. Name the segments with a prefix of its own and sweep with
// Sweep(shm.Prefix(p), shm.Foreign()) (xproc rm -stale -foreign -prefix
// p): that removes every segment of the prefix no process maps, whoever
// created it, and never one that a process of any namespace maps.
//
// # Caveats
//
// Each mapping keeps one file descriptor open until Close: the one that
// holds its liveness lock. (Go raises the soft limit on open files to the
// hard limit at start-up, so this matters only for programs mapping tens
// of thousands of segments at once.)
//
// Memory returned by Data, View and Slice is valid only until Close;
// using it afterwards faults. The Segment's own methods never do: after
// Close they answer from the header copy or fail with ErrClosed. Unlink removes the name only: mappings stay
// valid until closed.
//
// A process that truncates a segment file others have mapped makes their
// next access to the lost pages fault (SIGBUS). Segments are protected by
// file permissions (0600 by default), not against processes of the same
// user.
//
// Only Linux is supported; elsewhere Create and Open return
// ErrNotSupported.
package shm
