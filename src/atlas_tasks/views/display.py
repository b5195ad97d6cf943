"""What a task looks like to a person: its stored status, whether its runner died, and who runs it now.

Every view (``list``, ``show``, ``workspace show``, their ``--json`` documents, the dashboard's pages, counts, live
events and API) asks this module, so that a crashed run reads the same everywhere: a task stored as
``running``/``validating`` whose run lease no live runner holds is *crashed* (:func:`atlas_tasks.runs.is_interrupted`
decides). A crashed task is shown as ``interrupted (crashed)``, is matched by the status filters ``crashed`` and
``interrupted`` (it is an interrupted run that nobody recorded yet), and is not counted or matched as ``running``.

Nothing here imports rich, typer or starlette: the CLI's start-up path and the dashboard both use it. The store is
asked only through the :class:`~atlas_tasks.store.capabilities.RunLeases` capability (``lease_holder``,
``lease_candidates``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from atlas_tasks._status import TaskStatus
from atlas_tasks.errors import AtlasTasksError
from atlas_tasks.runs import ACTIVE_STATUSES, is_interrupted

if TYPE_CHECKING:
    from atlas_tasks.models import Task
    from atlas_tasks.runs import LeasingStore

#: The pseudo-status of a run whose runner died (running/validating, but no live lease).
CRASHED = "crashed"
CRASHED_LABEL = "interrupted (crashed)"
#: Every status a view can filter on: the stored ones, and ``crashed``.
STATUS_FILTERS = (*[str(s) for s in TaskStatus], CRASHED)
#: How often a task that keeps changing under the liveness probe is read again before giving up on calling it crashed.
_REREADS = 3


@dataclass(frozen=True)
class DisplayState:
    """A task as views show it.

    Attributes:
        task: The task (for one task: the latest copy read while deciding).
        crashed: Stored as running/validating, but no live runner holds it: its runner died.
        holder: The live runner's lease holder (``{"pid", "host", "started_at"}``), or None when none holds it.
    """

    task: Task
    crashed: bool = False
    holder: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        """The status views filter and count by: ``crashed`` for a dead run, otherwise the stored one."""
        return CRASHED if self.crashed else str(self.task.status)

    @property
    def label(self) -> str:
        """The status as people read it: ``interrupted (crashed)`` for a dead run."""
        return CRASHED_LABEL if self.crashed else str(self.task.status)


class _KnownLease:
    """A store view that answers "who holds this lease?" with an answer probed already (None: nobody)."""

    def __init__(self, holder: dict[str, Any] | None = None) -> None:
        self.holder = holder

    def lease_holder(self, workspace: str, task_id: str) -> dict[str, Any] | None:
        return self.holder


def _looks_crashed(task: Task, holder: dict[str, Any] | None, now: datetime) -> bool:
    # is_interrupted without its own probe or re-read: status, "approved and ready to continue", Go staleness.
    return is_interrupted(cast("LeasingStore", _KnownLease(holder)), "", task, now=now, confirm=False)


def display_state(store: LeasingStore, workspace: str, task: Task, *, now: datetime | None = None) -> DisplayState:
    """The display state of one task, probing its lease (only when it is running/validating).

    ``task`` may be a copy read a moment ago. A runner that finished in between (last checkpoint, then lease given
    back) would look crashed, so a free lease is confirmed by reading the task again: a crashed run stays at the
    revision it was seen at. When the task changed meanwhile the newer copy is judged instead (and returned).
    """
    now = now or datetime.now(UTC)
    for _ in range(_REREADS):
        if task.status not in ACTIVE_STATUSES:
            return DisplayState(task)
        holder = store.lease_holder(workspace, task.id)
        if holder is not None or not _looks_crashed(task, None, now):
            return DisplayState(task, holder=holder)
        try:
            again = store.get(workspace, task.id)
        except AtlasTasksError:
            return DisplayState(task)  # deleted or unreadable meanwhile: not a crashed run to resume
        if again.revision == task.revision:
            return DisplayState(task, crashed=True)
        task = again
    return DisplayState(task)  # still changing: something is writing it, so it is not dead


def display_states(
    store: LeasingStore, rows: Iterable[tuple[str, Task]], *, now: datetime | None = None
) -> dict[tuple[str, str], DisplayState]:
    """The display state of every listed task, keyed ``(workspace, id)``, probing as little as possible.

    Only running/validating tasks are probed (the others cannot have crashed, and asking their lease would cost a
    file open each); a task not among the store's ``lease_candidates`` was never run by a runner of ours, so it
    needs neither a lease probe nor a confirming re-read. A task that changed between the listing and the probe is
    not crashed (its row shows the listed copy). Tasks missing from the result are simply their stored status.
    """
    now = now or datetime.now(UTC)
    leased: dict[str, set[str] | None] = {}
    found: dict[tuple[str, str], DisplayState] = {}
    for ws, task in rows:
        if task.status not in ACTIVE_STATUSES:
            continue
        if ws not in leased:
            # The capability's cheap pre-filter (the file store: one directory listing instead of a lease probe
            # per task, which for thousands of active tasks is most of a listing's time).
            leased[ws] = store.lease_candidates(ws)
        known = leased[ws]
        if known is not None and task.id not in known:
            found[ws, task.id] = DisplayState(task, crashed=_looks_crashed(task, None, now))
            continue
        state = display_state(store, ws, task, now=now)
        # Changed since the listing read it: something wrote it, so the listed copy is not a dead run.
        crashed = state.crashed and state.task.revision == task.revision
        found[ws, task.id] = DisplayState(task, crashed=crashed, holder=state.holder)
    return found


def state_of(states: dict[tuple[str, str], DisplayState], workspace: str, task: Task) -> DisplayState:
    """One row's state out of :func:`display_states` (its stored status when it was not probed)."""
    return states.get((workspace, task.id)) or DisplayState(task)


