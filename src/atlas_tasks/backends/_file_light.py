"""A read-only look at a file store's home without importing the store (no pydantic): the CLI's fast ``list``.

:mod:`atlas_tasks.cli._fast` must decide in a few milliseconds whether the tasks it is about to list are exactly
those the previous full listing decoded. It asks this module for *stamps*: the task directory's inode and the
task.json's (device, inode, mtime_ns, ctime_ns, size), as :mod:`atlas_tasks.backends.file._summary_cache` takes
them (task.json only changes by rename, so an unchanged stamp means unchanged bytes); for the run-lease files that
:meth:`~atlas_tasks.backends.file.FileStore.lease_candidates` lists; and for the CLI's own cache files in the
store's private directory. Everything is opened below the home with no symlink followed (as the store does), and
nothing here writes to the store's data: only ``.atlas-tasks/cli-list/``, a rebuildable cache. Reads use plain
``os`` calls (not :mod:`atlas_tasks._fs`, whose openat2 and rmtree bring ctypes, shutil and pathlib: ~8 ms).

It lives beside the ``file`` package, not in it: importing ``atlas_tasks.backends.file.<anything>`` runs the
package's ``__init__``, which imports the store and pydantic. The layout names are the file store's
(``backends/file/_layout.py``; tests/cli/test_cli_fast.py checks they agree).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: this module is on the CLI's start-up path
if TYPE_CHECKING:
    from typing import Any

TASK_FILE = "task.json"
WORKSPACE_FILE = "workspace.json"
PRIVATE_DIR = ".atlas-tasks"
WORKSPACES_DIR = "workspaces"
TASKS_DIR = "tasks"
CACHE_DIR = "cli-list"
LEASE_SUFFIX = ".lease"

#: (directory inode, device, inode, mtime_ns, ctime_ns, size) of a task.json or workspace.json; ``[inode]`` of a
#: workspace directory without workspace.json.
Stamp = list[int]

_REGULAR, _DIRECTORY, _KIND = 0o100000, 0o040000, 0o170000


def stamp_of(dir_inode: int, st: os.stat_result) -> Stamp:
    """The stamp of a file whose directory has inode ``dir_inode``."""
    return [dir_inode, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size]


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_BELOW_FLAGS = _DIR_FLAGS | os.O_NOFOLLOW


@contextlib.contextmanager
def _opened(home: str, parts: list[str]) -> Iterator[int]:
    """The directory ``home/parts...`` opened component by component, no symlink followed below the home (the
    home itself is the user's choice and may be a symlink, as the store's ``open_home`` allows)."""
    fd = os.open(home, _DIR_FLAGS)
    try:
        for part in parts:
            below = os.open(part, _BELOW_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = below
        yield fd
    finally:
        os.close(fd)


def _dir_stamps(fd: int, file_name: str) -> dict[str, Stamp | None]:
    """Every visible entry of the directory ``fd`` with the stamp of its ``file_name``; None for anything else (a
    symlink, a file, a directory without that regular file): never a stamp that could match."""
    found: dict[str, Stamp | None] = {}
    with os.scandir(fd) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            stamp: Stamp | None = None
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    st = os.stat(f"{name}/{file_name}", dir_fd=fd, follow_symlinks=False)
                    if st.st_mode & _KIND == _REGULAR:
                        stamp = stamp_of(entry.inode(), st)
            found[name] = stamp
    return found


def task_stamps(home: str, workspace: str, *, strict: bool = False) -> dict[str, Stamp | None]:
    """Every entry of the workspace's ``tasks/`` with its task.json's stamp ({} without a ``tasks/``).

    Raises (only with ``strict``; otherwise {}): OSError for a missing or odd home or workspace directory.
    """
    try:
        with _opened(home, [WORKSPACES_DIR, workspace]) as wsd:
            try:
                tasks = os.open(TASKS_DIR, _BELOW_FLAGS, dir_fd=wsd)
            except FileNotFoundError:
                return {}
            try:
                return _dir_stamps(tasks, TASK_FILE)
            finally:
                os.close(tasks)
    except OSError:
        if strict:
            raise
        return {}


def workspace_stamps(home: str) -> dict[str, Stamp | None]:
    """Every entry of ``workspaces/`` with its workspace.json's stamp ({} when there is none or it is odd)."""
    try:
        with _opened(home, [WORKSPACES_DIR]) as wdir:
            found = _dir_stamps(wdir, WORKSPACE_FILE)
            for name, stamp in found.items():
                if stamp is None:
                    found[name] = _without_workspace_file(wdir, name)
            return found
    except OSError:
        return {}


