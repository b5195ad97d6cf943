"""Where things are in a file store's home, and how they are opened and locked (always through ``_fs``).

Every directory is walked from the home with O_NOFOLLOW on each component, never opened by a cached path, so a
symlink planted anywhere below the home cannot lead a read, a write or a lock outside it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from atlas_tasks import names as N
from atlas_tasks._fs import atomic, locks, ops
from atlas_tasks._fs.dirs import Dir, UnsafePathError, odd_kind, open_home, walk
from atlas_tasks.errors import (
    AtlasTasksError,
    IncompleteTaskError,
    StorageError,
    TaskNotFoundError,
    UnsafeTaskFileError,
    WorkspaceNotFoundError,
)
from atlas_tasks.go_hooks import is_hook_only
from atlas_tasks.models import Task
from atlas_tasks.store.base import decode_stored

TASK_FILE = "task.json"
LOG_FILE = "task.log"
ARTIFACTS_DIR = "artifacts"
WORKSPACE_FILE = "workspace.json"
PRIVATE_DIR = ".atlas-tasks"
#: Present in a task directory while import_task fills it: an import cut short is debris doctor may remove.
IMPORT_MARKER = ".atlas-tasks-importing"


@contextlib.contextmanager
def os_errors(default_op: str) -> Iterator[None]:
    """Turn an OSError into a StorageError that names the operation and the path; typed errors pass through."""
    try:
        yield
    except AtlasTasksError:
        raise
    except UnsafePathError as exc:
        raise StorageError(
            "open (a symlink or file inside the store was refused)",
            str(exc.filename),
            exc.errno,
            exc.strerror,
        ) from exc
    except OSError as exc:
        op = getattr(exc, "atlas_op", default_op)
        raise StorageError(op, str(exc.filename or "?"), exc.errno, exc.strerror) from exc


class Layout:
    """One home's directories and locks. The store's settings that locking needs live here (``lock_timeout``,
    ``go_locks``); :class:`~atlas_tasks.backends.file.FileStore` exposes them as its attributes."""

    def __init__(self, home: Path, lock_timeout: float, go_locks: bool) -> None:
        self.home = home
        self.home_text = str(home)
        self.lock_timeout = lock_timeout
        self.go_locks = go_locks

    # -- paths (for people and error messages; never opened) -----------------------------------------------------
    def workspace_path(self, workspace: str) -> Path:
        return self.home / "workspaces" / N.check_workspace_name(workspace)

    def task_path(self, workspace: str, task_id: str) -> Path:
        return self.workspace_path(workspace) / "tasks" / N.check_task_id(task_id)

    # -- opening directories ---------------------------------------------------------------------------------------
    def open_home(self, *, create: bool = False) -> Dir:
        return open_home(self.home_text, create=create)

    @contextlib.contextmanager
    def ws_dir(self, workspace: str) -> Iterator[Dir]:
        N.check_workspace_name(workspace)
        try:
            with self.open_home() as home:
                d = walk(home, ["workspaces", workspace])
        except FileNotFoundError:
            raise WorkspaceNotFoundError(workspace, str(self.workspace_path(workspace))) from None
        with d:
            yield d

    @contextlib.contextmanager
    def task_dir(self, workspace: str, task_id: str) -> Iterator[Dir]:
        with self.open_task_dir(workspace, task_id) as d:
            yield d

    def open_task_dir(self, workspace: str, task_id: str) -> Dir:
        """The task's directory, opened (the caller closes it). Raises WorkspaceNotFoundError, TaskNotFoundError."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        try:
            with self.open_home() as home:
                return walk(home, ["workspaces", workspace, "tasks", task_id])
        except FileNotFoundError:
            # Again in two steps, to say which is missing: the workspace or the task.
            with self.ws_dir(workspace) as wsd:
                try:
                    return walk(wsd, ["tasks", task_id])
                except FileNotFoundError:
                    raise TaskNotFoundError(workspace, task_id, str(self.task_path(workspace, task_id))) from None

    def private_dir(self, kind: str, workspace: str, *, create: bool) -> Dir:
        """``.atlas-tasks/<kind>/<workspace>``, walked from the home with O_NOFOLLOW on every call.

        Never a cached path: a symlink planted there later must not lead a lock or lease file outside the home.
        """
        with self.open_home(create=create) as home:
            return walk(home, [PRIVATE_DIR, kind, workspace], create=create, mode=0o700)

    # -- locks -----------------------------------------------------------------------------------------------------
    def lock_free(self, workspace: str, task_id: str) -> bool:
        """True if no writer holds the task's lock right now."""
        try:
            lock_dir = self.private_dir("locks", workspace, create=False)
        except FileNotFoundError:
            return True
        with lock_dir:
            return locks.try_hold_free(lock_dir.child(f"{task_id}.lock"), dir_fd=lock_dir.fd)

    @contextlib.contextmanager
    def write_lock(self, workspace: str, task_id: str, task_dir: Dir | None) -> Iterator[None]:
        """The task's lock (outside the task, so delete cannot remove it), then Go's ``task.json.lock`` inside it."""
        with (
            self.private_dir("locks", workspace, create=True) as lock_dir,
            self.write_lock_in(lock_dir, workspace, task_id, task_dir),
        ):
            yield

    @contextlib.contextmanager
    def write_lock_in(self, lock_dir: Dir, workspace: str, task_id: str, task_dir: Dir | None) -> Iterator[None]:
        """:meth:`write_lock` with the workspace's lock directory already open (one walk for many tasks)."""
        what = f"task {task_id!r} in workspace {workspace!r}"
        with locks.hold(lock_dir.child(f"{task_id}.lock"), what, self.lock_timeout, dir_fd=lock_dir.fd, fair=True):
            if task_dir is not None:
                self.still_there(task_dir, workspace, task_id)
            if not (self.go_locks and task_dir is not None):
                yield
                return
            # Go's lock sits inside the task directory; taken second, so Go writers wait for us too.
            with locks.hold(task_dir.child(f"{TASK_FILE}.lock"), what, self.lock_timeout, dir_fd=task_dir.fd):
                yield

    @contextlib.contextmanager
    def temp_writer(self, workspace: str, task_id: str) -> Iterator[None]:
        """Held (shared) by a write that keeps a temp file in the task without holding the task lock.

        Artifact saves run concurrently and outside the task lock, so the task lock cannot tell ``doctor --fix``
        whether a temp file of theirs is being written. Each holds this shared flock while its temp file exists;
        the sweep removes temp files only while it holds the same flock exclusively, i.e. when no such write is
        under way (see :func:`atlas_tasks.backends.file.check._sweep_temp_files`).
        """
        what = f"artifacts of task {task_id!r} in workspace {workspace!r}"
        with (
            self.private_dir("locks", workspace, create=True) as lock_dir,
            locks.hold_shared(lock_dir.child(f"{task_id}.writers"), what, self.lock_timeout, dir_fd=lock_dir.fd),
        ):
            yield

    @contextlib.contextmanager
    def temp_sweep(self, workspace: str, task_id: str) -> Iterator[bool]:
        """Try (never wait) to exclude every :meth:`temp_writer` of the task; yields whether it did."""
        with (
            self.private_dir("locks", workspace, create=True) as lock_dir,
            locks.try_hold_exclusive(lock_dir.child(f"{task_id}.writers"), dir_fd=lock_dir.fd) as held,
        ):
            yield held

    def still_there(self, d: Dir, workspace: str, task_id: str) -> None:
        """After waiting for the lock, make sure ``d`` is still the task's directory (not deleted meanwhile)."""
        opened = os.fstat(d.fd)
        try:
            # The usual answer in one call: the task's path still names the directory we hold. Only the identity
            # is compared (nothing is opened through the path), so a symlink on the way cannot mislead it.
            here = os.stat(d.path, follow_symlinks=False)  # noqa: PTH116 - a Path costs more than the stat
            if (here.st_dev, here.st_ino) == (opened.st_dev, opened.st_ino):
                return
        except OSError:
            pass
        try:
            with self.task_dir(workspace, task_id) as again:
                now = os.fstat(again.fd)
        except TaskNotFoundError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
            raise TaskNotFoundError(workspace, task_id, d.path)


