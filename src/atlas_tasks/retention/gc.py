"""Garbage collection: delete finished tasks a store no longer needs (``atlas-tasks gc``; docs/retention.md).

:func:`plan` decides, :func:`collect` carries the plan out. What is eligible:

* by status: the terminal statuses (completed, rejected, abandoned), or exactly the ``statuses`` named (each must
  be terminal or a failure status: a pending, running or waiting task is never collected);
* then, in this order, the first reason that applies keeps a task (it is reported as skipped with that reason):
  ``pinned`` (``metadata.pinned``), ``running`` (a live runner holds its lease), ``keep_last`` (among the N newest
  finished of its workspace), ``recent`` (finished less than ``older_than`` ago), ``forked`` (a fork that stays
  names it as ``forked_from``; a fork is self-contained, so this is lineage only, lifted by ``include_forked``).

A task's age runs from when it FINISHED: ``completed_at``, else the time of its last transition, else
``updated_at`` - never ``created_at`` (a task created long ago may have finished a minute ago).

:func:`collect` holds the store's collector lock (one collector at a time: :class:`CollectorBusyError` names the
other), and takes each task's run lease before deleting it, so no runner can start on a task being deleted; under
the lease it reads the task again and skips it if it changed since the plan (``changed``), got pinned or is gone.
A task goes whole through ``store.delete_many``, as ``delete`` takes it, in batches of ``store.delete_batch`` tasks
of one workspace whose leases are held until the batch is gone (the file store renames each task into its trash
first, so a killed collector leaves every task whole or gone; ``doctor --fix`` empties what a killed delete left in
the trash). A dry run takes the same path and deletes nothing, so its report is the report a real run would give.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atlas_tasks.errors import AtlasTasksError, BundleError, InvalidValueError, TaskNotFoundError, TaskRunningError
from atlas_tasks.models import utcnow
from atlas_tasks.retention.pins import pin_of
from atlas_tasks.transitions import ERROR_STATUSES, TERMINAL_STATUSES

if TYPE_CHECKING:
    from atlas_tasks.models import Task
    from atlas_tasks.runs import LeasingStore
    from atlas_tasks.store.capabilities import LeaseHandle

_OLDEST = datetime.min


@dataclass(frozen=True)
class GcItem:
    """One task the collector deletes (or would): where, what, since when finished, and its size in bytes."""

    workspace: str
    id: str
    status: str
    finished_at: str | None
    bytes: int
    revision: int
    #: The bundle the task was (or, in a dry run, would be) archived to before it went; "" without ``archive``.
    archive: str = ""


@dataclass(frozen=True)
class GcSkip:
    """One task of an eligible status the collector keeps, and why (``pinned``, ``running``, ``keep_last`` …)."""

    workspace: str
    id: str
    status: str
    reason: str
    detail: str = ""


@dataclass
class GcPlan:
    """What :func:`plan` decided: the tasks to delete and the candidates kept, with the criteria used."""

    now: datetime
    criteria: dict[str, Any]
    delete: list[GcItem] = field(default_factory=list)
    skipped: list[GcSkip] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class GcReport:
    """What :func:`collect` did (or, with ``dry_run``, would do)."""

    dry_run: bool
    criteria: dict[str, Any]
    deleted: list[GcItem] = field(default_factory=list)
    skipped: list[GcSkip] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        """The sum of the deleted tasks' sizes."""
        return sum(item.bytes for item in self.deleted)

    def document(self) -> dict[str, Any]:
        """The report as ``gc --json`` prints it."""
        return {
            "dry_run": self.dry_run,
            "criteria": self.criteria,
            "tasks_deleted": len(self.deleted),
            "bytes_freed": self.bytes_freed,
            "deleted": [asdict(item) for item in self.deleted],
            "skipped": [asdict(skip) for skip in self.skipped],
            "errors": list(self.errors),
        }


def finished_at(task: Task) -> datetime | None:
    """When the task finished: ``completed_at``, else its last transition's time, else ``updated_at``."""
    if task.completed_at is not None:
        return task.completed_at
    if task.transitions and task.transitions[-1].timestamp is not None:
        return task.transitions[-1].timestamp
    return task.updated_at


