"""The file store's collector lock: one ``gc`` at a time per home (see :class:`atlas_tasks.store.CollectorLocks`).

An ``flock`` on ``<home>/.atlas-tasks/gc.lock``: the kernel gives it back when the holder dies, however it dies
(``kill -9`` included), so a crashed collector never blocks the next one. The holder's description (pid, host,
since) is written into the locked file after taking the lock, for the busy message of a second collector.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from typing import Any

from atlas_tasks._fs.dirs import walk
from atlas_tasks.backends.file._layout import PRIVATE_DIR, Layout
from atlas_tasks.errors import CollectorBusyError

LOCK_NAME = "gc.lock"


class FileCollectorLock:
    """A held collector lock; ``release()`` gives it back (idempotent)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # no stale description for the next reader; the lock itself dies with the fd
        finally:
            os.close(fd)


def acquire(layout: Layout, where: str, holder: Mapping[str, Any]) -> FileCollectorLock:
    """Take the lock in the store's private directory (created if missing; walked without following symlinks).

    Raises:
        CollectorBusyError: another live process holds it.
    """
    with layout.open_home(create=True) as home, walk(home, [PRIVATE_DIR], create=True, mode=0o700) as private:
        fd = os.open(LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=private.fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            raw = os.pread(fd, 4096, 0)
        finally:
            os.close(fd)
        try:
            described = json.loads(raw) if raw else {}
        except ValueError:
            described = {}  # the holder is between taking the lock and describing itself
        raise CollectorBusyError(where, described if isinstance(described, dict) else {}) from None
    except BaseException:
        os.close(fd)
        raise
    data = json.dumps(dict(holder), default=str).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    return FileCollectorLock(fd)
