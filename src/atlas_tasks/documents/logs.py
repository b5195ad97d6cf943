"""task.log lines: how an entry is encoded (one JSON object per line) and how a log is parsed back.

The parser is tolerant the way a crash demands: a torn or NUL-filled final line (an append cut short, never
acknowledged) is skipped and flagged, and a damaged line followed by intact ones is reported as a CorruptLogError
with its line number, never raised while reading. Every backend stores exactly these lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from atlas_tasks.errors import CorruptLogError, InvalidLogEntryError
from atlas_tasks.models import utcnow
from atlas_tasks.store.types import LogEntry, LogLines

TOO_DEEP = "JSON nested too deeply to parse (more levels than Python's parser follows, about 1,000)"


def to_bytes(data: bytes | str) -> bytes:
    """Artifact or log data as bytes (``str`` as UTF-8)."""
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def encode_line(workspace: str, task_id: str, entry: LogEntry, *, fill_defaults: bool = True) -> bytes:
    """The stored form of a log entry: one JSON line, ending in a newline.

    A mapping is encoded compactly, with ``ts``, ``workspace_name`` and ``task_id`` filled in when missing (unless
    ``fill_defaults`` is off: an imported entry is kept exactly as given). A str/bytes entry must already be one
    line of JSON.

    Raises:
        InvalidLogEntryError: not JSON, a line break or NUL inside, or nested deeper than any reader could parse.
    """
    if isinstance(entry, Mapping):
        record = dict(entry)
        if fill_defaults:
            record.setdefault("ts", utcnow().isoformat().replace("+00:00", "Z"))
            record.setdefault("workspace_name", workspace)
            record.setdefault("task_id", task_id)
        try:
            text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
        except ValueError as exc:
            raise InvalidLogEntryError(workspace, task_id, str(exc)) from None
        except RecursionError:
            raise InvalidLogEntryError(workspace, task_id, TOO_DEEP) from None
        if fill_defaults:
            return text.encode("utf-8") + b"\n"
        entry = text
    raw = to_bytes(entry)
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if b"\n" in raw or b"\r" in raw:
        raise InvalidLogEntryError(workspace, task_id, "it contains a line break (one entry is one line)")
    if b"\x00" in raw:
        raise InvalidLogEntryError(workspace, task_id, "it contains a NUL byte")
    try:
        json.loads(raw)
    except ValueError as exc:
        raise InvalidLogEntryError(workspace, task_id, f"not valid JSON ({exc})") from None
    except RecursionError:
        # Valid JSON, but one that no reader of this library could parse back: refused rather than stored.
        raise InvalidLogEntryError(workspace, task_id, TOO_DEEP) from None
    return raw + b"\n"


def parse_line(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """One log line as a record, or ``(None, why it is not one)``."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        return None, f"not valid JSON ({exc})"
    except RecursionError:
        # A NUL inside says it is the zero-filled remains of a cut append (possibly torn), not a whole document.
        return None, TOO_DEEP if b"\x00" not in line else "not valid JSON (NUL bytes in a deeply nested line)"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    return record, ""


def parse_log(raw: bytes, workspace: str, task_id: str, path: str) -> LogLines:
    """Parse task.log bytes: intact lines kept; a torn final line skipped; damaged middle lines reported."""
    out = LogLines()
    lines = raw.split(b"\n")
    if lines.pop():  # bytes after the last newline: the remains of an append cut short by a crash
        out.torn_tail = True
        out.skipped += 1
    bad: list[tuple[int, str]] = []
    last_good = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record, reason = parse_line(line)
        if record is None:
            bad.append((number, reason))
        else:
            out.append(record)
            last_good = number
    for number, reason in bad:
        out.skipped += 1
        if number > last_good and reason is not TOO_DEEP:
            # Nothing intact after it: also the remains of an interrupted append (e.g. NUL-filled by ext4).
            out.torn_tail = True
        else:
            out.errors.append(CorruptLogError(workspace, task_id, path, number, reason))
    return out


def parse_lines(lines: list[bytes], workspace: str, task_id: str, path: str) -> LogLines:
    """Stored lines (each without its newline) parsed exactly as a task.log holding them."""
    return parse_log(b"".join(line + b"\n" for line in lines), workspace, task_id, path)


__all__ = ["TOO_DEEP", "encode_line", "parse_line", "parse_lines", "parse_log", "to_bytes"]
