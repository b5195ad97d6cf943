"""Pure helpers between documents and rows: a task row's indexed columns, workspace refs.

The document formats themselves (task.json bytes, log lines, summaries) are :mod:`atlas_tasks.documents`' and
:mod:`atlas_tasks._codec`'s: this backend stores exactly those bytes and never defines a format of its own.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import from_json

from atlas_tasks.models import TaskRef, parse_time
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
        }


def refs_from_json(text: str | None) -> list[TaskRef]:
    """Decode the ``json_agg`` of a workspace's refs (NULL for a workspace without tasks)."""
    return [TaskRef.model_validate(item) for item in json.loads(text)] if text else []


__all__ = ["TaskRow", "refs_from_json"]
