"""The three durable write protocols (see RELIABILITY.md) and the reads that pair with them.

* :func:`replace` — temp file, fsync, rename over the target, fsync the directory: readers see the old or the new
  content, never a mix, and the new content survives a power cut once the call returns.
* :func:`claim_first` — write-once: temp file, fsync, ``link`` to the final name (EEXIST means taken), fsync the
  directory. An existing name is never overwritten.
* :func:`append_line` — one ``write()`` of one complete line on an ``O_APPEND`` descriptor, then fdatasync; a torn
  tail left by an earlier crash is cut off first so the new line never fuses with it.

A failed fsync is never retried: the error propagates, nothing is acknowledged.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable

from atlas_tasks._fs import ops
from atlas_tasks._fs.dirs import Dir

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


def temp_name(final: str) -> str:
    """A fresh temp name beside ``final``: hidden (leading dot) so no listing takes it for data."""
    return f"{TEMP_PREFIX}{final}.{secrets.token_hex(6)}{TEMP_SUFFIX}"


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def _write_temp(d: Dir, final: str, data: bytes) -> str:
    tmp = temp_name(final)
    path = d.child(tmp)
    fd = ops.open_file(tmp, ops.NEW_FILE_FLAGS, d.fd, path)
    try:
        ops.fchmod(fd, ops.FILE_MODE, path)
        ops.write_all(fd, data, path)
        ops.fsync(fd, path)
    except BaseException:
        ops.close(fd)
        _discard(d, tmp)
        raise
    ops.close(fd)
    return tmp


def _discard(d: Dir, name: str) -> None:
    with contextlib.suppress(OSError):
        ops.unlink(name, d.fd, d.child(name))


def replace(d: Dir, name: str, data: bytes, *, sync_dir: bool = True) -> None:
    """Durably replace (or create) ``d/name`` with ``data``.

    ``sync_dir=False`` leaves the directory's fsync to the caller, who replaces several files of ``d`` and then
    fsyncs it once (each file's data is fsynced here either way).
    """
    tmp = _write_temp(d, name, data)
    try:
        ops.rename(tmp, name, d.fd, d.fd, d.child(name))
    except BaseException:
        _discard(d, tmp)
        raise
    if sync_dir:
        ops.fsync(d.fd, d.path)


def claim_first(d: Dir, names: Iterable[str], data: bytes) -> str | None:
    """Durably create the first free name of ``names`` with ``data``; None if ``names`` ran out.

    The data is written and fsynced once, under a temp name, then hard-linked to each candidate in turn:
    ``link`` fails with EEXIST on a taken name, so an existing file is never overwritten, even by a racing writer.
    """
    tmp = _write_temp(d, "claim", data)
    won: str | None = None
    try:
        for name in names:
            try:
                ops.link(tmp, name, d.fd, d.child(name))
            except FileExistsError:
                continue
            won = name
            break
    finally:
        _discard(d, tmp)
    if won is not None:
        ops.fsync(d.fd, d.path)
    return won


def read(d: Dir, name: str) -> bytes:
    """Read ``d/name`` whole (no symlink followed), without touching its access time where we may."""
    path = d.child(name)
    fd = ops.open_file_noatime(name, d.fd, path)
    try:
        return ops.read_all(fd, path)
    finally:
        ops.close(fd)


def _open_for_append(d: Dir, name: str) -> tuple[int, bool]:
    path = d.child(name)
    try:
        return ops.open_file(name, ops.APPEND_FLAGS, d.fd, path), False
    except FileNotFoundError:
        pass
    try:
        fd = ops.open_file(name, ops.APPEND_FLAGS | os.O_CREAT | os.O_EXCL, d.fd, path)
    except FileExistsError:
        return ops.open_file(name, ops.APPEND_FLAGS, d.fd, path), False
    return fd, True


def clean_end(fd: int, size: int, path: str) -> int:
    """Offset just after the last newline of the file (0 if none): where a torn tail begins."""
    end = size
    step = 4096
    while end > 0:
        start = max(0, end - step)
        chunk = ops.pread(fd, end - start, start, path)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


def append_line(d: Dir, name: str, line: bytes) -> int:
    """Durably append one complete line (``line`` must end with a single ``\\n``); returns the torn bytes cut.

    The caller holds the file's lock, so no other appender runs concurrently and cutting a torn tail is safe:
    a tail without a newline is the remainder of an append that crashed before it was acknowledged.
    """
    fd, created = _open_for_append(d, name)
    path = d.child(name)
    cut = 0
    try:
        if created:
            ops.fchmod(fd, ops.FILE_MODE, path)
        else:
            st = ops.fstat(fd)
            ops.require_regular(st, path)  # a FIFO or device planted as the log: refused, never written to
            size = st.st_size
            if size and ops.pread(fd, 1, size - 1, path) != b"\n":
                keep = clean_end(fd, size, path)
                cut = size - keep
                ops.ftruncate(fd, keep, path)
        ops.set_blocking(fd, ops.APPEND_FLAGS, path)
        ops.write_all(fd, line, path)
        ops.fdatasync(fd, path)
    finally:
        ops.close(fd)
    if created:
        ops.fsync(d.fd, d.path)
    return cut
