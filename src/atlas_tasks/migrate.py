"""Copy a whole store into another — a file home into PostgreSQL, say — and prove the copy.

    report = copy_store(FileStore("~/.atlas"), PostgresStore("postgresql://…"))
    assert report.ok, report.problems

Tasks are copied as they are: ids, revisions, timestamps, unknown keys, logs in order, artifacts under their exact
names (versions included). Each task is imported in one step by the destination, so a copy that stops half-way
leaves every task either whole or absent, and running it again resumes: what is already there and identical is
skipped. Then the source's tombstones (the ids of deleted tasks) are copied, so a deleted id is not handed out
again by the destination either. At the end both stores are read again and compared by counts and sha256 checksums.

The destination must be able to import a task as is (:class:`~atlas_tasks.store.capabilities.Importable`):
PostgresStore, MemoryStore and FileStore can.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from atlas_tasks._codec import encode_task, encode_workspace
from atlas_tasks.errors import AtlasTasksError, TaskExistsError, TaskNotFoundError, WorkspaceNotFoundError
from atlas_tasks.models import Task, TaskRef, Workspace
from atlas_tasks.store import Store
from atlas_tasks.store.capabilities import Importable, Tombstones

Action = Literal["copied", "skipped", "replaced", "differs", "failed"]


class ImportTarget(Store, Importable, Protocol):
    """A Store with the :class:`~atlas_tasks.store.capabilities.Importable` capability (kept under its old name):
    it takes workspaces and tasks exactly as another store holds them."""


@dataclass(frozen=True)
class CopyProgress:
    """One task handled by :func:`copy_store` (``done`` of ``total``), passed to its ``progress`` callback."""

    done: int
    total: int
    workspace: str
    task_id: str
    action: Action


@dataclass
class CopyReport:
    """What :func:`copy_store` did and what its final comparison found.

    Attributes:
        workspaces_copied, workspaces_skipped: workspaces imported, or already there and identical.
        tasks_copied, tasks_skipped, tasks_replaced: tasks imported; already there and identical; there but
            different and overwritten (``overwrite=True``).
        log_lines, artifacts, artifact_bytes: what the imported tasks carried.
        seconds_copy, seconds_verify: time spent copying, and comparing at the end.
        verified_tasks, verified_log_lines, verified_artifacts: what the comparison found equal in both stores.
        problems: everything that keeps the copy from being complete (``ok`` is false when there are any).
        warnings: source damage left behind that was unreadable there too (torn or damaged log lines).
        extra_in_destination: tasks the destination holds that the source does not (left alone).
    """

    workspaces_copied: int = 0
    workspaces_skipped: int = 0
    tasks_copied: int = 0
    tasks_skipped: int = 0
    tasks_replaced: int = 0
    log_lines: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    tombstones_copied: int = 0
    tombstones_skipped: int = 0
    seconds_copy: float = 0.0
    seconds_verify: float = 0.0
    verified_tasks: int = 0
    verified_log_lines: int = 0
    verified_artifacts: int = 0
    verified_tombstones: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    extra_in_destination: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every source task is in the destination with equal checksums."""
        return not self.problems

    @property
    def tasks_per_second(self) -> float:
        """Tasks handled (copied, replaced or skipped) per second of the copy phase."""
        handled = self.tasks_copied + self.tasks_skipped + self.tasks_replaced
        return handled / self.seconds_copy if self.seconds_copy else 0.0


@dataclass(frozen=True)
class _Digest:
    """Checksums of one task as a store holds it: document, log entries, artifacts by name."""

    doc: str
    log: str
    log_lines: int
    artifacts: tuple[tuple[str, str], ...]


@dataclass
class _Snapshot:
    """One source task with everything that belongs to it, read once."""

    task: Task
    entries: list[dict[str, Any]]
    artifacts: dict[str, bytes]

    def digest(self) -> _Digest:
        return _digest(self.task, self.entries, self.artifacts)


def copy_store(
    src: Store,
    dst: Store,
    *,
    progress: Callable[[CopyProgress], object] | None = None,
    overwrite: bool = False,
    verify: bool = True,
) -> CopyReport:
    """Copy every workspace and task of ``src`` into ``dst``; safe to run again (it resumes).

    Args:
        src: any store.
        dst: a store that can import tasks as is (:class:`~atlas_tasks.store.capabilities.Importable`).
        progress: called after each task with a :class:`CopyProgress`.
        overwrite: replace destination tasks (and workspaces) that differ from the source; by default they are left
            alone and reported in ``problems``.
        verify: compare both stores at the end (counts and sha256 of every document, log and artifact).

    Returns:
        A :class:`CopyReport`; check ``report.ok``.

    Raises:
        TypeError: ``dst`` cannot import tasks as is.
    """
    if not isinstance(dst, Importable):
        raise TypeError(
            f"{dst!r} cannot import tasks as they are (it has no import_task/import_workspace); "
            "copy into a store that can, such as PostgresStore"
        )
    report = CopyReport()
    started = time.perf_counter()
    plan = _plan(src, report)
    total = sum(len(tasks) for _, tasks in plan)
    done = 0
    for workspace, tasks in plan:
        _copy_workspace(dst, workspace, overwrite, report)
        refs = {ref.id: ref for ref in workspace.tasks}
        for task in tasks:
            action = _copy_task(src, dst, workspace.name, task, refs.get(task.id), overwrite, report)
            done += 1
            if progress is not None:
                progress(CopyProgress(done, total, workspace.name, task.id, action))
        _copy_tombstones(src, dst, workspace.name, report)
    report.seconds_copy = time.perf_counter() - started
    if verify:
        started = time.perf_counter()
        _verify(src, dst, report)
        report.seconds_verify = time.perf_counter() - started
    return report


