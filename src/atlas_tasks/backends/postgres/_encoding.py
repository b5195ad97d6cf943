"""Pure helpers between the models and the rows: log lines, workspace refs, task row parameters."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from atlas_tasks.backends.file import FileStore, parse_log
from atlas_tasks.models import Task, TaskRef
from atlas_tasks.store import LogEntry, LogLines
from atlas_tasks.transitions import is_terminal


def log_line(workspace: str, task_id: str, entry: LogEntry) -> bytes:
    """The stored form of a log entry (one JSON line, without its newline), validated as the file store does.

    Raises:
        InvalidLogEntryError: not JSON, or a newline or NUL inside.
    """
    # FileStore._log_line uses no instance state. Calling it keeps a single definition of the log format (defaults
    # filled in, what is refused) until it moves to a module both backends share.
    return FileStore._log_line(cast(FileStore, None), workspace, task_id, entry)[:-1]


def imported_log_line(workspace: str, task_id: str, entry: LogEntry) -> bytes:
    """Like :func:`log_line`, but a mapping is stored exactly as given (no ``ts``/``task_id`` filled in)."""
    if isinstance(entry, Mapping):
        entry = json.dumps(dict(entry), ensure_ascii=False, separators=(",", ":"), default=str)
    return log_line(workspace, task_id, entry)


def parse_lines(lines: list[bytes], workspace: str, task_id: str, path: str) -> LogLines:
    """Parse stored lines exactly as the file store parses its task.log (non-object lines reported the same way)."""
    return parse_log(b"".join(line + b"\n" for line in lines), workspace, task_id, path)


def ref_json(task: Task, ref: TaskRef | None = None) -> str:
    """The workspace ref of a task, as the file store writes it on create and on reaching a terminal status."""
    if ref is None:
        ref = TaskRef(
            id=task.id,
            status=str(task.status),
            started_at=task.created_at,
            completed_at=task.completed_at if is_terminal(task.status) else None,
        )
    return ref.model_dump_json()


def refs_from_json(text: str | None) -> list[TaskRef]:
    """Decode the ``json_agg`` of a workspace's refs (NULL for a workspace without tasks)."""
    return [TaskRef.model_validate(item) for item in json.loads(text)] if text else []


def task_params(workspace: str, task: Task, data: bytes) -> dict[str, Any]:
    """The indexed columns and the document of a task row."""
    return {
        "ws": workspace,
        "id": task.id,
        "status": str(task.status),
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "revision": task.revision,
        "doc": data.decode("utf-8"),
    }


def to_bytes(data: bytes | str) -> bytes:
    """Artifact data as bytes (``str`` as UTF-8, like the file store)."""
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


__all__ = [
    "imported_log_line",
    "log_line",
    "parse_lines",
    "ref_json",
    "refs_from_json",
    "task_params",
    "to_bytes",
]