def _without_workspace_file(wdir: int, name: str) -> Stamp | None:
    # A workspace directory without workspace.json is listed as a workspace of that name: stamped by its inode.
    try:
        st = os.stat(name, dir_fd=wdir, follow_symlinks=False)
        if st.st_mode & _KIND != _DIRECTORY:
            return None
        os.stat(f"{name}/{WORKSPACE_FILE}", dir_fd=wdir, follow_symlinks=False)
    except FileNotFoundError:
        return [st.st_ino]
    except OSError:
        return None
    return None  # a workspace.json that is no regular file


def lease_files(home: str, workspace: str) -> set[str]:
    """The ids with a run-lease file, as :meth:`~atlas_tasks.backends.file.FileStore.lease_candidates` lists them.

    Raises:
        OSError: the leases directory cannot be read (not for a missing one: then the set is empty).
    """
    try:
        with _opened(home, [PRIVATE_DIR, "leases", workspace]) as d, os.scandir(d) as entries:
            return {e.name[: -len(LEASE_SUFFIX)] for e in entries if e.name.endswith(LEASE_SUFFIX)}
    except FileNotFoundError:
        return set()


def load_cache(home: str, name: str, version: int) -> dict[str, Any]:
    """The entries of the cache file ``name``, or {} when it is absent or not exactly as :func:`save_cache` wrote."""
    try:
        with _opened(home, [PRIVATE_DIR, CACHE_DIR]) as d:
            fd = os.open(f"{name}.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=d)
        with open(fd, "rb") as f:
            if os.fstat(f.fileno()).st_mode & _KIND != _REGULAR:
                return {}
            raw = f.read()
        doc = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != version or doc.get("name") != name:
        return {}
    entries = doc.get("entries")
    return entries if isinstance(entries, dict) else {}


def save_cache(home: str, name: str, version: int, entries: Mapping[str, Any]) -> None:
    """Replace the cache file ``name``: temp file + rename, no fsync (a torn or old file is refused or fails its
    stamps, never trusted); best effort (a read-only home just keeps no cache)."""
    from atlas_tasks._fs import atomic, ops
    from atlas_tasks._fs.dirs import open_home, walk

    data = json.dumps({"version": version, "name": name, "entries": entries}, separators=(",", ":")).encode()
    with contextlib.suppress(OSError, ValueError), open_home(home, create=False) as h:
        d = walk(h, [PRIVATE_DIR, CACHE_DIR], create=True, mode=0o700)
        with d:
            final = f"{name}.json"
            tmp = atomic.temp_name(final)
            fd = ops.open_file(tmp, ops.NEW_FILE_FLAGS, d.fd, d.child(tmp))
            try:
                ops.write_all(fd, data, d.child(tmp))
            finally:
                ops.close(fd)
            try:
                ops.rename(tmp, final, d.fd, d.fd, d.child(final))
            except OSError:
                with contextlib.suppress(OSError):
                    ops.unlink(tmp, d.fd, d.child(tmp))


__all__ = [
    "CACHE_DIR",
    "PRIVATE_DIR",
    "TASK_FILE",
    "WORKSPACE_FILE",
    "lease_files",
    "load_cache",
    "save_cache",
    "stamp_of",
    "task_stamps",
    "workspace_stamps",
]
