"""Task ids, in the forms every Go ATLAS version can list.

* Story-era Go lists ``^task-\\d{8}-\\d{6}(-\\d{3})?$``: ``task-YYYYMMDD-HHMMSS`` in UTC, and after a collision in
  the same second ``task-YYYYMMDD-HHMMSS-NNN`` (three digits: the millisecond of creation, then the next free one).
* The current Go ATLAS lists only ``task-<uuid4>``.

Ids are *candidates* here; the store makes one real by reserving its directory with ``mkdir`` (atomic: EEXIST on
a collision), so two creators can never share an id.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Literal

IdStyle = Literal["auto", "timestamp", "uuid"]

TIMESTAMP_ID_RE = re.compile(r"task-\d{8}-\d{6}(-\d{3})?")
UUID_ID_RE = re.compile(r"task-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def timestamp_candidates(now: datetime | None = None) -> Iterator[str]:
    """Yield ``task-YYYYMMDD-HHMMSS`` then its 1000 suffixed forms, starting at the current millisecond."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    base = f"task-{now:%Y%m%d-%H%M%S}"
    yield base
    first = now.microsecond // 1000
    for offset in range(1000):
        yield f"{base}-{(first + offset) % 1000:03d}"


def uuid_id() -> str:
    """A ``task-<uuid4>`` id (lowercase, as the current Go ATLAS writes)."""
    return f"task-{uuid.uuid4()}"


def is_uuid_id(task_id: str) -> bool:
    return UUID_ID_RE.fullmatch(task_id) is not None


def is_timestamp_id(task_id: str) -> bool:
    return TIMESTAMP_ID_RE.fullmatch(task_id) is not None


def resolve_style(style: IdStyle, existing_ids: Iterable[str]) -> Literal["timestamp", "uuid"]:
    """The id style for a new task: ``auto`` follows a workspace the current Go ATLAS manages (uuid ids)."""
    if style != "auto":
        return style
    return "uuid" if any(is_uuid_id(name) for name in existing_ids) else "timestamp"
