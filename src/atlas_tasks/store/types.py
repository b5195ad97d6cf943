"""The value types of the Store contract: what its methods take and return (no behaviour, no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from atlas_tasks.errors import AtlasTasksError, CorruptLogError
from atlas_tasks.models import Task, Workspace


class TaskList(list[Task]):
    """The tasks ``list`` could read, newest first, plus ``errors``: one CorruptTaskError per unreadable task.

    A listing never silently drops a task: check ``errors`` (or pass ``strict=True``) to see what was skipped.
    """

    errors: list[AtlasTasksError]

    def __init__(self, tasks: list[Task] | None = None, errors: list[AtlasTasksError] | None = None) -> None:
        super().__init__(tasks or [])
        self.errors = errors or []


class WorkspaceList(list[Workspace]):
    """The workspaces ``list_workspaces`` could read, by name, plus ``errors`` for unreadable ones."""

    errors: list[AtlasTasksError]

    def __init__(self, workspaces: list[Workspace] | None = None, errors: list[AtlasTasksError] | None = None) -> None:
        super().__init__(workspaces or [])
        self.errors = errors or []


class LogLines(list[dict[str, Any]]):
    """The parsed lines of a task.log, in order.

    Attributes:
        skipped: lines left out: a torn or NUL-padded final line (an append cut short by a crash, never
            acknowledged) plus every damaged line listed in ``errors``.
        torn_tail: True if the final line was torn.
        errors: one CorruptLogError per damaged line that is followed by intact lines.
    """

    skipped: int
    torn_tail: bool
    errors: list[CorruptLogError]

    def __init__(self, lines: list[dict[str, Any]] | None = None) -> None:
        super().__init__(lines or [])
        self.skipped = 0
        self.torn_tail = False
        self.errors = []


class LogTail(LogLines):
    """A window of a task's log read by ``tail_log``: its intact entries in order, and where each one ends.

    Positions are opaque whole numbers to hand back to ``tail_log(after=...)``: byte offsets into task.log in the
    file store, line sequence numbers in PostgreSQL. ``skipped``, ``torn_tail`` and ``errors`` describe the
    window only.

    Attributes:
        positions: for each entry, the position just after it (what to continue from once it was shown).
        start: the position the window begins at; 0 when nothing of the log comes before it.
        end: the position just after the last whole line the window covers (damaged ones included).
        more: whether whole lines after ``end`` were left for another call (the window was full).
    """

    positions: list[int]
    start: int
    end: int
    more: bool

    def __init__(self, lines: list[dict[str, Any]] | None = None) -> None:
        super().__init__(lines)
        self.positions = []
        self.start = 0
        self.end = 0
        self.more = False


@dataclass(frozen=True)
class TaskSummary:
    """The few fields a listing or a dashboard shows, read without building the full typed task."""

    id: str
    workspace: str
    status: str
    template: str
    description: str
    current_step: int
    total_steps: int
    created_at: datetime | None
    updated_at: datetime | None
    revision: int


class SummaryList(list[TaskSummary]):
    """Task summaries, newest first, plus ``errors`` (one per unreadable task), as :class:`TaskList`."""

    errors: list[AtlasTasksError]

    def __init__(self) -> None:
        super().__init__()
        self.errors = []


@dataclass
class Finding:
    """One problem found by a store's ``check`` (see :class:`atlas_tasks.store.Repairable`) or by ``doctor``."""

    kind: str
    path: str
    detail: str
    workspace: str | None = None
    task_id: str | None = None
    fixed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckReport:
    """What a consistency check found: ``findings``, and how many tasks it read."""

    findings: list[Finding] = field(default_factory=list)
    tasks_checked: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing needs attention (every finding, if any, was fixed)."""
        return all(f.fixed for f in self.findings)

    def add(self, finding: Finding) -> Finding:
        self.findings.append(finding)
        return finding


@dataclass(frozen=True)
class Tombstone:
    """What ``delete`` leaves of a task: a record that its id was used and must never be handed out again.

    Times are RFC 3339 text as the task documents write them; ``created_at`` is the deleted task's (empty if it
    could not be read), so an import can tell the same task coming back (an archive restored) from another one.
    ``info`` says who deleted it and why (``{"reason": "gc", "pid": 123}``).
    """

    workspace: str
    id: str
    deleted_at: str
    created_at: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The tombstone as a JSON-ready dict (what the file store writes, and ``--json`` documents show)."""
        return asdict(self)


class ArtifactReader:
    """An artifact opened for reading: its ``size`` known before any byte is read, its bytes read whole or in chunks.

    What ``open_artifact`` returns. This base fetches the bytes whole, once, when first asked for them (a store that
    keeps an artifact as one value); the file store's reads its open file in chunks, so a huge artifact is streamed
    and never held in memory. Close it when done (``with`` does); reading to the end closes it too.
    """

    #: Bytes per piece of :meth:`chunks`.
    CHUNK = 256 * 1024

    def __init__(self, size: int, fetch: Callable[[], bytes]) -> None:
        self.size = size
        self._fetch: Callable[[], bytes] | None = fetch

    def read(self) -> bytes:
        """All of it, then closed (check ``size`` first for a big one)."""
        try:
            return b"".join(self.chunks())
        finally:
            self.close()

    def chunks(self) -> Iterator[bytes]:
        """Its bytes in pieces of :attr:`CHUNK` (never more than ``size`` in all), then closed."""
        try:
            if self._fetch is None:
                return
            data = self._fetch()
            self._fetch = None
            for start in range(0, min(len(data), self.size), self.CHUNK):
                yield data[start : min(start + self.CHUNK, self.size)]
        finally:
            self.close()

    def close(self) -> None:
        """Give back what it holds (nothing more is read after)."""
        self._fetch = None

    def __enter__(self) -> ArtifactReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


LogEntry = Mapping[str, Any] | str | bytes
"""A log entry: a mapping (encoded as one JSON object), or one line of JSON as str/bytes."""


@dataclass
class LogRotation:
    """What ``rotate_log`` did (or, with ``dry_run``, would do) to a task's log.

    ``segment`` is the artifact the older lines went to (``logs/task.log.N.gz``; empty when nothing moved);
    ``lines_moved``/``bytes_moved`` count those lines uncompressed and ``segment_bytes`` the gzip stored;
    ``resumed`` is true when a rotation cut short by a crash was finished first (its segment was durable, the
    live log not yet rewritten), with ``resumed_lines``/``resumed_bytes`` dropped from the live log for it.
    """

    segment: str = ""
    lines_moved: int = 0
    bytes_moved: int = 0
    segment_bytes: int = 0
    kept_lines: int = 0
    kept_bytes: int = 0
    resumed: bool = False
    resumed_lines: int = 0
    resumed_bytes: int = 0


__all__ = [
    "ArtifactReader",
    "CheckReport",
    "Finding",
    "LogEntry",
    "LogLines",
    "LogRotation",
    "LogTail",
    "SummaryList",
    "TaskList",
    "TaskSummary",
    "Tombstone",
    "WorkspaceList",
]