def _eligible_statuses(statuses: Iterable[str] | None) -> frozenset[str]:
    if statuses is None:
        return frozenset(str(s) for s in TERMINAL_STATUSES)
    allowed = {str(s) for s in TERMINAL_STATUSES | ERROR_STATUSES}
    chosen = frozenset(str(s) for s in statuses)
    for status in sorted(chosen):
        if status not in allowed:
            raise InvalidValueError(
                "status", status, f"gc collects only finished or failed tasks: one of {', '.join(sorted(allowed))}"
            )
    return chosen


def task_bytes(store: LeasingStore, workspace: str, task: Task) -> int:
    """The task's size: its encoded document, its log lines as stored, and its artifacts.

    A store that keeps files locally gives the sizes of its task.json and task.log (lstat: never a link followed)
    rather than encoding them again, which was a seventh of a collection's time.
    """
    from atlas_tasks._codec import encode_task
    from atlas_tasks.documents.logs import encode_line
    from atlas_tasks.store.capabilities import LocalFiles

    if isinstance(store, LocalFiles):
        size = 0
        for path in (store.task_path(workspace, task.id) / "task.json", store.log_path(workspace, task.id)):
            with contextlib.suppress(FileNotFoundError):
                size += os.lstat(path).st_size
        return size + sum(store.artifact_sizes(workspace, task.id).values())

    size = len(encode_task(task))
    size += sum(
        len(encode_line(workspace, task.id, line, fill_defaults=False)) for line in store.read_log(workspace, task.id)
    )
    return size + sum(store.artifact_sizes(workspace, task.id).values())


def plan(
    store: LeasingStore,
    *,
    workspace: str | None = None,
    older_than: timedelta | None = None,
    statuses: Iterable[str] | None = None,
    keep_last: int | None = None,
    include_forked: bool = False,
    now: datetime | None = None,
    older_than_by_status: Mapping[str, timedelta] | None = None,
) -> GcPlan:
    """Decide what a collection deletes (nothing is written). See the module doc for the rules.

    ``older_than_by_status`` gives an age per status (the retention configuration, :mod:`.config`): a status it
    names uses its own age instead of ``older_than``; without ``statuses``, the statuses it names are the ones
    collected.

    Raises:
        InvalidValueError: a status gc never collects, or a negative ``keep_last``.
        WorkspaceNotFoundError, InvalidNameError: ``workspace`` is not there.
    """
    if keep_last is not None and keep_last < 0:
        raise InvalidValueError("keep_last", str(keep_last), "must be 0 or more")
    ages = {str(k): v for k, v in (older_than_by_status or {}).items()}
    configured = _eligible_statuses(ages) if ages else frozenset()  # each one gc may collect
    chosen = _eligible_statuses(statuses) if statuses is not None else configured or _eligible_statuses(None)
    if ages and older_than is None and keep_last is None:
        for status in sorted(chosen - ages.keys()):
            raise InvalidValueError(
                "statuses",
                status,
                "has no age to collect it by: give older_than, or an age for it in the retention settings",
            )
    now = now or utcnow()
    criteria = {
        "workspace": workspace,
        "older_than_seconds": older_than.total_seconds() if older_than is not None else None,
        "older_than_by_status_seconds": {k: v.total_seconds() for k, v in sorted(ages.items())} or None,
        "statuses": sorted(chosen),
        "keep_last": keep_last,
        "include_forked": include_forked,
        "now": now.isoformat(),
    }
    result = GcPlan(now=now, criteria=criteria)
    if workspace is not None:
        store.get_workspace(workspace)
        names = [workspace]
    else:
        listed = store.list_workspaces()
        names = [ws.name for ws in listed]
        result.errors.extend(str(e) for e in listed.errors)

    # Every task of the scanned workspaces: forks name their source (workspace-local, as `fork` makes them).
    everything: dict[tuple[str, str], Task] = {}
    for name in names:
        errors: list[AtlasTasksError] = []
        for task in store.iter_tasks(name, errors=errors):
            everything[(name, task.id)] = task
        result.errors.extend(str(e) for e in errors)

    keep: dict[tuple[str, str], GcSkip] = {}
    doomed: list[tuple[str, str]] = []
    per_workspace: dict[str, list[tuple[str, str]]] = {}
    for key, task in sorted(everything.items()):
        ws, task_id = key
        status = str(task.status)
        if status not in chosen:
            continue
        pinned = pin_of(task)
        if pinned is not None:
            keep[key] = GcSkip(ws, task_id, status, "pinned", str(pinned.get("reason", "")))
            continue
        holder = store.lease_holder(ws, task_id)
        if holder is not None:
            keep[key] = GcSkip(
                ws, task_id, status, "running", f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
            )
            continue
        per_workspace.setdefault(ws, []).append(key)
    for ws, keys in per_workspace.items():
        keys.sort(key=lambda k: (finished_at(everything[k]) or _OLDEST.replace(tzinfo=now.tzinfo), k[1]), reverse=True)
        for rank, key in enumerate(keys):
            task = everything[key]
            done = finished_at(task)
            age = ages.get(str(task.status), older_than)
            if keep_last is not None and rank < keep_last:
                keep[key] = GcSkip(ws, key[1], str(task.status), "keep_last", f"among the {keep_last} newest")
            elif age is not None and (done is None or now - done < age):
                keep[key] = GcSkip(
                    ws,
                    key[1],
                    str(task.status),
                    "recent",
                    f"finished {done.isoformat() if done else 'at an unknown time'}",
                )
            else:
                doomed.append(key)

    # Lineage: a source stays while a fork that stays names it; keeping one may keep its own source (a chain).
    if not include_forked:
        changed = True
        while changed:
            changed = False
            staying = {key for key in everything if key not in doomed}
            sources: dict[tuple[str, str], str] = {}
            for ws, task_id in staying:
                origin = everything[(ws, task_id)].metadata.get("forked_from")
                if isinstance(origin, dict) and origin.get("task_id"):
                    sources.setdefault((ws, str(origin["task_id"])), task_id)
            for key in list(doomed):
                if key in sources:
                    doomed.remove(key)
                    task = everything[key]
                    keep[key] = GcSkip(key[0], key[1], str(task.status), "forked", f"fork {sources[key]} names it")
                    changed = True

    for key in sorted(doomed):
        task = everything[key]
        done = finished_at(task)
        result.delete.append(
            GcItem(
                key[0],
                key[1],
                str(task.status),
                done.isoformat() if done else None,
                task_bytes(store, key[0], task),
                task.revision,
            )
        )
    result.skipped = [keep[key] for key in sorted(keep)]
    return result


