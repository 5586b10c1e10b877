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
// are not segments; RemoveIf(name, Info.Stale) removes a crash's
// leftover and nothing else.
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
// The header keeps a table of the processes that have the segment mapped;
// Info and List report them, and which of them died without closing it.
//
// # Caveats
//
// Memory returned by Data, View and Slice is valid only until Close;
// using it afterwards faults. Unlink removes the name only: mappings stay
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
