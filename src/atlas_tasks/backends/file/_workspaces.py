"""workspace.json: the workspace document (Go format) and its task refs, an index for the Go tool.

Every change to workspace.json is made under ``workspace.json.lock`` (the lock file the Go ATLAS uses too) and
written by temp file + rename. The task refs are only an index for the Go tool: a create or delete is committed
before its ref is written, and ``doctor`` resyncs them (see :mod:`.check`).

Which refs are kept is the store's ``task_refs`` mode (:data:`TASK_REFS`): ``"existing"`` (the default, as the
current Go ATLAS, which never appends a ref) adds none on create and keeps the ones there as before (a delete
drops its task's ref, a task reaching a terminal status refreshes its own); ``"all"`` adds one per create, as the
story-era Go did, which makes every create rewrite a file that grows with the workspace.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Callable, Iterable
from typing import Any, Literal

from atlas_tasks._codec import decode_workspace, encode_workspace, patch_workspace_refs, ref_document
from atlas_tasks._fs import atomic, locks, ops
from atlas_tasks._fs.dirs import Dir, UnsafePathError, odd_kind, refused, walk
from atlas_tasks.backends.file._layout import WORKSPACE_FILE, Layout
from atlas_tasks.errors import (
    AtlasTasksError,
    CorruptWorkspaceError,
    InvalidNameError,
    SchemaVersionError,
    WorkspaceExistsError,
    WorkspaceNotFoundError,
)
from atlas_tasks.models import Task, TaskRef, Workspace, utcnow
from atlas_tasks.store.types import WorkspaceList
from atlas_tasks.transitions import is_terminal

#: The file store's ``task_refs`` modes (see the module docstring).
TaskRefs = Literal["existing", "all"]
TASK_REFS: tuple[TaskRefs, ...] = ("existing", "all")


def check_mode(value: str) -> TaskRefs:
    """``value`` as a ``task_refs`` mode; ValueError naming the choices otherwise."""
    for mode in TASK_REFS:
        if value == mode:
            return mode
    raise ValueError(f"task_refs must be 'existing' or 'all', not {value!r}")


def _lock(layout: Layout, wsd: Dir, name: str) -> contextlib.AbstractContextManager[None]:
    return locks.hold(wsd.child(f"{WORKSPACE_FILE}.lock"), f"workspace {name!r}", layout.lock_timeout, dir_fd=wsd.fd)


def read(wsd: Dir, name: str) -> Workspace | None:
    """The workspace.json in ``wsd``, or None if there is none (a hand-made directory)."""
    try:
        raw = atomic.read(wsd, WORKSPACE_FILE)
    except FileNotFoundError:
        return None
    try:
        return decode_workspace(raw, path=wsd.child(WORKSPACE_FILE))
    except SchemaVersionError:
        raise
    except ValueError as exc:
        raise CorruptWorkspaceError(name, wsd.child(WORKSPACE_FILE), str(exc).splitlines()[0]) from None


def insert(layout: Layout, ws: Workspace, *, exist_ok: bool) -> Workspace:
    """Store a new workspace (directory and workspace.json); with ``exist_ok`` return the existing one."""
    name = ws.name
    with layout.open_home(create=True) as home:
        try:
            walk(home, ["workspaces", name]).close()
            new_dir = False
        except FileNotFoundError:
            new_dir = True
        try:
            with walk(home, ["workspaces", name], create=True) as wsd, _lock(layout, wsd, name):
                existing = read(wsd, name)
                if existing is not None and existing.created_at is not None:
                    if exist_ok:
                        return existing
                    raise WorkspaceExistsError(name, wsd.child(WORKSPACE_FILE))
                atomic.replace(wsd, WORKSPACE_FILE, encode_workspace(ws))
                return ws
        except BaseException as exc:
            if new_dir and not isinstance(exc, WorkspaceExistsError):
                _unmake_dir(home, name)
            raise


def _unmake_dir(home: Dir, name: str) -> None:
    """Remove the directory a failed create_workspace made (a full disk, say), so no half workspace "exists".

    Only if it holds nothing but the workspace lock file and temp files: anything else is another writer's.
    Best effort; the failure being reported is the create's own. The removal is not fsynced: the failure may
    have been the fsync of this very parent, and a failed fsync is never followed by another on the same file
    (it could report success for writes the kernel already dropped). After a power cut the empty directory
    may come back; it holds no workspace.json, so nothing was acknowledged by it.
    """
    with contextlib.suppress(OSError), walk(home, ["workspaces"]) as parent, walk(parent, [name]) as wsd:
        entries = [e.name for e in ops.list_dir(wsd.fd, wsd.path)]
        if not all(e == f"{WORKSPACE_FILE}.lock" or atomic.is_temp_name(e) for e in entries):
            return
        for entry in entries:
            ops.unlink(entry, wsd.fd, wsd.child(entry))
        ops.rmdir(name, parent.fd, wsd.path)


def get(layout: Layout, name: str) -> Workspace:
    """One workspace; a hand-made directory without workspace.json gives a bare Workspace."""
    with layout.ws_dir(name) as wsd:
        ws = read(wsd, name)
    return ws if ws is not None else Workspace(name=name)


def list_all(layout: Layout) -> WorkspaceList:
    """Every workspace, sorted by name; unreadable ones in ``.errors``."""
    result = WorkspaceList()
    try:
        home = layout.open_home()
    except FileNotFoundError:
        return result
    with home:
        try:
            wdir = walk(home, ["workspaces"])
        except FileNotFoundError:
            return result
        with wdir:
            names = sorted(
                e.name
                for e in ops.scandir(wdir.fd, wdir.path)
                if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
            )
    for name in names:
        try:
            result.append(_entry(layout, name))
        except (InvalidNameError, CorruptWorkspaceError, SchemaVersionError, WorkspaceNotFoundError) as exc:
            if not isinstance(exc, WorkspaceNotFoundError):
                result.errors.append(exc)
    return result


def _entry(layout: Layout, name: str) -> Workspace:
    """One workspace of a listing: a workspace.json of the wrong kind (a FIFO, a symlink) is a corrupt one."""
    try:
        with layout.ws_dir(name) as wsd:
            try:
                ws = read(wsd, name)
            except OSError as exc:
                kind = odd_kind(exc)
                if kind is None:
                    raise
                raise CorruptWorkspaceError(name, wsd.child(WORKSPACE_FILE), refused(WORKSPACE_FILE, kind)) from None
    except UnsafePathError:
        raise WorkspaceNotFoundError(name, str(layout.workspace_path(name))) from None  # swapped for a symlink
    return ws if ws is not None else Workspace(name=name)


def edit(layout: Layout, name: str, change: Callable[[Workspace], None]) -> Workspace:
    """Apply ``change`` to the workspace under its lock and store it (a bare directory gets a workspace.json)."""
    with layout.ws_dir(name) as wsd, _lock(layout, wsd, name):
        ws = read(wsd, name) or Workspace(name=name, created_at=utcnow())
        change(ws)
        atomic.replace(wsd, WORKSPACE_FILE, encode_workspace(ws))
        return ws


# -- task refs --------------------------------------------------------------------------------------------------------
def edit_refs(
    layout: Layout,
    workspace: str,
    change: Callable[[builtins.list[TaskRef]], bool],
    raw_change: Callable[[builtins.list[dict[str, Any]]], bool] | None = None,
    *,
    naming: Iterable[str] | None = None,
) -> None:
    """Change the workspace's task refs under its lock; a failure is swallowed (see below).

    ``naming``: the change only touches refs of these task ids, so a document that does not contain any of them
    (a byte search) is left without being parsed: a delete in a workspace whose legacy refs array is megabytes
    long pays a read, not a JSON parse, for a task that never had a ref.

    The reliability fault campaign wraps this function (looked up on the module at each call) to tell a refs
    update, which may fail after the task's own commit, from the commit itself.
    """
    # The task itself is already committed when this runs: a failure here must not turn an acknowledged
    # create/delete into a reported error (the caller would retry and duplicate), so it is swallowed.
    # ``raw_change`` does the same on the refs as plain JSON objects: no model is built for the other refs,
    # which made every create O(tasks in the workspace) in Python (256 ms at 10,000 tasks).
    with contextlib.suppress(AtlasTasksError, OSError), layout.ws_dir(workspace) as wsd, _lock(layout, wsd, workspace):
        if raw_change is not None:
            try:
                raw = atomic.read(wsd, WORKSPACE_FILE)
            except FileNotFoundError:
                return
            # Task ids are plain names (letters, digits, "-", "_", "."): JSON writes them unescaped.
            if naming is not None and not any(f'"{i}"'.encode() in raw for i in naming):
                return
            try:
                patched = patch_workspace_refs(raw, raw_change, utcnow(), path=wsd.child(WORKSPACE_FILE))
            except (ValueError, AtlasTasksError):
                pass  # not a document the raw edit can keep exact: the model path below decides
            else:
                if patched is not None:
                    atomic.replace(wsd, WORKSPACE_FILE, patched)
                return
        ws = read(wsd, workspace)
        if ws is None or not change(ws.tasks):
            return
        ws.updated_at = utcnow()
        atomic.replace(wsd, WORKSPACE_FILE, encode_workspace(ws))


def ref_of(task: Task) -> TaskRef:
    """The ref that records ``task``: id, status, times."""
    return TaskRef(
        id=task.id,
        status=str(task.status),
        started_at=task.created_at,
        completed_at=task.completed_at if is_terminal(task.status) else None,
    )


def sync_ref(layout: Layout, workspace: str, task: Task, *, add: bool = True) -> None:
    """Record ``task`` (id, status, times) in the workspace's refs, replacing its old ref.

    Without ``add`` only a ref the task already has is refreshed; a task without one gets none (the
    ``"existing"`` mode), and workspace.json is not rewritten.
    """
    ref = ref_of(task)

    def change(refs: builtins.list[TaskRef]) -> bool:
        for i, old in enumerate(refs):
            if old.id == task.id:
                refs[i] = ref
                return True
        if add:
            refs.append(ref)
        return add

    def raw_change(refs: builtins.list[dict[str, Any]]) -> bool:
        doc = ref_document(ref)
        for i, old in enumerate(refs):
            if old.get("id") == task.id:
                refs[i] = doc
                return True
        if add:
            refs.append(doc)
        return add

    edit_refs(layout, workspace, change, raw_change, naming=None if add else [task.id])


def drop_ref(layout: Layout, workspace: str, task_id: str) -> None:
    """Remove the task's ref, if any."""

    def change(refs: builtins.list[TaskRef]) -> bool:
        kept = [r for r in refs if r.id != task_id]
        changed = len(kept) != len(refs)
        refs[:] = kept
        return changed

    def raw_change(refs: builtins.list[dict[str, Any]]) -> bool:
        kept = [r for r in refs if r.get("id") != task_id]
        changed = len(kept) != len(refs)
        refs[:] = kept
        return changed

    edit_refs(layout, workspace, change, raw_change, naming=[task_id])


def drop_refs(layout: Layout, workspace: str, task_ids: Iterable[str]) -> None:
    """Remove the refs of several tasks with one rewrite of workspace.json."""
    doomed = set(task_ids)

    def change(refs: builtins.list[TaskRef]) -> bool:
        kept = [r for r in refs if r.id not in doomed]
        changed = len(kept) != len(refs)
        refs[:] = kept
        return changed

    def raw_change(refs: builtins.list[dict[str, Any]]) -> bool:
        kept = [r for r in refs if r.get("id") not in doomed]
        changed = len(kept) != len(refs)
        refs[:] = kept
        return changed

    edit_refs(layout, workspace, change, raw_change, naming=doomed)


__all__ = [
    "TASK_REFS",
    "TaskRefs",
    "check_mode",
    "drop_ref",
    "drop_refs",
    "edit",
    "edit_refs",
    "get",
    "insert",
    "list_all",
    "read",
    "ref_of",
    "sync_ref",
]