# -- reading one task (module functions: the reliability controls patch them here) ----------------------------------
def task_bytes(d: Dir, workspace: str, task_id: str) -> bytes:
    """task.json's bytes; IncompleteTaskError if missing, UnsafeTaskFileError if not a regular file."""
    try:
        return atomic.read(d, TASK_FILE)
    except FileNotFoundError:
        raise IncompleteTaskError(workspace, task_id, d.path) from None
    except OSError as exc:
        kind = odd_kind(exc)
        if kind is None:
            raise
        raise UnsafeTaskFileError(workspace, task_id, d.child(TASK_FILE), kind) from exc


def read_task(d: Dir, workspace: str, task_id: str) -> Task:
    """The task in directory ``d``, decoded. Raises IncompleteTaskError, UnsafeTaskFileError, CorruptTaskError."""
    return decode_stored(task_bytes(d, workspace, task_id), workspace, task_id, d.child(TASK_FILE))


def require_task_file(d: Dir, workspace: str, task_id: str) -> None:
    """IncompleteTaskError unless ``d`` holds a task.json (a creation cut short has only the directory)."""
    try:
        ops.stat_at(TASK_FILE, d.fd)
    except FileNotFoundError:
        raise IncompleteTaskError(workspace, task_id, d.path) from None


def hook_only(tasks: Dir, name: str) -> bool:
    """Whether ``tasks/<name>`` holds only the Go ATLAS's hook files (a task Go keeps under ``repos/<key>/``)."""
    try:
        with walk(tasks, [name]) as d:
            return is_hook_only(entry.name for entry in ops.scandir(d.fd, d.path))
    except (FileNotFoundError, UnsafePathError):
        return False


def exists(d: Dir, name: str) -> bool:
    try:
        ops.stat_at(name, d.fd)
    except FileNotFoundError:
        return False
    return True


__all__ = [
    "ARTIFACTS_DIR",
    "LOG_FILE",
    "PRIVATE_DIR",
    "TASK_FILE",
    "WORKSPACE_FILE",
    "Layout",
    "exists",
    "hook_only",
    "os_errors",
    "read_task",
    "require_task_file",
    "task_bytes",
]
