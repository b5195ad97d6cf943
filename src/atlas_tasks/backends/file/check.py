"""Post-mortem consistency check of a file store (what ``atlas-tasks doctor`` runs).

It finds what a crash or a hand edit can leave behind and, with ``fix=True``, repairs what is safe to repair:

* ``temp_file``: a ``.*.tmp`` left by a write that crashed before its rename. Fix: removed (never acknowledged).
  Only while the task's lock and its artifact writers' lock are held, so a write under way is never disturbed:
  its temp file is not a leftover and is neither reported nor removed.
* ``incomplete_task``: a task directory without task.json (a creation cut short). Fix: removed if it holds nothing
  else; otherwise reported only. A directory holding only the Go ATLAS's hook files (``hook.json``, ``HOOK.md``,
  ``hook.json.lock``) is not a finding: Go keeps them there for tasks it stores under ``repos/<key>/``.
* ``incomplete_import``: a task directory without task.json that holds import_task's marker (an import cut short
  before its task.json). Fix: removed whole, under the task's lock (nothing in it was ever a task to any reader).
* ``import_marker``: a whole task that still holds that marker (an import killed after its task.json). Fix: the
  marker is removed.
* ``corrupt_task``: a task.json that cannot be read, or an entry under ``tasks/`` whose name is no task id.
  Reported only: a person decides.
* ``unsafe_path``: an entry of the wrong kind where the store keeps a task directory, task.json or task.log (a
  symlink, FIFO, socket, device, or a directory for a file). Never followed or opened; reported only.
* ``unreadable``: the operating system refused to read one task (EACCES, EIO). Reported; the check goes on.
* ``newer_schema``: a task.json from a newer format. Reported only.
* ``torn_log``: a task.log whose last line was cut short. Fix: the torn tail is cut, under the task lock.
* ``damaged_log``: a task.log line that is damaged but followed by intact ones. Reported only.
* ``unfinished_delete``: a task whose id has a tombstone for this very task (same ``created_at``): a delete killed
  after writing the tombstone. Fix: the delete is finished (the task goes, the tombstone stays).
* ``retired_id_in_use``: a task under a tombstoned id that is another task (another ``created_at``), written by a
  tool that does not know tombstones (the Go ATLAS). Reported only: a person decides.
* ``trash``: a task parked in ``.atlas-tasks/trash`` by a delete that crashed. Fix: removed (the delete was under way).
* ``stale_ref``: a workspace.json task ref naming a task that does not exist (a delete killed before it dropped the
  ref, or a hand edit). Fix: the ref is dropped (and, with ``task_refs="all"``, the missing ones added).
* ``missing_ref``: only in the store's ``task_refs="all"`` mode, a task with no ref. Fix: refs resynced. The default
  mode adds no ref on create, so a task without one is not out of step. Even in "all" mode, a workspace with no
  refs at all whose tasks have the current Go's ``task-<uuid>`` ids is the Go tool's own (it never records refs):
  no ``missing_ref`` there.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from atlas_tasks import names as N
from atlas_tasks._fs import atomic, locks, ops
from atlas_tasks._fs.dirs import Dir, odd_kind, refused, walk
from atlas_tasks.backends.file import _layout, _tombstones, _workspaces
from atlas_tasks.errors import (
    AtlasTasksError,
    CorruptTaskError,
    IncompleteTaskError,
    InvalidNameError,
    LockTimeoutError,
    SchemaVersionError,
    StorageError,
    TaskNotFoundError,
    TaskRunningError,
    UnsafeTaskFileError,
)
from atlas_tasks.go_hooks import is_hook_only
from atlas_tasks.ids import UUID_ID_RE
from atlas_tasks.models import Task, TaskRef
from atlas_tasks.store.base import restores
from atlas_tasks.store.types import CheckReport, Finding

if TYPE_CHECKING:
    from atlas_tasks.backends.file import FileStore
    from atlas_tasks.backends.file._layout import Layout

_HARMLESS = {"task.json.lock"}


def check_store(store: FileStore, layout: Layout, workspace: str | None, fix: bool) -> CheckReport:
    """Check one workspace (or all, with None) and the store's trash; repair what is safe when ``fix``.

    ``store`` is used through its public methods only; everything about the layout goes through ``layout``.
    """
    report = CheckReport()
    if workspace is not None:
        names = [workspace]
    else:
        listed = store.list_workspaces()
        # A workspace with an unreadable workspace.json still holds tasks to check (_check_refs reports the file).
        unreadable = [str(e.context["workspace"]) for e in listed.errors if e.context.get("workspace")]
        names = sorted({*(w.name for w in listed), *unreadable})
    for name in names:
        _check_workspace(store, layout, name, fix, report)
    _check_trash(layout, fix, report)
    return report


def _check_workspace(store: FileStore, layout: Layout, workspace: str, fix: bool, report: CheckReport) -> None:
    ids_on_disk: dict[str, Task | None] = {}
    with layout.ws_dir(workspace) as wsd:
        _sweep_workspace_temp_files(layout, wsd, workspace, fix, report)
        try:
            tasks = walk(wsd, ["tasks"])
        except FileNotFoundError:
            tasks = None
        if tasks is not None:
            with tasks:
                for entry in list(ops.scandir(tasks.fd, tasks.path)):
                    name = entry.name
                    if name.startswith("."):
                        continue
                    try:
                        N.check_task_id(name)
                    except InvalidNameError as exc:
                        reason = f"not a valid task id ({exc.reason}); left alone"
                        report.add(Finding("corrupt_task", tasks.child(name), reason, workspace, name))
                        continue
                    if not entry.is_dir(follow_symlinks=False):
                        kind = (
                            "a symlink"
                            if entry.is_symlink()
                            else ops.kind_of(entry.stat(follow_symlinks=False).st_mode)
                        )
                        detail = f"is {kind}, not a task directory; never followed, left alone"
                        report.add(Finding("unsafe_path", tasks.child(name), detail, workspace, name))
                        ids_on_disk[name] = None  # still the task's name: its ref is not stale
                        continue
                    ids_on_disk[name] = _check_one(store, layout, tasks, workspace, name, fix, report)
    _sweep_tombstone_temp_files(layout, workspace, fix, report)
    _check_unfinished_deletes(store, layout, workspace, ids_on_disk, fix, report)
    _check_refs(store, layout, workspace, ids_on_disk, fix, report)


def _sweep_tombstone_temp_files(layout: Layout, workspace: str, fix: bool, report: CheckReport) -> None:
    """Temp files a delete killed while writing a tombstone left in ``.atlas-tasks/tombstones/<ws>/``.

    A tombstone is written only under its task's write lock, so a temp file is looked at (and removed) only while
    that lock is held here: one being written right now is never reported or touched.
    """
    try:
        d = layout.private_dir(_tombstones.KIND, workspace, create=False)
    except FileNotFoundError:
        return
    with d:
        for entry in list(ops.scandir(d.fd, d.path)):
            name = entry.name
            task_id = name[1:].partition(_tombstones.SUFFIX + ".")[0] if atomic.is_temp_name(name) else ""
            if not task_id:
                continue
            try:
                with layout.write_lock(workspace, N.check_task_id(task_id), None):
                    if not _layout.exists(d, name):
                        continue  # the write finished (renamed) or gave up while we waited
                    detail = "a tombstone write cut short (the delete did not go on)"
                    finding = report.add(Finding("temp_file", d.child(name), detail, workspace, task_id))
                    if fix:
                        ops.unlink(name, d.fd, d.child(name))
                        ops.fsync(d.fd, d.path)
                        finding.fixed = True
            except (InvalidNameError, LockTimeoutError):
                continue  # not a name of ours, or a delete under way that holds the lock


def _check_unfinished_deletes(
    store: FileStore, layout: Layout, workspace: str, on_disk: dict[str, Task | None], fix: bool, report: CheckReport
) -> None:
    """Tasks still on disk under a tombstoned id: a delete cut short (finished with ``fix``), or another task."""
    stones = {stone.id: stone for stone in _tombstones.list_all(layout, workspace)}
    for task_id in sorted(stones.keys() & on_disk.keys()):
        task, stone = on_disk[task_id], stones[task_id]
        if task is None:
            continue  # unreadable: already reported, and not known to be the task the tombstone is for
        path = str(store.task_path(workspace, task_id))
        if not restores(stone, task):
            detail = (
                f"its id was deleted at {stone.deleted_at} (tombstone) but this is another task (another created_at); "
                "left alone"
            )
            report.add(Finding("retired_id_in_use", path, detail, workspace, task_id))
            continue
        detail = f"deleted at {stone.deleted_at} (tombstone) but still here: a delete that did not finish"
        finding = report.add(Finding("unfinished_delete", path, detail, workspace, task_id))
        if not fix:
            continue
        try:
            store._delete_task(workspace, task_id, None)  # the tombstone is there already: keep it as it is
        except TaskNotFoundError:
            pass  # finished meanwhile by somebody else
        except (LockTimeoutError, TaskRunningError):
            continue  # busy: reported, left for the next doctor
        on_disk.pop(task_id)
        finding.fixed = True


def _check_one(
    store: FileStore, layout: Layout, tasks: Dir, workspace: str, task_id: str, fix: bool, report: CheckReport
) -> Task | None:
    """:func:`_check_task`, with what the system refuses for this one task reported instead of ending the check."""
    try:
        return _check_task(store, layout, tasks, workspace, task_id, fix, report)
    except OSError as exc:
        kind = odd_kind(exc)
        path = str(exc.filename or tasks.child(task_id))
        if kind is not None:
            report.add(Finding("unsafe_path", path, f"is {kind}; never followed, left alone", workspace, task_id))
        elif isinstance(exc, AtlasTasksError):  # a StorageError or LockTimeoutError: its message says it all
            report.add(Finding("unreadable", str(exc.context.get("path") or path), exc.message, workspace, task_id))
        else:
            detail = f"{getattr(exc, 'atlas_op', 'read')} failed: {exc.strerror} (errno {exc.errno})"
            report.add(Finding("unreadable", path, detail, workspace, task_id))
        return None


def _sweep_workspace_temp_files(layout: Layout, wsd: Dir, workspace: str, fix: bool, report: CheckReport) -> None:
    """``.workspace.json.*.tmp`` beside workspace.json: a create/delete that died while keeping its refs in step.

    workspace.json is only replaced under the workspace lock, so once we hold it no write is under way and every
    temp file there is a leftover, never another process's write in progress.
    """
    if not any(e.is_file(follow_symlinks=False) and atomic.is_temp_name(e.name) for e in ops.scandir(wsd.fd, wsd.path)):
        return
    what = f"workspace {workspace!r}"
    with locks.hold(wsd.child("workspace.json.lock"), what, layout.lock_timeout, dir_fd=wsd.fd):
        for entry in list(ops.scandir(wsd.fd, wsd.path)):
            if not (entry.is_file(follow_symlinks=False) and atomic.is_temp_name(entry.name)):
                continue
            finding = report.add(
                Finding("temp_file", wsd.child(entry.name), "leftover of a workspace.json write", workspace)
            )
            if fix:
                with contextlib.suppress(FileNotFoundError):
                    ops.unlink(entry.name, wsd.fd, wsd.child(entry.name))
                finding.fixed = True


def _has_temp_files(d: Dir) -> bool:
    for entry in list(ops.scandir(d.fd, d.path)):
        if entry.is_dir(follow_symlinks=False):
            with walk(d, [entry.name]) as sub:
                if _has_temp_files(sub):
                    return True
        elif atomic.is_temp_name(entry.name):
            return True
    return False


def _sweep_temp_files(layout: Layout, d: Dir, workspace: str, task_id: str, fix: bool, report: CheckReport) -> None:
    """Temp files of the task's writes (task.json, artifacts) that no write under way still owns.

    task.json is replaced under the task lock, artifacts under a shared "writers" lock (they do not take the task
    lock); with the first held and the second held exclusively, no write of this library is under way in the
    task, so every temp file there is a leftover. If a writer is busy, this task's temp files are left for the
    next check: a temp file being written is not a finding, and removing it would fail that write.
    """
    if not _has_temp_files(d):
        return
    try:
        with layout.write_lock(workspace, task_id, d), layout.temp_sweep(workspace, task_id) as idle:
            if idle:
                _remove_temp_files(d, workspace, task_id, fix, report)
    except (LockTimeoutError, TaskNotFoundError):
        return  # a writer held the task for longer than the lock timeout, or the task was deleted: not now


def _remove_temp_files(d: Dir, workspace: str, task_id: str, fix: bool, report: CheckReport) -> None:
    for entry in list(ops.scandir(d.fd, d.path)):
        if entry.is_dir(follow_symlinks=False):
            with walk(d, [entry.name]) as sub:
                _remove_temp_files(sub, workspace, task_id, fix, report)
        elif atomic.is_temp_name(entry.name):
            finding = report.add(
                Finding("temp_file", d.child(entry.name), "leftover of an interrupted write", workspace, task_id)
            )
            if fix:
                with contextlib.suppress(FileNotFoundError):
                    ops.unlink(entry.name, d.fd, d.child(entry.name))
                finding.fixed = True


def _check_task(
    store: FileStore, layout: Layout, tasks: Dir, workspace: str, task_id: str, fix: bool, report: CheckReport
) -> Task | None:
    with walk(tasks, [task_id]) as d:
        _sweep_temp_files(layout, d, workspace, task_id, fix, report)
        task = _read(layout, d, workspace, task_id, fix, report)
        if task is not None:
            report.tasks_checked += 1
            if _layout.exists(d, _layout.IMPORT_MARKER):
                finding = report.add(
                    Finding("import_marker", d.child(_layout.IMPORT_MARKER), "left by an import", workspace, task_id)
                )
                if fix:
                    with contextlib.suppress(FileNotFoundError):
                        ops.unlink(_layout.IMPORT_MARKER, d.fd, d.child(_layout.IMPORT_MARKER))
                        ops.fsync(d.fd, d.path)
                    finding.fixed = True
            _check_log(store, layout, d, workspace, task_id, fix, report)
        return task


def _read(layout: Layout, d: Dir, workspace: str, task_id: str, fix: bool, report: CheckReport) -> Task | None:
    try:
        return _layout.read_task(d, workspace, task_id)
    except IncompleteTaskError:
        if not layout.lock_free(workspace, task_id):
            return None  # a creation in progress
        entries = [e.name for e in ops.scandir(d.fd, d.path)]
        if is_hook_only(entries):
            return None  # the Go ATLAS's hook files for a task it keeps elsewhere (repos/<key>/): not ours to judge
        if _layout.IMPORT_MARKER in entries:
            _incomplete_import(layout, d, workspace, task_id, fix, report)
            return None
        others = [name for name in entries if name not in _HARMLESS]
        finding = report.add(
            Finding(
                "incomplete_task",
                d.path,
                "task directory without task.json (a creation cut short)"
                + (f"; it holds {', '.join(sorted(others))}, so it is kept" if others else ""),
                workspace,
                task_id,
            )
        )
        if fix and not others:
            tasks_fd_path = d.path.rsplit("/", 1)[0]
            with layout.ws_dir(workspace) as wsd, walk(wsd, ["tasks"]) as tasks:
                ops.rmtree(task_id, tasks.fd, tasks_fd_path + "/" + task_id)
                ops.fsync(tasks.fd, tasks.path)
            finding.fixed = True
    except SchemaVersionError as exc:
        report.add(Finding("newer_schema", exc.path, str(exc), workspace, task_id))
    except UnsafeTaskFileError as exc:
        report.add(Finding("unsafe_path", exc.path, exc.reason, workspace, task_id))
    except CorruptTaskError as exc:
        report.add(Finding("corrupt_task", exc.path, exc.reason, workspace, task_id))
    return None


def _incomplete_import(layout: Layout, d: Dir, workspace: str, task_id: str, fix: bool, report: CheckReport) -> None:
    finding = report.add(
        Finding("incomplete_import", d.path, "an import cut short before its task.json", workspace, task_id)
    )
    if not fix:
        return
    try:
        with layout.write_lock(workspace, task_id, None):
            # Looked at again under the lock: an import that finished meanwhile has its task.json and keeps it.
            if _layout.exists(d, _layout.TASK_FILE):
                return
            tasks_fd_path = d.path.rsplit("/", 1)[0]
            with layout.ws_dir(workspace) as wsd, walk(wsd, ["tasks"]) as tasks:
                ops.rmtree(task_id, tasks.fd, tasks_fd_path + "/" + task_id)
                ops.fsync(tasks.fd, tasks.path)
    except (LockTimeoutError, TaskNotFoundError):
        return
    finding.fixed = True


def _check_log(
    store: FileStore, layout: Layout, d: Dir, workspace: str, task_id: str, fix: bool, report: CheckReport
) -> None:
    try:
        lines = store.read_log(workspace, task_id)
    except StorageError as exc:
        kind = odd_kind(exc.__cause__) if isinstance(exc.__cause__, OSError) else None
        if kind is None:
            raise
        report.add(Finding("unsafe_path", d.child("task.log"), refused("task.log", kind), workspace, task_id))
        return
    for err in lines.errors:
        report.add(Finding("damaged_log", err.path, f"line {err.line_number}: {err.reason}", workspace, task_id))
    if not lines.torn_tail:
        return
    finding = report.add(
        Finding("torn_log", d.child("task.log"), "the last line was cut short by a crash", workspace, task_id)
    )
    if fix:
        with layout.write_lock(workspace, task_id, d):
            fd = ops.open_file("task.log", ops.APPEND_FLAGS, d.fd, d.child("task.log"))
            try:
                size = ops.fstat(fd).st_size
                ops.ftruncate(fd, atomic.clean_end(fd, size, d.child("task.log")), d.child("task.log"))
                ops.fdatasync(fd, d.child("task.log"))
            finally:
                ops.close(fd)
        finding.fixed = True


def _check_refs(
    store: FileStore, layout: Layout, workspace: str, on_disk: dict[str, Task | None], fix: bool, report: CheckReport
) -> None:
    try:
        ws = store.get_workspace(workspace)
    except AtlasTasksError as exc:  # reported, never raised: check must get through the whole store
        report.add(Finding("corrupt_workspace", str(layout.workspace_path(workspace)), str(exc), workspace))
        return
    if ws.created_at is None:
        return  # no workspace.json: nothing to keep in step
    ref_ids = {r.id for r in ws.tasks}
    stale = sorted(ref_ids - set(on_disk))
    missing = sorted(i for i, t in on_disk.items() if t is not None and i not in ref_ids)
    if store.task_refs != "all" or (not ref_ids and all(UUID_ID_RE.fullmatch(i) for i in missing)):
        # Not out of step: the default mode adds no ref on create, and the current Go ATLAS never records refs
        # (its `tasks` stays []).
        missing = []
    findings = [
        Finding(
            "stale_ref",
            str(layout.workspace_path(workspace) / "workspace.json"),
            f"refers to {i}, which does not exist",
            workspace,
            i,
        )
        for i in stale
    ]
    findings += [
        Finding(
            "missing_ref",
            str(layout.workspace_path(workspace) / "workspace.json"),
            f"does not list task {i}",
            workspace,
            i,
        )
        for i in missing
    ]
    for finding in findings:
        report.add(finding)
    if fix and findings:

        def resync(refs: list[TaskRef]) -> bool:
            refs[:] = [r for r in refs if r.id in on_disk]
            for task_id in missing:
                task = on_disk[task_id]
                assert task is not None
                refs.append(
                    TaskRef(
                        id=task.id, status=str(task.status), started_at=task.created_at, completed_at=task.completed_at
                    )
                )
            return True

        _workspaces.edit_refs(layout, workspace, resync)
        for finding in findings:
            finding.fixed = True


def _check_trash(layout: Layout, fix: bool, report: CheckReport) -> None:
    try:
        with layout.open_home() as home, walk(home, [_layout.PRIVATE_DIR, "trash"]) as trash:
            for entry in list(ops.scandir(trash.fd, trash.path)):
                finding = report.add(Finding("trash", trash.child(entry.name), "a delete that did not finish"))
                if fix:
                    ops.rmtree(entry.name, trash.fd, trash.child(entry.name))
                    finding.fixed = True
    except FileNotFoundError:
        return
