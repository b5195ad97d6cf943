"""What form a workspace's new task ids take, remembered across processes: ``.atlas-tasks/ids/<ws>/style``.

Finding out means reading the whole tasks directory (does it hold a ``task-<uuid>`` of the current Go ATLAS?),
about 25 ms at 100,000 tasks. A store keeps the answer in memory, but each ``atlas-tasks new`` is a new process
and paid the scan every time. This file carries the answer over:

- ``uuid <task id>``: the tasks directory holds that ``task-<uuid>``; checked with one stat on each use (ids are
  never renamed, so while it is there the workspace is a uuid one; a workspace removed and made again under the same
  name does not have it, and is scanned again).
- ``timestamp <unix time>``: a scan at that time found no uuid id; it stands for the store's ``style_recheck``
  seconds (the same delay a long-lived store has for a uuid task the Go ATLAS adds meanwhile).

The file is only a hint: it is written in place without fsync, and anything unreadable, torn or odd (a
symlink, a uuid task no longer there, a clock stepped back) is ignored and the directory is scanned as before. Its
own reads and writes (and the walk to its directory) are plain system calls, outside the store's fault-injection
hooks (``_fs.ops``): a failure
there is ignored by design, so injecting one would test nothing. The Go ATLAS never reads it.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from typing import Literal

from atlas_tasks._fs.dirs import Dir
from atlas_tasks.backends.file._layout import PRIVATE_DIR, Layout
from atlas_tasks.ids import is_uuid_id

KIND = "ids"
NAME = "style"
_HINT = re.compile(rb"uuid (task-[0-9a-f-]{36})\n|timestamp ([0-9]{1,12}(?:\.[0-9]{1,9})?)\n")


Style = Literal["timestamp", "uuid"]


def load(layout: Layout, workspace: str, tasks: Dir, recheck: float) -> tuple[Style, float] | None:
    """The remembered style for the workspace and how old the answer is (seconds), or None (scan)."""
    try:
        d = _open_dir(layout, workspace, create=False)
        try:
            fd = os.open(NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=d)
        finally:
            os.close(d)
        try:
            data = os.read(fd, 128)
        finally:
            os.close(fd)
    except OSError:
        return None
    found = _HINT.fullmatch(data)
    if found is None:
        return None
    if found[1] is not None:
        witness = found[1].decode()
        if not is_uuid_id(witness):
            return None
        try:
            os.stat(witness, dir_fd=tasks.fd, follow_symlinks=False)
        except OSError:
            return None  # gone: a workspace made again under the same name, or the task deleted: scan
        return "uuid", 0.0
    age = time.time() - float(found[2])
    if not 0.0 <= age < recheck:
        return None  # too old, or written by a clock ahead of ours
    return "timestamp", age


def save(layout: Layout, workspace: str, witness: str | None) -> None:
    """Remember a scan's answer (``witness``: a uuid id it found, or None); a failure is ignored."""
    line = f"uuid {witness}\n" if witness is not None else f"timestamp {time.time():.3f}\n"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        d = _open_dir(layout, workspace, create=True)
        try:
            fd = os.open(NAME, flags, 0o600, dir_fd=d)
        finally:
            os.close(d)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def _open_dir(layout: Layout, workspace: str, *, create: bool) -> int:
    """``.atlas-tasks/ids/<ws>`` opened (no symlink followed below the home), made if asked; plain system calls."""
    fd = os.open(layout.home_text, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in (PRIVATE_DIR, KIND, workspace):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


__all__ = ["KIND", "load", "save"]
