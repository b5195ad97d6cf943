"""Compaction: make one task smaller without losing its newest state (``atlas-tasks compact``; docs/retention.md).

Two things grow without bound in a long-lived task: versions of its artifacts (``validation.1.json``,
``validation.2.json``, ...: every retry saves one) and its log. Compaction

* drops old **artifact versions**: it keeps the newest ``keep_versions`` of each base name, and always every version
  a StepResult of the task points to (``step_results[*].artifact_path``: the state a rewind, a resume or a review
  reads) and every artifact that is not a version. Keeping the newest of each name is also what keeps the contract's
  promise that a deleted version number is never handed out again (the next version is always the highest + 1).
  The lesson of LangGraph#8531 (keeping only the latest checkpoint made state unrecoverable): never drop what the
  task's state names, however old;
* **rotates the log** when it is over ``max_log_bytes``: ``store.rotate_log`` moves the older whole lines into the
  next gzip segment ``logs/task.log.N.gz`` (durable first) and rewrites the live log atomically under the lock
  ``append_log`` takes, so every line is in exactly one place, byte for byte.

Compaction is refused while a live runner holds the task (TaskRunningError naming it), and a real compaction holds
the task's run lease itself while it works, so no run starts meanwhile: a runner reads older versions (a rewind, a
retry's previous output) and follows its own log by position, and neither should move under it. ``dry_run``
takes the same decisions on the same reads and writes nothing. Every write is one durable store operation; a
compaction killed anywhere leaves the task readable with no line and no kept version lost, and the next one
finishes the work (a rotation cut short after its segment was saved is completed, never archived twice).
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from atlas_tasks import names as N
from atlas_tasks.errors import AtlasTasksError, TaskNotFoundError, TaskRunningError
from atlas_tasks.models import Task, utcnow
from atlas_tasks.store import LogRotation, Store
from atlas_tasks.store.base import LOG_SEGMENT, crash_point
from atlas_tasks.store.capabilities import RunLeases

#: Versions of each artifact base name kept by default (the newest ones).
DEFAULT_KEEP_VERSIONS = 3
#: A log over this many bytes is rotated by default (10 MiB); the live log then keeps about half of it.
DEFAULT_MAX_LOG_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class DroppedVersion:
    """One artifact version compaction deletes (or would delete), with its size."""

    name: str
    bytes: int


@dataclass
class CompactionReport:
    """What ``compact`` did, or with ``dry_run`` would do, to one task."""

    workspace: str
    task_id: str
    dry_run: bool
    keep_versions: int
    max_log_bytes: int
    #: Versions deleted, oldest first within each base name.
    dropped: list[DroppedVersion] = field(default_factory=list)
    #: Versions beyond ``keep_versions`` kept because a StepResult of the task points to them.
    kept_referenced: list[str] = field(default_factory=list)
    log: LogRotation = field(default_factory=LogRotation)

    @property
    def bytes_freed(self) -> int:
        """Bytes the task no longer stores: the dropped versions, plus the log lines moved less their gzip segment."""
        moved = self.log.bytes_moved - self.log.segment_bytes if self.log.segment else 0
        return sum(d.bytes for d in self.dropped) + moved + self.log.resumed_bytes

    def to_json(self) -> dict[str, Any]:
        """The ``compact --json`` document."""
        return {
            "workspace": self.workspace,
            "id": self.task_id,
            "dry_run": self.dry_run,
            "keep_versions": self.keep_versions,
            "max_log_bytes": self.max_log_bytes,
            "versions": {
                "dropped": [asdict(d) for d in self.dropped],
                "dropped_bytes": sum(d.bytes for d in self.dropped),
                "kept_referenced": list(self.kept_referenced),
            },
            "log": {"rotated": bool(self.log.segment), **asdict(self.log)},
            "bytes_freed": self.bytes_freed,
        }


def referenced_artifacts(task: Task) -> set[str]:
    """Artifact names the task's state points to (``step_results[*].artifact_path``, with or without ``artifacts/``)."""
    found: set[str] = set()
    for result in task.step_results:
        if result.artifact_path:
            found.add(result.artifact_path)
            found.add(result.artifact_path.removeprefix("artifacts/"))
    return found


