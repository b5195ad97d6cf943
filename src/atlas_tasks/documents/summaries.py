"""What a listing shows of a task, read straight from its bytes, and the two orders listings use.

* :func:`summarize`: a :class:`~atlas_tasks.store.TaskSummary` without building the full typed task (the
  dashboard's index and ``list_summaries`` on every backend).
* :func:`newest_first_key`: the order of every listing: newest ``created_at`` first, ties by id, descending.
* :func:`natural_sorted`: artifact names with digit runs compared as numbers (``v10`` after ``v9``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic_core import from_json

from atlas_tasks._codec import current_step_error
from atlas_tasks.documents.head import check_major
from atlas_tasks.errors import CorruptTaskError, SchemaVersionError
from atlas_tasks.models import parse_time
from atlas_tasks.store.types import TaskSummary

if TYPE_CHECKING:
    from atlas_tasks.models import Task

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[Any, ...]:
    """The sort key of natural order: "validation.10.json" after "validation.9.json"."""
    parts: list[Any] = _DIGITS.split(name)
    if len(parts) > 1:
        parts[1::2] = map(int, parts[1::2])
    return tuple(parts)


# Natural keys by name, shared by every store of the process: a key is a pure function of the name, and building
# one (a regex split in Python) costs several times the scandir entry it sorts. Cleared when it grows past the cap.
NATURAL_KEYS: dict[str, tuple[Any, ...]] = {}
_NATURAL_KEYS_CAP = 1 << 16


def natural_sorted(names: list[str]) -> list[str]:
    """``names`` in natural order (stable for names with equal keys, as ``sorted(names, key=natural_key)``)."""
    keys = NATURAL_KEYS
    try:
        return sorted(names, key=keys.__getitem__)
    except KeyError:
        pass
    if len(keys) + len(names) > _NATURAL_KEYS_CAP:
        keys.clear()
    for name in names:
        if name not in keys:
            keys[name] = natural_key(name)
    get = keys.get
    return sorted(names, key=lambda name: get(name) or natural_key(name))


def newest_first_key(item: Task | TaskSummary) -> tuple[float, str]:
    """Sort key (with ``reverse=True``) of every listing: newest ``created_at`` first, ties by id."""
    created = item.created_at
    return (created.timestamp() if created is not None else float("-inf"), item.id)


def summarize(raw: bytes, workspace: str, task_id: str, path: str) -> TaskSummary:
    """A TaskSummary straight from task.json bytes (either key spelling), skipping full model validation.

    Raises:
        CorruptTaskError: not a JSON object, or fields no task can have.
        SchemaVersionError: written by a newer major format.
    """
    return summary_and_times(raw, workspace, task_id, path)[0]


def summary_and_times(raw: bytes, workspace: str, task_id: str, path: str) -> tuple[TaskSummary, Any, Any]:
    """:func:`summarize`, plus the created_at and updated_at values as stored (for the file store's cache)."""
    try:
        # pydantic-core's parser, as decode_task uses: the same verdict on excessive nesting (a ValueError, where
        # json.loads raises RecursionError) and on invalid UTF-8; NaN/Infinity accepted as TaskHead accepts them.
        doc = from_json(raw, allow_inf_nan=True)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        check_major(doc, path)
        steps = doc.get("steps") or []
        created, updated = doc.get("created_at"), doc.get("updated_at")
        current_step = int(doc.get("current_step") or 0)
        total_steps = len(steps) if isinstance(steps, list) else 0
        if not 0 <= current_step <= total_steps:
            raise ValueError(current_step_error(current_step, total_steps))
        summary = TaskSummary(
            id=str(doc.get("id") or task_id),
            workspace=workspace,
            status=str(doc.get("status") or "pending"),
            template=str(doc.get("template", doc.get("template_id", "")) or ""),
            description=str(doc.get("description") or ""),
            current_step=current_step,
            total_steps=total_steps,
            created_at=parse_time(created),
            updated_at=parse_time(updated),
            revision=int(doc.get("revision") or 0),
        )
        return summary, created, updated
    except SchemaVersionError:
        raise
    except (ValueError, TypeError) as exc:
        raise CorruptTaskError(workspace, task_id, path, str(exc).splitlines()[0]) from None


__all__ = ["NATURAL_KEYS", "natural_key", "natural_sorted", "newest_first_key", "summarize", "summary_and_times"]