def _holder() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": utcnow().isoformat(), "gc": True}


def collect(
    store: LeasingStore,
    gc_plan: GcPlan | None = None,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int, GcItem], None] | None = None,
    archive: str | os.PathLike[str] | None = None,
    **criteria: Any,
) -> GcReport:
    """Carry out a plan (or plan now, from ``criteria`` as :func:`plan` takes them), under the collector lock.

    ``progress(done, total, item)`` is called after each task. With ``dry_run`` nothing is deleted; the report is
    the one a real run would give. With ``archive`` (a directory, created if missing) each task is first written to
    its own bundle there (``<workspace>--<id>.tar.gz``, durable before the task is deleted; see
    :mod:`.bundle`); a task whose bundle cannot be written is kept (``archive_failed``). Each deleted item's
    ``archive`` names its bundle; ``atlas-tasks import`` restores it under its own id.

    Raises:
        CollectorBusyError: another collector is running on this store.
        InvalidValueError, WorkspaceNotFoundError: as :func:`plan`.
    """
    from atlas_tasks.store.capabilities import CollectorLocks

    lock = store.collector_lock(_holder()) if isinstance(store, CollectorLocks) else None
    try:
        if gc_plan is None:
            gc_plan = plan(store, **criteria)
        report = GcReport(
            dry_run=dry_run, criteria=gc_plan.criteria, skipped=list(gc_plan.skipped), errors=list(gc_plan.errors)
        )
        total = len(gc_plan.delete)
        done = 0
        batch = max(1, store.delete_batch)
        folder = Path(archive) if archive is not None else None
        if folder is not None and not dry_run:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BundleError(str(folder), f"cannot make the archive directory: {exc.strerror or exc}") from None
        for chunk in _batches(gc_plan.delete, batch):
            for item, outcome in _delete_batch(store, chunk, dry_run=dry_run, archive=folder):
                if outcome is None:
                    report.deleted.append(item)
                else:
                    report.skipped.append(outcome)
                done += 1
                if progress is not None:
                    progress(done, total, item)
        report.skipped.sort(key=lambda s: (s.workspace, s.id))
        return report
    finally:
        if lock is not None:
            lock.release()