def version_groups(names: list[str]) -> dict[str, list[tuple[int, str]]]:
    """Versioned artifacts by base name (``sdd/v.json`` for ``sdd/v.3.json``), each list newest first.

    The log's own segments (``logs/task.log.N.gz``) are not versions of a state: they are the log, and never listed.
    """
    groups: dict[str, list[tuple[int, str]]] = {}
    for name in names:
        folder, slash, leaf = name.rpartition("/")
        match = N.VERSIONED_RE.fullmatch(leaf)
        if match is None:
            continue
        base_leaf = match["stem"] + (match["ext"] or "")
        if N.version_of(leaf, base_leaf) != int(match["n"]):
            continue  # not how versioned_name would spell it: an ordinary artifact
        base = f"{folder}{slash}{base_leaf}"
        if base == LOG_SEGMENT:
            continue
        groups.setdefault(base, []).append((int(match["n"]), name))
    for versions in groups.values():
        versions.sort(reverse=True)
    return groups


def plan_versions(names: list[str], referenced: set[str], keep_versions: int) -> tuple[list[str], list[str]]:
    """``(to drop, kept only because referenced)``: the newest ``keep_versions`` of each name always stay."""
    drop: list[str] = []
    kept_referenced: list[str] = []
    for versions in version_groups(names).values():
        for _number, name in reversed(versions[keep_versions:]):  # oldest first
            (kept_referenced if name in referenced else drop).append(name)
    return drop, kept_referenced


def _check_limits(keep_versions: int, max_log_bytes: int) -> None:
    if keep_versions < 1:
        raise ValueError(f"keep_versions must be at least 1 (the newest version is always kept), not {keep_versions}")
    if max_log_bytes < 1:
        raise ValueError(f"max_log_bytes must be at least 1, not {max_log_bytes}")


def _refuse_if_running(store: Store, workspace: str, task_id: str) -> None:
    if isinstance(store, RunLeases):
        holder = store.lease_holder(workspace, task_id)
        if holder is not None:
            raise TaskRunningError(workspace, task_id, holder)


def plan_compaction(
    store: Store,
    workspace: str,
    task_id: str,
    *,
    keep_versions: int = DEFAULT_KEEP_VERSIONS,
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
) -> CompactionReport:
    """What ``compact`` would do now, writing nothing (its ``dry_run``).

    Raises:
        TaskRunningError: a live runner holds the task.
        ValueError: ``keep_versions`` or ``max_log_bytes`` below 1.
        InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError: as ``get``.
    """
    _check_limits(keep_versions, max_log_bytes)
    _refuse_if_running(store, workspace, task_id)
    return _plan(store, workspace, task_id, keep_versions, max_log_bytes, dry_run=True)


def _plan(
    store: Store, workspace: str, task_id: str, keep_versions: int, max_log_bytes: int, *, dry_run: bool
) -> CompactionReport:
    task = store.get(workspace, task_id)
    sizes = store.artifact_sizes(workspace, task_id)
    drop, kept_referenced = plan_versions(list(sizes), referenced_artifacts(task), keep_versions)
    report = CompactionReport(workspace, task_id, dry_run, keep_versions, max_log_bytes)
    report.dropped = [DroppedVersion(name, sizes[name]) for name in drop]
    report.kept_referenced = kept_referenced
    return report


def compact(
    store: Store,
    workspace: str,
    task_id: str,
    *,
    keep_versions: int = DEFAULT_KEEP_VERSIONS,
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    dry_run: bool = False,
) -> CompactionReport:
    """Drop the task's superseded artifact versions and rotate its log if it is over ``max_log_bytes``.

    Holds the task's run lease while it works (when the store takes leases), so no run starts meanwhile.

    Raises:
        TaskRunningError: a live runner holds the task.
        ValueError: ``keep_versions`` or ``max_log_bytes`` below 1.
        InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, LockTimeoutError: as the store's operations.
    """
    _check_limits(keep_versions, max_log_bytes)
    if dry_run:
        report = plan_compaction(store, workspace, task_id, keep_versions=keep_versions, max_log_bytes=max_log_bytes)
        report.log = store.rotate_log(workspace, task_id, max_bytes=max_log_bytes, dry_run=True)
        return report
    lease = None
    if isinstance(store, RunLeases):
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": utcnow().isoformat()}
        lease = store.acquire_lease(workspace, task_id, {**holder, "command": "compact"})
    try:
        # Planned under the lease: no runner can add a StepResult (a new reference) until we are done.
        report = _plan(store, workspace, task_id, keep_versions, max_log_bytes, dry_run=False)
        for dropped in report.dropped:
            store.delete_artifact(workspace, task_id, dropped.name)
            crash_point("compact:version-dropped")
        report.log = store.rotate_log(workspace, task_id, max_bytes=max_log_bytes)
        crash_point("compact:log-rotated")
        return report
    finally:
        if lease is not None:
            lease.release()


