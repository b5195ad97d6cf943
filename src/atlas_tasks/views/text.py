"""Text for people, the same on a terminal and on the dashboard: times, durations, sizes, steps, log lines.

Nothing here imports rich, typer or starlette: the CLI (:mod:`atlas_tasks.cli._render` adds the colours) and the
dashboard (its templates and live events) format a task in the same words. Every piece of stored text passes
through :func:`printable` first: task descriptions, step errors and log lines come from other programs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the CLI's fast path loads this module
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from atlas_tasks.models import Step, Task

#: How much of a description ``list`` shows.
DESCRIPTION_WIDTH = 60
#: What a step in flight shows instead of a running time once its runner died.
STOPPED = "stopped (runner died)"

_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
#: The style of each log level (a rich style name; the dashboard maps them to CSS classes).
LEVEL_STYLES = {"debug": "dim", "info": "", "warn": "yellow", "warning": "yellow", "error": "red", "fatal": "bold red"}

# C0 controls, DEL and C1 controls, written as visible escapes; tab is kept as a plain space.
_ESCAPES: dict[int, str] = {
    code: {0x0A: "\\n", 0x0D: "\\r", 0x09: " "}.get(code, f"\\x{code:02x}")
    for code in [*range(0x20), *range(0x7F, 0xA0)]
}
# The bidirectional embedding/override/isolate controls reorder what follows them on screen (a "Trojan Source" text
# can make `rm -rf ~ # safe` read as something else), and the line/paragraph separators start a new line in some
# terminals and viewers: all are shown as \uXXXX escapes too.
_ESCAPES.update({code: f"\\u{code:04x}" for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]})


def printable(text: str) -> str:
    """Return ``text`` with every control character replaced by a visible escape such as ``\\x1b`` or ``\\n``.

    Args:
        text: Any text, possibly written by another program.

    Returns:
        One line of text that a terminal displays literally.
    """
    return text.translate(_ESCAPES)


# -- formatting ---------------------------------------------------------------------------------------------


def iso(value: datetime | None) -> str:
    """A time as ISO 8601 in UTC to the second (``2025-12-28T10:00:00Z``), or ``-`` when unset."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(value: datetime | None, now: datetime) -> str:
    """A time relative to ``now`` (``12s ago``, ``5m ago``, ``3h ago``, ``4d ago``), or its date when older.

    A time in the future (clock skew between machines) is shown as ISO rather than as a negative age.
    """
    if value is None:
        return "-"
    seconds = (now - value).total_seconds()
    if seconds < 0:
        return iso(value)
    for limit, unit, size in ((60, "s", 1), (3600, "m", 60), (2 * 86400, "h", 3600), (14 * 86400, "d", 86400)):
        if seconds < limit:
            return f"{int(seconds // size)}{unit} ago"
    return value.astimezone(UTC).strftime("%Y-%m-%d")


def when(value: datetime | None, now: datetime) -> str:
    """A time as ISO followed by its age when recent: ``2025-12-28T10:00:00Z (3d ago)``."""
    if value is None:
        return "-"
    age = ago(value, now)
    return f"{iso(value)} ({age})" if age.endswith(" ago") else iso(value)


def duration(delta: timedelta) -> str:
    """A duration for people: ``0.4s``, ``42s``, ``2m12s``, ``1h08m``, ``3d04h``."""
    total = delta.total_seconds()
    if total < 0:
        return "-"
    if total < 10:
        return f"{total:.1f}s"
    minutes, seconds = divmod(int(total), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def step_duration(step: Step, now: datetime, *, stopped: bool = False) -> str:
    """How long a step took (from ``started_at`` to ``completed_at``), or has been running so far.

    ``stopped``: the task's runner died, so a step still marked in flight is not running any more: it says so
    instead of counting up a time that no runner is spending.
    """
    if step.started_at is None:
        return "-"
    if step.completed_at is None:
        return STOPPED if stopped and step.status == "running" else f"{duration(now - step.started_at)} so far"
    return duration(step.completed_at - step.started_at)


def step_progress(task: Task) -> str:
    """The current step as ``2/5 validate``; ``5/5`` once past the last step, ``-`` without steps."""
    total = len(task.steps)
    if total == 0 or task.current_step < 0:
        return "-"
    current = task.current
    if current is None:
        return f"{total}/{total}"
    return f"{task.current_step + 1}/{total} {printable(current.name)}"


def truncate(text: str, width: int) -> str:
    """The first line of ``text``, made printable and cut to ``width`` characters with an ellipsis."""
    lines = text.strip().splitlines()
    first = printable(lines[0]) if lines else ""
    if len(first) > width or len(lines) > 1:
        return first[: width - 1].rstrip() + "…"
    return first


def size(num_bytes: int | None) -> str:
    """A byte count for people: ``512 B``, ``1.2 KiB``, ``3.4 MiB``; ``?`` when unknown."""
    if num_bytes is None:
        return "?"
    value, unit = float(num_bytes), 0
    while value >= 1024 and unit < len(_SIZE_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{num_bytes} B" if unit == 0 else f"{value:.1f} {_SIZE_UNITS[unit]}"


def log_field(value: Any) -> str:
    """A log value as one printable token: plain words stay bare, anything else is JSON (quoted/escaped)."""
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"'=" for c in value):
        return printable(value)
    import json  # only here: the CLI's start-up path imports this module (for printable) and must stay light

    return printable(json.dumps(value, ensure_ascii=False))


def log_segments(record: Mapping[str, Any], workspace: str, task_id: str) -> list[tuple[str, str]]:
    """One log entry as ``(text, style)`` pieces of ``ts level step_name event key=value...`` (``-`` when missing).

    ``time``/``message``/``msg`` stand in for a missing ``ts``/``event`` (other loggers' spellings), and the
    ``workspace_name``/``task_id`` keys the store adds are left out when they just repeat the task shown.
    """
    fields = dict(record)
    ts = _take(fields, "ts", "time")
    level = _plain(_take(fields, "level"))
    step = _take(fields, "step_name")
    event = _take(fields, "event", "message", "msg")
    for key, implied in (("workspace_name", workspace), ("task_id", task_id)):
        if fields.get(key) == implied:
            del fields[key]
    row = [
        (_plain(ts), "dim"),
        (" ", ""),
        (f"{level:<5}", LEVEL_STYLES.get(level.lower(), "")),
        (" ", ""),
        (_plain(step), ""),
        (" ", ""),
        (_plain(event), "bold"),
    ]
    for key, value in fields.items():
        row += [(f" {printable(key)}=", "dim"), (log_field(value), "")]
    return row


def _take(fields: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in fields:
            return fields.pop(key)
    return None


def _plain(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return printable(value) if isinstance(value, str) else log_field(value)


__all__ = [
    "DESCRIPTION_WIDTH",
    "LEVEL_STYLES",
    "STOPPED",
    "ago",
    "duration",
    "iso",
    "log_field",
    "log_segments",
    "printable",
    "size",
    "step_duration",
    "step_progress",
    "truncate",
    "when",
]
