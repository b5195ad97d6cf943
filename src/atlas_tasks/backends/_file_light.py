"""A read-only look at a file store's home without importing the store (no pydantic): the CLI's fast ``list``.

:mod:`atlas_tasks.cli._fast` must decide in a few milliseconds whether the tasks it is about to list are exactly
those the previous full listing decoded. It asks this module for *stamps*: the task directory's inode and the
task.json's (device, inode, mtime_ns, ctime_ns, size), as :mod:`atlas_tasks.backends.file._summary_cache` takes
them (task.json only changes by rename, so an unchanged stamp means unchanged bytes); for the run-lease files that
:meth:`~atlas_tasks.backends.file.FileStore.lease_candidates` lists; and for the CLI's own cache files in the
store's private directory. Everything is opened below the home with no symlink followed (as the store does), and
nothing here writes to the store's data: only ``.atlas-tasks/cli-list/``, a rebuildable cache. Reads use plain
``os`` calls (not :mod:`atlas_tasks._fs`, whose openat2 and rmtree bring ctypes, shutil and pathlib: ~8 ms), and
the cache files are :mod:`marshal` data behind a checksum rather than JSON (``json`` loads ``re`` and ``enum``:
another ~4 ms of a ~30 ms start).

It lives beside the ``file`` package, not in it: importing ``atlas_tasks.backends.file.<anything>`` runs the
package's ``__init__``, which imports the store and pydantic. The layout names are the file store's
(``backends/file/_layout.py``; tests/cli/test_cli_fast.py checks they agree).
"""

from __future__ import annotations

import marshal
import os
import sys
import zlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: this module is on the CLI's start-up path
if TYPE_CHECKING:
    from collections.abc import Mapping
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


def _opened(home: str, parts: list[str]) -> int:
    """The directory ``home/parts...`` opened component by component, no symlink followed below the home (the
    home itself is the user's choice and may be a symlink, as the store's ``open_home`` allows). The caller closes
    the descriptor."""
    fd = os.open(home, _DIR_FLAGS)
    try:
        for part in parts:
            below = os.open(part, _BELOW_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = below
    except BaseException:
        os.close(fd)
        raise
    return fd


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
            try:
                if entry.is_dir(follow_symlinks=False):
                    st = os.stat(f"{name}/{file_name}", dir_fd=fd, follow_symlinks=False)
                    if st.st_mode & _KIND == _REGULAR:
                        stamp = stamp_of(entry.inode(), st)
            except OSError:
                pass
            found[name] = stamp
    return found


def task_stamps(home: str, workspace: str, *, strict: bool = False) -> dict[str, Stamp | None]:
    """Every entry of the workspace's ``tasks/`` with its task.json's stamp ({} without a ``tasks/``).

    Raises (only with ``strict``; otherwise {}): OSError for a missing or odd home or workspace directory.
    """
    try:
        wsd = _opened(home, [WORKSPACES_DIR, workspace])
        try:
            tasks = os.open(TASKS_DIR, _BELOW_FLAGS, dir_fd=wsd)
        except FileNotFoundError:
            return {}
        finally:
            os.close(wsd)
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
        wdir = _opened(home, [WORKSPACES_DIR])
    except OSError:
        return {}
    try:
        found = _dir_stamps(wdir, WORKSPACE_FILE)
        for name, stamp in found.items():
            if stamp is None:
                found[name] = _without_workspace_file(wdir, name)
        return found
    except OSError:
        return {}
    finally:
        os.close(wdir)


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
        d = _opened(home, [PRIVATE_DIR, "leases", workspace])
    except FileNotFoundError:
        return set()
    try:
        with os.scandir(d) as entries:
            return {e.name[: -len(LEASE_SUFFIX)] for e in entries if e.name.endswith(LEASE_SUFFIX)}
    finally:
        os.close(d)


# A cache file: this magic, the Python version that wrote it (marshal's format is that version's), the CRC-32 of the
# payload, then the marshalled document. A file cut short, overwritten or written by another Python is refused.
_MAGIC = b"ATLC"


def _header(payload: bytes) -> bytes:
    return _MAGIC + bytes(sys.version_info[:2]) + zlib.crc32(payload).to_bytes(4, "big")


def load_cache(home: str, name: str, version: int) -> dict[str, Any] | None:
    """The entries of the cache file ``name``, or None when it is absent or not exactly as :func:`save_cache` wrote
    it (torn, damaged, another format version or another Python)."""
    try:
        d = _opened(home, [PRIVATE_DIR, CACHE_DIR])
        try:
            fd = os.open(f"{name}.cache", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=d)
        finally:
            os.close(d)
        with open(fd, "rb") as f:
            if os.fstat(f.fileno()).st_mode & _KIND != _REGULAR:
                return None
            raw = f.read()
        head, payload = raw[:10], raw[10:]
        if head != _header(payload):
            return None
        # marshal of plain values (dicts, lists, strings, numbers) written by save_cache: the file lies in the store's
        # own private directory (whoever can write it can write task.json), and the checksum above refuses a file
        # that is torn or damaged before marshal sees it.
        doc = marshal.loads(payload)  # noqa: S302
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if not isinstance(doc, dict) or doc.get("version") != version or doc.get("name") != name:
        return None
    entries = doc.get("entries")
    return entries if isinstance(entries, dict) else None


def save_cache(home: str, name: str, version: int, entries: Mapping[str, Any]) -> None:
    """Replace the cache file ``name``: temp file + rename, no fsync (a torn or old file is refused or fails its
    stamps, never trusted); best effort (a read-only home just keeps no cache)."""
    import contextlib

    from atlas_tasks._fs import atomic, ops
    from atlas_tasks._fs.dirs import open_home, walk

    payload = marshal.dumps({"version": version, "name": name, "entries": dict(entries)})
    data = _header(payload) + payload
    with contextlib.suppress(OSError, ValueError), open_home(home, create=False) as h:
        d = walk(h, [PRIVATE_DIR, CACHE_DIR], create=True, mode=0o700)
        with d:
            final = f"{name}.cache"
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