@dataclass
class WorkspaceCompaction:
    """What ``compact_workspace`` did (or would do) to each task of a workspace."""

    workspace: str
    dry_run: bool
    keep_versions: int
    max_log_bytes: int
    #: One report per task compacted (or looked at: a report may drop and move nothing).
    reports: list[CompactionReport] = field(default_factory=list)
    #: Tasks a live runner holds, by id: left alone (compact them once the run ends).
    running: dict[str, TaskRunningError] = field(default_factory=dict)
    #: Tasks that could not be read or compacted, by id (or the unreadable entry's message): left as they are.
    failed: dict[str, AtlasTasksError] = field(default_factory=dict)

    @property
    def bytes_freed(self) -> int:
        """Bytes freed over every task."""
        return sum(report.bytes_freed for report in self.reports)

    @property
    def changed(self) -> list[CompactionReport]:
        """The reports of tasks that had something to drop or rotate."""
        return [r for r in self.reports if r.dropped or r.log.segment or r.log.resumed]

    def to_json(self) -> dict[str, Any]:
        """The ``compact WS --json`` document (each task's as ``compact WS ID --json`` prints it)."""
        return {
            "workspace": self.workspace,
            "dry_run": self.dry_run,
            "keep_versions": self.keep_versions,
            "max_log_bytes": self.max_log_bytes,
            "tasks": [report.to_json() for report in self.reports],
            "running": {task_id: exc.message for task_id, exc in sorted(self.running.items())},
            "failed": {task_id: exc.message for task_id, exc in sorted(self.failed.items())},
            "bytes_freed": self.bytes_freed,
        }


def compact_workspace(
    store: Store,
    workspace: str,
    *,
    keep_versions: int = DEFAULT_KEEP_VERSIONS,
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    dry_run: bool = False,
) -> WorkspaceCompaction:
    """:func:`compact` every task of a workspace, one at a time; a task a runner holds is left alone and named.

    Each task is compacted whole or not at all, as :func:`compact` does it; one task that fails (unreadable, a
    lock that timed out) is reported in ``failed`` and the others go on. Tasks created meanwhile are not looked at.

    Raises:
        ValueError: ``keep_versions`` or ``max_log_bytes`` below 1.
        InvalidNameError, WorkspaceNotFoundError.
    """
    _check_limits(keep_versions, max_log_bytes)
    result = WorkspaceCompaction(workspace, dry_run, keep_versions, max_log_bytes)
    summaries = store.list_summaries(workspace)
    for exc in summaries.errors:
        result.failed[str(exc.context.get("task_id") or exc.message)] = exc
    for summary in sorted(summaries, key=lambda s: s.id):
        try:
            result.reports.append(
                compact(
                    store,
                    workspace,
                    summary.id,
                    keep_versions=keep_versions,
                    max_log_bytes=max_log_bytes,
                    dry_run=dry_run,
                )
            )
        except TaskRunningError as exc:
            result.running[summary.id] = exc
        except TaskNotFoundError:
            continue  # deleted since it was listed: nothing to compact
        except AtlasTasksError as exc:
            result.failed[summary.id] = exc
    return result


__all__ = [
    "DEFAULT_KEEP_VERSIONS",
    "DEFAULT_MAX_LOG_BYTES",
    "CompactionReport",
    "DroppedVersion",
    "WorkspaceCompaction",
    "compact",
    "compact_workspace",
    "plan_compaction",
    "plan_versions",
    "referenced_artifacts",
    "version_groups",
]