# -- planning ---------------------------------------------------------------------------------------------------
def _plan(src: Store, report: CopyReport) -> list[tuple[Workspace, list[Task]]]:
    """Every readable workspace with its readable tasks, in the order the workspace's refs list them."""
    workspaces = src.list_workspaces()
    report.problems.extend(f"source workspace unreadable: {err}" for err in workspaces.errors)
    plan = []
    for workspace in workspaces:
        tasks = src.list(workspace.name)
        report.problems.extend(f"source task unreadable, not copied: {err}" for err in tasks.errors)
        plan.append((workspace, _in_ref_order(list(tasks), workspace.tasks)))
    return plan


def _in_ref_order(tasks: list[Task], refs: list[TaskRef]) -> list[Task]:
    # Importing in ref order lets a destination that lists refs in creation order list them as the source does.
    position = {ref.id: i for i, ref in enumerate(refs)}
    return sorted(
        tasks, key=lambda t: (position.get(t.id, len(position)), t.created_at is not None, t.created_at, t.id)
    )


# -- copying ----------------------------------------------------------------------------------------------------
def _copy_workspace(dst: ImportTarget, workspace: Workspace, overwrite: bool, report: CopyReport) -> None:
    if dst.import_workspace(workspace):
        report.workspaces_copied += 1
        return
    there = dst.get_workspace(workspace.name)
    if _workspace_doc(there) == _workspace_doc(workspace):
        report.workspaces_skipped += 1
    elif overwrite:
        dst.import_workspace(workspace, replace=True)
        report.workspaces_copied += 1
    else:
        report.problems.append(f"workspace {workspace.name!r} differs in the destination (not overwritten)")


def _copy_task(
    src: Store, dst: ImportTarget, ws: str, task: Task, ref: TaskRef | None, overwrite: bool, report: CopyReport
) -> Action:
    try:
        snapshot = _read(src, ws, task, report)
    except (TaskNotFoundError, WorkspaceNotFoundError):
        return "skipped"  # deleted from the source since it was listed: nothing to copy
    except AtlasTasksError as exc:
        # One task whose log or artifacts cannot be read (a task.log that is a directory or a FIFO, say): reported,
        # and the copy goes on with the others.
        report.problems.append(f"source task {task.id!r} in workspace {ws!r} unreadable, not copied: {exc}")
        return "failed"
    wanted = snapshot.digest()
    there = _digest_in(dst, ws, task.id)
    if there == wanted:
        report.tasks_skipped += 1
        return "skipped"
    if there is not None and not overwrite:
        report.problems.append(f"task {task.id!r} in workspace {ws!r} differs in the destination (not overwritten)")
        return "differs"
    try:
        dst.import_task(
            ws,
            snapshot.task,
            log_lines=snapshot.entries,
            artifacts=snapshot.artifacts,
            ref=ref,
            replace=there is not None,
        )
    except TaskExistsError:
        # Another copier imported it between our look and our import: fine if it is the same task.
        if _digest_in(dst, ws, task.id) == wanted:
            report.tasks_skipped += 1
            return "skipped"
        report.problems.append(f"task {task.id!r} in workspace {ws!r} was written meanwhile by another writer")
        return "differs"
    except AtlasTasksError as exc:
        report.problems.append(f"task {task.id!r} in workspace {ws!r} not copied: {exc}")
        return "failed"
    _count_copy(snapshot, report, replaced=there is not None)
    return "replaced" if there is not None else "copied"


def _copy_tombstones(src: Store, dst: ImportTarget, ws: str, report: CopyReport) -> None:
    """Copy the workspace's tombstones (after its tasks: an id the source both retired and holds keeps its task)."""
    if not isinstance(src, Tombstones):
        return
    for stone in src.tombstones(ws):
        try:
            copied = dst.import_tombstone(stone)
        except TaskExistsError:
            if _digest_in(src, ws, stone.id) is not None:
                # The source holds a task under its own retired id (doctor's retired_id_in_use): the task was
                # copied, and a tombstone cannot be put over it.
                report.warnings.append(
                    f"task {stone.id!r} in workspace {ws!r} uses an id the source had retired; its tombstone was "
                    "not copied"
                )
            else:
                report.problems.append(
                    f"the destination holds task {stone.id!r} in workspace {ws!r}, whose id the source deleted "
                    f"on {stone.deleted_at}; its tombstone was not copied (delete that task there, or leave it)"
                )
            continue
        except AtlasTasksError as exc:
            report.problems.append(f"tombstone of {stone.id!r} in workspace {ws!r} not copied: {exc}")
            continue
        if copied:
            report.tombstones_copied += 1
        else:
            report.tombstones_skipped += 1


