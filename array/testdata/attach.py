"""Attach to an xproc Array[float64] and Value[int64] by name, using only
Python's standard library, as LAYOUT.md describes.

Usage: python3 attach.py ARRAY_NAME VALUE_NAME

Both segments must be in /dev/shm, where multiprocessing.shared_memory
looks. The script reads each segment's header (never hard-coding an
offset), prints what it found as one JSON object on stdout, then writes:
every array element x becomes 2*x + 1, and the value v becomes 3*v - 1.
It exits non-zero, with a message, if a header is not what it expects.
"""

import json
import struct
import sys
from multiprocessing import resource_tracker, shared_memory

MAGIC = b"XPROCSEG"
VERSION = 2
KIND_VALUE = 8
KIND_ARRAY = 9


def attach(name):
    """Open an existing segment without letting Python unlink it at exit."""
    try:
        return shared_memory.SharedMemory(name, track=False)  # Python 3.13+
    except TypeError:
        shm = shared_memory.SharedMemory(name)
        # Before 3.13, attaching registers the segment with the resource
        # tracker, which would unlink it when this process exits.
        resource_tracker.unregister(shm._name, "shared_memory")
        return shm


def header(buf):
    """Decode the fields of the header page that a reader needs."""
    if bytes(buf[0:8]) != MAGIC:
        sys.exit("not an xproc segment (bad magic)")
    version, kind = struct.unpack_from("<II", buf, 8)
    data_offset, data_size, elem_size, elem_align, length = struct.unpack_from("<5Q", buf, 24)
    ndim = struct.unpack_from("<I", buf, 20)[0]
    shape = struct.unpack_from("<4Q", buf, 72)[:ndim]
    params = struct.unpack_from("<8Q", buf, 104)
    type_name = bytes(buf[192:248]).split(b"\0", 1)[0].decode()
    (ready,) = struct.unpack_from("<I", buf, 260)
    if version != VERSION or ready != 1:
        sys.exit(f"version {version}, ready {ready}: cannot read this segment")
    end = data_offset + data_size
    if end > len(buf) or length * elem_size > data_size:
        sys.exit("header sizes exceed the segment")
    # Value and Array keep their lock after the elements, at their size
    # rounded up to 8 bytes (Value) or 64 bytes (Array); Params[0] records
    # where.
    unit = 8 if kind == KIND_VALUE else 64
    lock = (length * elem_size + unit - 1) // unit * unit
    if params[0] != lock or data_size != lock + 8:
        sys.exit(f"lock at {params[0]}, data size {data_size}: want {lock}, {lock + 8}")
    return {
        "kind": kind,
        "data_offset": data_offset,
        "data_size": data_size,
        "elem_size": elem_size,
        "len": length,
        "shape": list(shape),
        "type": type_name,
        "lock_offset": params[0],
    }


def elements(shm, h, fmt):
    """A memoryview of the elements, cast to the struct format fmt."""
    if struct.calcsize(fmt) != h["elem_size"]:
        sys.exit(f"element size {h['elem_size']} does not fit format {fmt!r}")
    off = h["data_offset"]
    return shm.buf[off : off + h["len"] * h["elem_size"]].cast(fmt)


def main():
    array_name, value_name = sys.argv[1:3]
    arr_shm, val_shm = attach(array_name), attach(value_name)
    arr_h, val_h = header(arr_shm.buf), header(val_shm.buf)
    if arr_h["kind"] != KIND_ARRAY or val_h["kind"] != KIND_VALUE:
        sys.exit(f"kinds {arr_h['kind']}, {val_h['kind']}: want an array and a value")

    arr = elements(arr_shm, arr_h, "d")
    val = elements(val_shm, val_h, "q")
    json.dump(
        {"array": arr_h, "value": val_h, "elements": arr.tolist(), "v": val[0]},
        sys.stdout,
    )
    sys.stdout.write("\n")

    for i in range(len(arr)):
        arr[i] = 2 * arr[i] + 1
    val[0] = 3 * val[0] - 1

    # Views must be released before the segments are closed.
    arr.release()
    val.release()
    arr_shm.close()
    val_shm.close()


if __name__ == "__main__":
    main()