def matches_status(state: DisplayState, wanted: Iterable[str]) -> bool:
    """Whether a task passes a status filter: a crashed run matches ``crashed`` and ``interrupted``, never its stored
    ``running``/``validating``; any other task matches its stored status."""
    wanted = set(wanted)
    if not wanted:
        return True
    if state.crashed:
        return CRASHED in wanted or str(TaskStatus.INTERRUPTED) in wanted
    return str(state.task.status) in wanted


def matches_text(workspace: str, task: Task, needle: str) -> bool:
    """Whether a lower-cased search text occurs in the task's id, description, template or workspace name."""
    return any(needle in text.lower() for text in (task.id, task.description, task.template, workspace))


def count_statuses(states: Sequence[DisplayState]) -> dict[str, int]:
    """How many tasks each status filter would show (a crashed run counts under ``crashed`` and ``interrupted``,
    not under its stored ``running``/``validating``)."""
    counts = dict.fromkeys(STATUS_FILTERS, 0)
    for state in states:
        counts[state.status] = counts.get(state.status, 0) + 1
        if state.crashed:
            counts[str(TaskStatus.INTERRUPTED)] += 1
    return counts


def runner_text(holder: dict[str, Any] | None) -> str:
    """The live runner as ``pid 123 on host since T`` (or the Go daemon that runs it), or empty when none holds it."""
    if holder is None:
        return ""
    if holder.get("daemon"):
        return f"the Go ATLAS daemon at {holder['daemon']}"
    parts = [f"pid {holder.get('pid', '?')}", f"on {holder.get('host', '?')}"]
    if holder.get("started_at"):
        parts.append(f"since {holder['started_at']}")
    return " ".join(str(p) for p in parts)


__all__ = [
    "CRASHED",
    "CRASHED_LABEL",
    "STATUS_FILTERS",
    "DisplayState",
    "count_statuses",
    "display_state",
    "display_states",
    "matches_status",
    "matches_text",
    "runner_text",
    "state_of",
]
