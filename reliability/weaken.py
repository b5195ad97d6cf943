"""Deliberately weakened variants of the store: the negative controls.

Each variant patches one protocol of the real store in the running process, the way a plausible regression would
break it. A campaign that cannot tell a variant from the real store measures nothing, so every campaign runs
against its controls and must report violations there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from atlas_tasks import names as N
from atlas_tasks import runs
from atlas_tasks._fs import atomic, locks, ops
from atlas_tasks._fs.dirs import Dir
from atlas_tasks.backends import file as file_backend
from atlas_tasks.backends.file import _layout
from atlas_tasks.documents import logs as doc_logs
from atlas_tasks.errors import CorruptLogError, IncompleteTaskError
from atlas_tasks.lifecycle import rewind
from atlas_tasks.store import LogLines
from atlas_tasks.store import base as store_base

Undo = Callable[[], None]


def _patch(target: Any, name: str, value: Any, undo: list[Undo]) -> None:
    original = getattr(target, name)
    setattr(target, name, value)
    undo.append(lambda: setattr(target, name, original))


def _fsync_unless(skip: Callable[[int], bool], undo: list[Undo]) -> None:
    """Make ops.fsync/fdatasync silently do nothing on descriptors ``skip`` selects."""
    for name in ("fsync", "fdatasync"):
        real = getattr(ops, name)

        def weak(fd: int, path: str, _real: Callable[[int, str], None] = real) -> None:
            if not skip(fd):
                _real(fd, path)

        _patch(ops, name, weak, undo)


def _is_dir(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def no_dir_fsync(undo: list[Undo]) -> None:
    """Renames, links and mkdirs are never made durable (the Go ATLAS's replace)."""
    _fsync_unless(_is_dir, undo)


def no_file_fsync(undo: list[Undo]) -> None:
    """File data is renamed into place or appended without fsync (the 0-byte task.json of ext4/xfs/btrfs)."""
    _fsync_unless(lambda fd: not _is_dir(fd), undo)


def no_fsync(undo: list[Undo]) -> None:
    """No fsync at all: everything rests in the page cache."""
    _fsync_unless(lambda fd: True, undo)


def fsync_retry(undo: list[Undo]) -> None:
    """A failed fsync is retried, and its second success trusted (the fsyncgate mistake)."""
    for name in ("fsync", "fdatasync"):
        real = getattr(ops, name)

        def retrying(fd: int, path: str, _real: Callable[[int, str], None] = real) -> None:
            try:
                _real(fd, path)
            except OSError:
                _real(fd, path)

        _patch(ops, name, retrying, undo)


def in_place_write(undo: list[Undo]) -> None:
    """task.json and workspace.json are rewritten in place (truncate, then write in two pieces) instead of renamed."""

    def replace(d: Dir, name: str, data: bytes, *, sync_dir: bool = True) -> None:
        path = d.child(name)
        fd = ops.open_file(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, d.fd, path)
        try:
            half = len(data) // 2
            ops.write_all(fd, data[:half], path)
            ops.write_all(fd, data[half:], path)
            ops.fsync(fd, path)
        finally:
            ops.close(fd)

    _patch(atomic, "replace", replace, undo)


def naive_log_reader(undo: list[Undo]) -> None:
    """The log reader takes every line for data: a torn tail is reported as damage and nothing is skipped."""

    def parse_log(raw: bytes, workspace: str, task_id: str, path: str) -> LogLines:
        out = LogLines()
        for number, line in enumerate(raw.splitlines(), 1):
            try:
                out.append(json.loads(line))
            except ValueError as exc:
                out.errors.append(CorruptLogError(workspace, task_id, path, number, str(exc)))
        return out

    # Every read_log (and doctor's log check) parses through BaseStore.read_log, which looks parse_log up there.
    _patch(store_base, "parse_log", parse_log, undo)


def blocking_open(undo: list[Undo]) -> None:
    """Files are opened without O_NONBLOCK and read whatever they are: a FIFO in the store blocks its reader."""
    _patch(ops, "READ_FLAGS", ops.READ_FLAGS & ~os.O_NONBLOCK, undo)
    _patch(ops, "require_regular", lambda st, path: None, undo)
    _patch(ops, "_openat2", False, undo)  # its open flags are fixed when it is loaded; the walk uses READ_FLAGS


def unguarded_json(undo: list[Undo]) -> None:
    """The log parser catches ValueError only: a deeply nested line raises RecursionError out of every reader."""

    def parse_line(line: bytes) -> tuple[dict[str, Any] | None, str]:
        try:
            record = json.loads(line)
        except ValueError as exc:
            return None, f"not valid JSON ({exc})"
        return (record, "") if isinstance(record, dict) else (None, "not a JSON object")

    # The one line parser: parse_log looks it up in its module, and so do the file store's tail windows.
    _patch(doc_logs, "parse_line", parse_line, undo)


def odd_entry_aborts(undo: list[Undo]) -> None:
    """task.json is read with no thought for what kind of file it is: an odd one ends the whole listing."""

    def task_bytes(d: Dir, workspace: str, task_id: str) -> bytes:
        try:
            return atomic.read(d, _layout.TASK_FILE)
        except FileNotFoundError:
            raise IncompleteTaskError(workspace, task_id, d.path) from None

    # Every read of one task's bytes by a walk (listings, edits, doctor) calls _layout.task_bytes at call time.
    _patch(_layout, "task_bytes", task_bytes, undo)


def no_lock(undo: list[Undo]) -> None:
    """Writers take no lock: the read-modify-write is not exclusive."""

    @contextlib.contextmanager
    def hold(path: str, what: str, timeout: float, *, dir_fd: int | None = None, fair: bool = False) -> Iterator[None]:
        yield

    _patch(locks, "hold", hold, undo)


def lockf_lock(undo: list[Undo]) -> None:
    """POSIX record locks (``lockf``) instead of flock: shared by the threads of a process, lost on any close."""

    @contextlib.contextmanager
    def hold(path: str, what: str, timeout: float, *, dir_fd: int | None = None, fair: bool = False) -> Iterator[None]:
        name = path if dir_fd is None else path.rsplit("/", 1)[-1]
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    _patch(locks, "hold", hold, undo)


def no_name_check(undo: list[Undo]) -> None:
    """Names are used as given: no allowlist for workspaces, task ids or artifact paths."""

    def same(name: object) -> str:
        return str(name)

    def split(name: object) -> list[str]:
        return str(name).split("/")

    for target, value in (
        ("check_workspace_name", same),
        ("check_task_id", same),
        ("artifact_parts", split),
        ("check_plain_artifact_name", split),
    ):
        _patch(N, target, value, undo)


def stat_then_write(undo: list[Undo]) -> None:
    """Versioned artifacts take the first name that does not exist yet, then write it (a check-then-act race)."""

    def claim_first(d: Dir, names: Iterable[str], data: bytes) -> str | None:
        for name in names:
            try:
                ops.stat_at(name, d.fd)
            except FileNotFoundError:
                atomic.replace(d, name, data)
                return name
        return None

    _patch(atomic, "claim_first", claim_first, undo)


def no_mkdir_reservation(undo: list[Undo]) -> None:
    """Task ids are taken when their directory does not exist yet, without an exclusive mkdir.

    A millisecond passes between the check and the mkdir (as it would under load), so that the campaign catches
    the race every run rather than now and then.
    """

    def reserve(self: file_backend.FileStore, tasks: Dir, workspace: str, explicit: str) -> str:
        for candidate in [explicit] if explicit else file_backend.timestamp_candidates():
            try:
                ops.stat_at(candidate, tasks.fd)
            except FileNotFoundError:
                time.sleep(0.001)
                with contextlib.suppress(FileExistsError):
                    ops.mkdir(candidate, tasks.fd, tasks.child(candidate))
                return candidate
        raise RuntimeError("no free id")

    _patch(file_backend.FileStore, "_reserve", reserve, undo)


def no_step_checkpoint(undo: list[Undo]) -> None:
    """A run writes the task when it starts and when it ends, not at each step (checkpoints batched "for speed"):
    a step's success is not durable before the next step starts, so a kill loses steps the runner moved past."""
    real = runs.Run.checkpoint

    def checkpoint(self: Any) -> Any:
        return self.task if getattr(self, "_batched", False) else real(self)

    def batched(step_write: Callable[..., Any]) -> Callable[..., Any]:
        def inner(self: Any, *args: Any) -> Any:
            self._batched = True
            try:
                return step_write(self, *args)
            finally:
                self._batched = False

        return inner

    _patch(runs.Run, "checkpoint", checkpoint, undo)
    for name in ("_begin", "_succeed"):  # the two per-step checkpoints: before a step's work and after it
        _patch(runs.Run, name, batched(getattr(runs.Run, name)), undo)


def resume_from_start(undo: list[Undo]) -> None:
    """A resumed run starts over at the first step: the recorded progress is ignored and done steps run again."""
    real = runs._prepare

    def prepare(task: Any) -> str:
        note = real(task)
        for step in task.steps:
            step.status = "pending"
        task.current_step = 0
        return note

    # runs.run looks _prepare up in its module at call time.
    _patch(runs, "_prepare", prepare, undo)


def fork_no_marker(undo: list[Undo]) -> None:
    """A fork is created without its ``fork_incomplete`` marker: a forker killed mid-build leaves a half-built fork
    that ``recover`` cannot tell from a finished one, and keeps."""
    real = rewind.build_fork

    def unmarked(*args: Any, **kwargs: Any) -> Any:
        task = real(*args, **kwargs)
        task.metadata.pop(rewind.FORK_INCOMPLETE, None)
        return task

    # rewind.fork looks build_fork up in its module at call time.
    _patch(rewind, "build_fork", unmarked, undo)


def delete_in_place(undo: list[Undo]) -> None:
    """A task is deleted by removing its files where they are (no rename into the trash first): a collector
    killed half-way leaves a task directory with some of its files gone."""
    from atlas_tasks.backends.file import _workspaces as file_workspaces

    def delete(self: file_backend.FileStore, workspace: str, task_id: str, *_: Any) -> None:
        folder = self.task_path(workspace, task_id)
        # Deepest first: each file, then its directory, then the task directory itself (task.json among the last).
        for path in sorted(folder.rglob("*"), key=lambda p: (-len(p.parts), p.is_dir(), str(p))):
            path.rmdir() if path.is_dir() else path.unlink()
        folder.rmdir()
        self._summaries.forget(workspace, task_id)
        file_workspaces.drop_ref(self._layout, workspace, task_id)

    def delete_group(
        self: file_backend.FileStore, workspace: str, task_ids: list[str], info: Any, failed: Any, gone: list[str]
    ) -> None:
        # delete_many's path (what gc calls): the same in-place removal, task by task.
        for task_id in task_ids:
            delete(self, workspace, task_id)
            gone.append(task_id)

    _patch(file_backend.FileStore, "_delete", delete, undo)
    _patch(file_backend.FileStore, "_delete_group", delete_group, undo)


def import_in_place(undo: list[Undo]) -> None:
    """A task is imported by writing its files one by one into its final directory, task.json first: an import
    killed half-way leaves a visible task without (some of) its log and artifacts."""
    from atlas_tasks._codec import encode_task
    from atlas_tasks.documents.logs import encode_line

    def import_task(self: file_backend.FileStore, workspace: str, task: Any, **kw: Any) -> Any:
        from atlas_tasks.errors import TaskExistsError

        folder = self.home / "workspaces" / workspace / "tasks" / task.id
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            raise TaskExistsError(workspace, task.id, str(folder)) from None
        (folder / "task.json").write_bytes(encode_task(task))
        for line in kw.get("log_lines") or ():
            with open(folder / "task.log", "ab") as log:
                log.write(encode_line(workspace, task.id, line, fill_defaults=False))
        for name, data in (kw.get("artifacts") or {}).items():
            path = folder / "artifacts" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data if isinstance(data, bytes) else data.encode())
        for name, data in (kw.get("hook_files") or {}).items():
            (folder / name).write_bytes(data)
        return self.get(workspace, task.id)

    _patch(file_backend.FileStore, "import_task", import_task, undo)


