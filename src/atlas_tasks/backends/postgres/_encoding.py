"""Pure helpers between documents and rows: a task row's indexed columns, workspace refs.

The document formats themselves (task.json bytes, log lines, summaries) are :mod:`atlas_tasks.documents`' and
:mod:`atlas_tasks._codec`'s: this backend stores exactly those bytes and never defines a format of its own.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import from_json

from atlas_tasks.documents.summaries import summary_and_times
from atlas_tasks.errors import CorruptTaskError, SchemaVersionError
from atlas_tasks.models import TaskRef, parse_time
from atlas_tasks.store.types import TaskSummary
from atlas_tasks.transitions import is_terminal


class TaskRow:
    """The indexed columns of a task row, read from the document bytes stored beside them (never from a model).

    BaseStore hands a primitive the bytes it stores; reading the few columns back from those bytes keeps the columns
    and the document in step whatever the caller's object holds.
    """

    __slots__ = ("completed_at", "created_at", "revision", "status", "updated_at")

    def __init__(self, data: bytes) -> None:
        doc = from_json(data, allow_inf_nan=True)
        self.status = str(doc.get("status") or "pending")
        self.revision = int(doc.get("revision") or 0)
        self.created_at = parse_time(doc.get("created_at"))
        self.updated_at = parse_time(doc.get("updated_at"))
        self.completed_at = parse_time(doc.get("completed_at"))

    def ref(self, task_id: str) -> TaskRef:
        """The task's entry in its workspace's refs, as the file store writes it on create and at a terminal status."""
        return TaskRef(
            id=task_id,
            status=self.status,
            started_at=self.created_at,
            completed_at=self.completed_at if is_terminal(self.status) else None,
        )

    def params(self, workspace: str, task_id: str, data: bytes) -> dict[str, Any]:
        """The statement parameters of the row: indexed columns and the document."""
        return {
            "ws": workspace,
            "id": task_id,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "revision": self.revision,
            "doc": data.decode("utf-8"),
            **summary_params(data, task_id, self.revision),
        }


def summary_params(data: bytes, task_id: str, revision: int) -> dict[str, Any]:
    """The ``summary`` and ``summary_revision`` columns of a task row (NULL both when the document has none)."""
    text = summary_text(data, task_id)
    return {"summary": text, "summary_revision": None if text is None else revision}


def summary_text(data: bytes, task_id: str) -> str | None:
    """What ``list_summaries`` shows of a task document, as the compact JSON array kept in ``tasks.summary``.

    Read by the shared summary reader (:func:`atlas_tasks.documents.summaries.summary_and_times`), so a stored
    summary is exactly what reading the document gives; the times are kept as the document spells them (Go's
    nanoseconds and offsets included). None when that reader refuses the document: listing it then reads the
    document and reports the same error as before. ASCII JSON: a ``\\u0000`` in a description stays escaped
    (a ``text`` column cannot hold NUL).
    """
    try:
        summary, created, updated = summary_and_times(data, "", task_id, "")
    except (CorruptTaskError, SchemaVersionError):
        return None
    fields = [summary.id, summary.status, summary.template, summary.description, summary.current_step]
    fields += [summary.total_steps, created, updated, summary.revision]
    return json.dumps(fields, separators=(",", ":"))


def summary_from_text(text: str, workspace: str) -> TaskSummary:
    """The TaskSummary a :func:`summary_text` array describes."""
    f = from_json(text)
    return TaskSummary(
        id=f[0],
        workspace=workspace,
        status=f[1],
        template=f[2],
        description=f[3],
        current_step=f[4],
        total_steps=f[5],
        created_at=parse_time(f[6]),
        updated_at=parse_time(f[7]),
        revision=f[8],
    )


def refs_from_json(text: str | None) -> list[TaskRef]:
    """Decode the ``json_agg`` of a workspace's refs (NULL for a workspace without tasks)."""
    return [TaskRef.model_validate(item) for item in json.loads(text)] if text else []


__all__ = ["TaskRow", "refs_from_json", "summary_from_text", "summary_params", "summary_text"]
