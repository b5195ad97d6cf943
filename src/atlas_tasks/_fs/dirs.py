"""Directory handles that cannot be redirected by a symlink planted inside the store.

A :class:`Dir` is an open directory descriptor plus the path it stands for (for messages only). Paths below the
store's home are always reached by :func:`walk`, one component at a time with ``O_NOFOLLOW``, so a symlink anywhere
inside the store makes the operation fail instead of writing outside the home.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from atlas_tasks._fs import ops


class UnsafePathError(OSError):
    """A component of a path inside the store is a symlink or not a directory."""


class Dir:
    """An open directory: ``fd`` for the *at() calls and ``path`` for messages."""

    __slots__ = ("fd", "path")

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path

    def child(self, name: str) -> str:
        """The display path of ``name`` inside this directory."""
        return f"{self.path}/{name}"

    def close(self) -> None:
        if self.fd >= 0:
            ops.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Dir:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def odd_kind(exc: OSError) -> str | None:
    """What kind of wrong entry ``exc`` met ("a symlink", "a FIFO (named pipe)", "a directory"), or None.

    Such an entry is damage confined to one task or workspace: listings and the check report it there and go on
    with the rest. Any other error (EIO, EACCES, a full disk) is a failure of the store itself.
    """
    if isinstance(exc, ops.NotRegularFileError):
        return exc.kind
    if exc.errno == errno.ELOOP:
        return "a symlink"
    if isinstance(exc, UnsafePathError) or exc.errno == errno.ENOTDIR:
        return "a symlink or a file where a directory belongs"
    if exc.errno == errno.EISDIR:
        return "a directory"
    return None


def refused(what: str, kind: str) -> str:
    """The reason given for an entry ``what`` of the wrong ``kind``."""
    return f"{what} is {kind}, not a regular file; the store never follows or opens such an entry"


def open_home(path: str, *, create: bool) -> Dir:
    """Open the store's home (which the user chose, so a symlinked home is followed), creating it if asked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        if not create:
            raise
        Path(path).mkdir(mode=0o750, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return Dir(fd, path)


def _open_component(parent: Dir, name: str, *, create: bool, mode: int) -> Dir:
    path = parent.child(name)
    try:
        return Dir(ops.open_dir(name, parent.fd, path), path)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError(exc.errno, "refusing a symlink or non-directory inside the store", path) from exc
        raise
    try:
        ops.mkdir(name, parent.fd, path, mode)
    except FileExistsError:
        return _open_component(parent, name, create=False, mode=mode)
    child = Dir(ops.open_dir(name, parent.fd, path), path)
    try:
        # mkdir's mode is filtered by the umask; the store's modes are set explicitly.
        ops.fchmod(child.fd, mode, path)
        # The new entry must survive a power cut before anything inside it is acknowledged.
        ops.fsync(parent.fd, parent.path)
    except BaseException:
        child.close()
        raise
    return child


def walk(start: Dir, parts: Iterable[str], *, create: bool = False, mode: int = ops.DIR_MODE) -> Dir:
    """Open ``start/parts...`` component by component; the returned Dir is new (the caller closes it).

    Raises:
        FileNotFoundError: a component is missing and ``create`` is false.
        UnsafePathError: a component is a symlink or a file.
    """
    parts = tuple(parts)
    if len(parts) > 1:
        # Usually everything exists: one openat2 with no symlink allowed anywhere, else the walk below.
        relative = "/".join(parts)
        path = f"{start.path}/{relative}"
        fd = ops.open_dir_beneath(relative, start.fd, path)
        if fd is not None:
            return Dir(fd, path)
    # The first component is opened relative to ``start`` itself (no dup of its descriptor to open and close).
    current: Dir | None = None
    try:
        for name in parts:
            nxt = _open_component(start if current is None else current, name, create=create, mode=mode)
            if current is not None:
                current.close()
            current = nxt
    except BaseException:
        if current is not None:
            current.close()
        raise
    return Dir(os.dup(start.fd), start.path) if current is None else current