def _batches(items: list[GcItem], size: int) -> Iterator[list[GcItem]]:
    """The plan's items in runs of at most ``size`` tasks of one workspace, in plan order."""
    run: list[GcItem] = []
    for item in items:
        if run and (len(run) == size or run[0].workspace != item.workspace):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


def _archive_path(folder: Path, item: GcItem) -> Path:
    """A new bundle name for the task in ``folder`` (a numbered one if a task of that id was archived before)."""
    stem = f"{item.workspace}--{item.id}"
    path = folder / f"{stem}.tar.gz"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stem}.{n}.tar.gz"
    return path


def _archived(store: LeasingStore, item: GcItem, folder: Path, *, dry_run: bool) -> GcItem | GcSkip:
    """The item with the bundle it was written to, or the skip of a task whose bundle could not be written."""
    from atlas_tasks.retention.bundle import export_tasks

    path = _archive_path(folder, item)
    if not dry_run:
        try:
            export_tasks(store, item.workspace, [item.id], path)
        except (AtlasTasksError, OSError) as exc:
            detail = f"{path}: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
            return GcSkip(item.workspace, item.id, item.status, "archive_failed", detail)
    return replace(item, archive=str(path))


def _delete_batch(
    store: LeasingStore, chunk: list[GcItem], *, dry_run: bool, archive: Path | None = None
) -> list[tuple[GcItem, GcSkip | None]]:
    """Delete one workspace's batch of planned tasks, each under its run lease (held until the batch is deleted),
    each first archived when ``archive`` is given; for each item, None if it went, or why it was kept."""
    outcomes: dict[str, GcSkip | None] = {}
    items = {item.id: item for item in chunk}
    held: list[tuple[GcItem, LeaseHandle]] = []
    try:
        for item in chunk:
            claimed = _claim(store, item)
            if isinstance(claimed, GcSkip):
                outcomes[item.id] = claimed
                continue
            if archive is not None:
                written = _archived(store, item, archive, dry_run=dry_run)
                if isinstance(written, GcSkip):
                    claimed.release()
                    outcomes[item.id] = written
                    continue
                items[item.id] = written
            held.append((items[item.id], claimed))
        if held and not dry_run:
            ws = chunk[0].workspace
            failed = store.delete_many(ws, [item.id for item, _ in held], reason="gc")
            for item, _ in held:
                exc = failed.get(item.id)
                if exc is not None:
                    outcomes[item.id] = _kept_by(item, exc)
    finally:
        for _, lease in held:
            lease.release()
    return [(items[item.id], outcomes.get(item.id)) for item in chunk]


def _kept_by(item: GcItem, exc: AtlasTasksError) -> GcSkip:
    """The skip a failed delete becomes (a runner that appeared, a task already gone, or an error)."""
    if isinstance(exc, TaskRunningError):
        return GcSkip(
            item.workspace,
            item.id,
            item.status,
            "running",
            f"pid {exc.holder.get('pid', '?')} on {exc.holder.get('host', '?')}",
        )
    if isinstance(exc, TaskNotFoundError):
        return GcSkip(item.workspace, item.id, item.status, "gone", "deleted by someone else")
    return GcSkip(item.workspace, item.id, item.status, "error", str(exc))


def _claim(store: LeasingStore, item: GcItem) -> LeaseHandle | GcSkip:
    """Take a planned task's run lease and check it again under it: the lease, or the reason it is kept."""
    ws, task_id = item.workspace, item.id
    try:
        lease = store.acquire_lease(ws, task_id, {**_holder(), "deleting": True})
    except (TaskRunningError, TaskNotFoundError) as exc:
        return _kept_by(item, exc)
    try:
        task = store.get(ws, task_id)
    except TaskNotFoundError as exc:
        lease.release()
        return _kept_by(item, exc)
    except BaseException:
        lease.release()
        raise
    if pin_of(task) is not None:
        lease.release()
        return GcSkip(ws, task_id, str(task.status), "pinned", "pinned after the plan")
    if task.revision != item.revision:
        lease.release()
        return GcSkip(ws, task_id, str(task.status), "changed", f"revision {task.revision}, planned {item.revision}")
    return lease


__all__ = ["GcItem", "GcPlan", "GcReport", "GcSkip", "collect", "finished_at", "plan", "task_bytes"]