def _read(src: Store, ws: str, task: Task, report: CopyReport) -> _Snapshot:
    log = src.read_log(ws, task.id)
    if log.torn_tail:
        report.warnings.append(f"task {task.id!r} in workspace {ws!r}: a torn last log line was left behind")
    # Damaged lines were unreadable before the copy too: worth knowing, but not a reason the copy is incomplete.
    report.warnings.extend(f"source log line unreadable, not copied: {err}" for err in log.errors)
    artifacts = {name: src.get_artifact(ws, task.id, name) for name in src.list_artifacts(ws, task.id)}
    return _Snapshot(task, list(log), artifacts)


def _count_copy(snapshot: _Snapshot, report: CopyReport, *, replaced: bool) -> None:
    if replaced:
        report.tasks_replaced += 1
    else:
        report.tasks_copied += 1
    report.log_lines += len(snapshot.entries)
    report.artifacts += len(snapshot.artifacts)
    report.artifact_bytes += sum(len(data) for data in snapshot.artifacts.values())


# -- checksums --------------------------------------------------------------------------------------------------
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry_bytes(entry: Mapping[str, Any]) -> bytes:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8", "surrogatepass")


def _digest(task: Task, entries: list[dict[str, Any]], artifacts: Mapping[str, bytes]) -> _Digest:
    return _Digest(
        doc=_sha(encode_task(task)),
        log=_sha(b"\n".join(_entry_bytes(entry) for entry in entries)),
        log_lines=len(entries),
        artifacts=tuple(sorted((name, _sha(data)) for name, data in artifacts.items())),
    )


def _digest_in(store: Store, ws: str, task_id: str) -> _Digest | None:
    """The checksums of a task as ``store`` holds it, or None if it has no such task."""
    try:
        task = store.get(ws, task_id)
        entries = list(store.read_log(ws, task_id))
        names = store.list_artifacts(ws, task_id)
    except TaskNotFoundError:
        return None
    return _digest(task, entries, {name: store.get_artifact(ws, task_id, name) for name in names})


def _workspace_doc(workspace: Workspace) -> bytes:
    # Task refs are an index of the tasks (compared task by task); updated_at moves whenever they change.
    return encode_workspace(workspace.model_copy(update={"tasks": [], "updated_at": None}))


# -- verifying --------------------------------------------------------------------------------------------------
def _verify(src: Store, dst: Store, report: CopyReport) -> None:
    """Read both stores again and compare every source task with the destination's (counts and sha256)."""
    for workspace in src.list_workspaces():
        try:
            dst_ids = {task.id for task in dst.list(workspace.name)}
        except WorkspaceNotFoundError:
            report.problems.append(f"verify: workspace {workspace.name!r} is missing from the destination")
            continue
        src_ids = set()
        for task in src.list(workspace.name):
            src_ids.add(task.id)
            _verify_task(src, dst, workspace.name, task.id, report)
        report.extra_in_destination.extend(f"{workspace.name}/{i}" for i in sorted(dst_ids - src_ids))
        _verify_tombstones(src, dst, workspace.name, src_ids, report)


def _verify_tombstones(src: Store, dst: Store, ws: str, live: set[str], report: CopyReport) -> None:
    """Every id the source retired (and does not hold) is retired in the destination."""
    if not isinstance(src, Tombstones):
        return
    if not isinstance(dst, Tombstones):
        report.problems.append(f"verify: the destination keeps no tombstones; workspace {ws!r} has deleted ids")
        return
    for stone in src.tombstones(ws):
        if stone.id in live:
            continue  # reported by the copy
        if dst.tombstone(ws, stone.id) is None:
            report.problems.append(f"verify: the tombstone of {stone.id!r} in workspace {ws!r} is missing")
        else:
            report.verified_tombstones += 1


def _verify_task(src: Store, dst: Store, ws: str, task_id: str, report: CopyReport) -> None:
    try:
        wanted = _digest_in(src, ws, task_id)
    except AtlasTasksError:
        return  # unreadable in the source: already reported by the copy as not copied
    there = _digest_in(dst, ws, task_id)
    if wanted is None:
        return  # deleted from the source meanwhile
    if there is None:
        report.problems.append(f"verify: task {task_id!r} in workspace {ws!r} is missing from the destination")
    elif there != wanted:
        what = [name for name in ("doc", "log", "artifacts") if getattr(there, name) != getattr(wanted, name)]
        report.problems.append(f"verify: task {task_id!r} in workspace {ws!r} differs ({', '.join(what)})")
    else:
        report.verified_tasks += 1
        report.verified_log_lines += wanted.log_lines
        report.verified_artifacts += len(wanted.artifacts)


__all__ = ["CopyProgress", "CopyReport", "ImportTarget", "copy_store"]