def import_no_marker(undo: list[Undo]) -> None:
    """import_task fills the task directory without its marker (under a name doctor takes for Go's lock file): an
    import killed before its task.json leaves a directory doctor --fix cannot tell from a damaged task, and keeps."""
    _patch(file_backend, "IMPORT_MARKER", "task.json.lock", undo)


VARIANTS: dict[str, Callable[[list[Undo]], None]] = {
    "no-dir-fsync": no_dir_fsync,
    "no-file-fsync": no_file_fsync,
    "no-fsync": no_fsync,
    "fsync-retry": fsync_retry,
    "in-place-write": in_place_write,
    "naive-log-reader": naive_log_reader,
    "no-lock": no_lock,
    "lockf": lockf_lock,
    "no-name-check": no_name_check,
    "stat-then-write": stat_then_write,
    "no-mkdir-reservation": no_mkdir_reservation,
    "blocking-open": blocking_open,
    "unguarded-json": unguarded_json,
    "odd-entry-aborts": odd_entry_aborts,
    "no-step-checkpoint": no_step_checkpoint,
    "resume-from-start": resume_from_start,
    "fork-no-marker": fork_no_marker,
    "delete-in-place": delete_in_place,
    "import-in-place": import_in_place,
    "import-no-marker": import_no_marker,
}


def apply(variant: str | None) -> Undo:
    """Patch the store into ``variant`` (None: the real store); returns the function that undoes it."""
    undo: list[Undo] = []
    if variant is not None:
        VARIANTS[variant](undo)

    def restore() -> None:
        while undo:
            undo.pop()()

    return restore


@contextlib.contextmanager
def weakened(variant: str | None) -> Iterator[None]:
    """Run the block with the store patched into ``variant``."""
    restore = apply(variant)
    try:
        yield
    finally:
        restore()
