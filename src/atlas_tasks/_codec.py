"""JSON encoding and decoding of task and workspace documents, byte-compatible with the Go ATLAS.

Encoding reproduces Go's ``json.MarshalIndent(v, "", "  ")``: 2-space indent, ``": "``, no trailing newline, raw
UTF-8, ``<``/``>``/``&`` and U+2028/U+2029 escaped. Decoding checks ``schema_version`` before anything else, so a
document from a newer, incompatible writer is refused instead of being silently rewritten without its new fields,
and applies :data:`MIGRATIONS` to older ones.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json, to_json

from atlas_tasks.errors import SchemaVersionError
from atlas_tasks.models import Task, TaskRef, Workspace, _GoModel, format_time

#: The task document version this library writes.
SCHEMA_VERSION = "1.0"
#: The workspace document version this library writes (an int, as in the Go ATLAS).
WORKSPACE_SCHEMA_VERSION = 1

#: Upgrades of raw task documents, oldest first: ``(from_major, upgrade)``. ``decode_task`` applies every upgrade
#: whose ``from_major`` is at least the document's major version, in order. Empty while there is only version 1.
MIGRATIONS: list[tuple[int, Callable[[dict[str, Any]], dict[str, Any]]]] = []
#: The same for workspace documents.
WORKSPACE_MIGRATIONS: list[tuple[int, Callable[[dict[str, Any]], dict[str, Any]]]] = []

_TASK_MAJOR = 1
_WORKSPACE_MAJOR = 1
_VERSION = re.compile(r"(\d+)(?:\.[0-9A-Za-z]+)*")

# Go's encoder escapes these even inside otherwise raw UTF-8 output. They can only occur inside JSON strings (the
# structure is ASCII without them), so replacing them in the finished text is exact.
_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)

_M = TypeVar("_M", bound=BaseModel)

#: orjson's ``dumps(value, option=OPT_INDENT_2)`` once imported (on first use: the CLI's start-up path never encodes
#: a task); False where orjson is missing, and pydantic-core writes the text.
_dumps: Callable[[Any], bytes] | bool | None = None
#: Per thread, the last task document :func:`_go_json` wrote: ``memo = (bytes, JSON values)`` (see _take_encoded).
_last_encoded = threading.local()


def _go_escape(raw: bytes) -> bytes:
    # U+2028/U+2029 are multi-byte: an all-ASCII document (the usual case, one fast pass) cannot hold them, so only
    # the three one-byte needles are looked for then.
    for char, escape in _GO_ESCAPES if not raw.isascii() else _GO_ESCAPES[:3]:
        if char in raw:
            raw = raw.replace(char, escape)
    return raw


def _go_json(model: _GoModel) -> bytes:
    # Go's MarshalIndent layout (": ", "[]", "{}", raw UTF-8, no trailing newline) is what both orjson's
    # OPT_INDENT_2 and pydantic-core's indent=2 write. The model is turned into plain JSON values by pydantic-core
    # (omitempty spec, Go's time format, sorted maps, aliases) and written by orjson, about a quarter faster than
    # pydantic-core writing the text itself; tests/models/test_codec.py holds the two byte-identical. What orjson
    # cannot write (an integer beyond 64 bits) goes the old way, whole.
    target, go_names = model._go_target()
    exclude = target._go_exclude() or None
    serializer = target.__pydantic_serializer__
    dumps = _dumps if _dumps is not None else _load_dumps()
    if dumps is False:
        return _go_escape(serializer.to_json(target, indent=2, exclude=exclude, by_alias=go_names))
    doc = serializer.to_python(target, mode="json", exclude=exclude, by_alias=go_names)
    try:
        raw = _go_escape(dumps(doc))  # type: ignore[operator]
    except TypeError:
        return _go_escape(serializer.to_json(target, indent=2, exclude=exclude, by_alias=go_names))
    if isinstance(target, Task):
        # Kept for the decode of these very bytes that usually follows (update hands back what get() would
        # return): the values are what parsing the bytes gives, and nobody else holds them.
        _last_encoded.memo = (raw, doc)
    return raw


def _load_dumps() -> Callable[[Any], bytes] | bool:
    global _dumps
    try:
        import orjson
    except ImportError:  # pragma: no cover - a dependency; without it the output is the same, written slower
        _dumps = False
        return False
    option = orjson.OPT_INDENT_2

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value, option=option)

    _dumps = dumps
    return dumps


def _take_encoded(data: bytes | str) -> dict[str, Any] | None:
    """The JSON values :func:`_go_json` just turned into ``data`` (this very object), once; else None."""
    memo: tuple[bytes, dict[str, Any]] | None = getattr(_last_encoded, "memo", None)
    if memo is None:
        return None
    _last_encoded.memo = None  # once: a second decode must not share the values with the first
    return memo[1] if memo[0] is data else None


def _pydantic_go_json(model: _GoModel) -> bytes:
    """The encoder before orjson (pydantic-core writes the text): kept as the reference the tests compare with."""
    target, go_names = model._go_target()
    exclude = target._go_exclude()
    raw = target.__pydantic_serializer__.to_json(target, indent=2, exclude=exclude or None, by_alias=go_names)
    for char, escape in _GO_ESCAPES:
        if char in raw:
            raw = raw.replace(char, escape)
    return raw


def current_step_error(current_step: int, total_steps: int) -> str:
    """The reason a ``current_step`` outside ``0..total_steps`` is refused."""
    return (
        f"current_step {current_step} is outside 0..{total_steps} (the step to run next, or the number of steps "
        "once all ran)"
    )


def _check_current_step(task: Task, path: str) -> None:
    # The Go ATLAS counts current_step up to len(steps) (all done) and never past it; anything else would make a
    # runner index from the end (-1 runs the last step first) or skip every step.
    if not 0 <= task.current_step <= len(task.steps):
        raise ValueError(f"{path}: invalid task: {current_step_error(task.current_step, len(task.steps))}")


def encode_task(task: Task) -> bytes:
    """Encode a task as the Go ATLAS writes ``task.json``.

    Args:
        task: The task; its :attr:`Task.key_style` decides the key spelling.

    Returns:
        UTF-8 JSON without a trailing newline.

    Raises:
        ValueError: A field holds a value JSON cannot carry (e.g. a naive datetime assigned after validation), or
            ``current_step`` is outside ``0..len(steps)`` (which :func:`decode_task` would refuse to read back).
    """
    _check_current_step(task, f"task {task.id or '(new)'}")
    return _go_json(task)


def encode_workspace(workspace: Workspace) -> bytes:
    """Encode a workspace as the Go ATLAS writes ``workspace.json`` (same layout as :func:`encode_task`)."""
    return _go_json(workspace)


def ref_document(ref: TaskRef) -> dict[str, Any]:
    """A task ref as the plain JSON object :func:`encode_workspace` writes for it (for :func:`patch_workspace_refs`)."""
    doc: dict[str, Any] = from_json(_go_json(ref))
    return doc


def patch_workspace_refs(
    data: bytes,
    change: Callable[[list[dict[str, Any]]], bool],
    updated_at: datetime,
    *,
    path: str = "workspace.json",
) -> bytes | None:
    """``workspace.json`` with its task refs changed by ``change``, without building a model per ref.

    ``change`` gets the refs as plain JSON objects and says whether it changed them. Every other key of the
    document is written back as it was read, in the same layout as :func:`encode_workspace`; ``updated_at`` is set.

    Returns:
        The new document, or None when ``change`` changed nothing.

    Raises:
        SchemaVersionError: a newer document (left alone, as :func:`decode_workspace` does).
        ValueError: not a document this edit can keep exact (invalid JSON, an older format to migrate, refs that
            are not a list of objects): the caller decodes the workspace instead.
    """
    raw = _load_object(data, path)
    version = raw.get("schema_version")
    if _major(version, path, supported=_WORKSPACE_MAJOR) != _WORKSPACE_MAJOR or not isinstance(version, int):
        raise ValueError(f"{path}: schema_version {version!r} is left to the model path")
    refs = raw.get("tasks")
    if not isinstance(refs, list) or not all(isinstance(ref, dict) for ref in refs):
        raise ValueError(f"{path}: tasks is not a list of objects")
    if not change(refs):
        return None
    raw["updated_at"] = format_time(updated_at)
    return _go_escape(to_json(raw, indent=2))


def decode_task(data: bytes | str, *, path: str = "task.json") -> Task:
    """Decode a ``task.json`` written by atlas-tasks or by the Go ATLAS (either key spelling).

    Args:
        data: The file's content.
        path: Where it came from, for error messages.

    Returns:
        The task, with unknown keys kept for writing back.

    Raises:
        SchemaVersionError: ``schema_version`` has a major version above 1.
        ValueError: Invalid JSON, not an object, an unreadable ``schema_version`` or invalid fields (among them a
            ``current_step`` outside ``0..len(steps)``).
    """
    encoded = _take_encoded(data)
    raw = encoded if encoded is not None else _load_object(data, path)
    version = raw.get("schema_version")
    # What every current document says, without the regex; _major reads anything else.
    major = _TASK_MAJOR if version == SCHEMA_VERSION else _major(version, path, supported=_TASK_MAJOR)
    task = _validate(Task, _migrate(raw, major, MIGRATIONS) if MIGRATIONS else raw, path)
    _check_current_step(task, path)
    return task


def decode_workspace(data: bytes | str, *, path: str = "workspace.json") -> Workspace:
    """Decode a ``workspace.json`` (``schema_version`` is the int 1; the string ``"1"`` is accepted too).

    Raises:
        SchemaVersionError: ``schema_version`` is above 1.
        ValueError: Invalid JSON, not an object, an unreadable ``schema_version`` or invalid fields.
    """
    raw = _load_object(data, path)
    major = _major(raw.get("schema_version"), path, supported=_WORKSPACE_MAJOR)
    if isinstance(raw.get("schema_version"), str):
        raw["schema_version"] = major
    return _validate(Workspace, _migrate(raw, major, WORKSPACE_MIGRATIONS), path)


def _load_object(data: bytes | str, path: str) -> dict[str, Any]:
    try:
        # pydantic-core's parser: about 3x faster than json.loads; it refuses NaN/Infinity as Go does, and reports
        # invalid UTF-8 and excessive nesting as ValueError too.
        raw = from_json(data, allow_inf_nan=False)
    except ValueError as exc:
        raise ValueError(f"{path}: invalid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(raw).__name__}")
    return raw


def _major(version: object, path: str, *, supported: int) -> int:
    """The major version of a document; missing or empty counts as the supported one (Go's zero value)."""
    if version is None or version == "":
        return supported
    if isinstance(version, int) and not isinstance(version, bool):
        major = version
    elif isinstance(version, str) and (match := _VERSION.fullmatch(version)):
        major = int(match.group(1))
    else:
        raise ValueError(f"{path}: unreadable schema_version {version!r}")
    if major > supported:
        raise SchemaVersionError(path, str(version), f"{supported}.x")
    return major


def _migrate(
    raw: dict[str, Any], major: int, migrations: list[tuple[int, Callable[[dict[str, Any]], dict[str, Any]]]]
) -> dict[str, Any]:
    for from_major, upgrade in migrations:
        if from_major >= major:
            raw = upgrade(raw)
    return raw


def _validate(model: type[_M], raw: dict[str, Any], path: str) -> _M:
    try:
        # The model's validator itself: model_validate is a Python wrapper around this call (~1 us per task).
        validated: _M = model.__pydantic_validator__.validate_python(raw)
        return validated
    except ValidationError as exc:
        raise ValueError(f"{path}: invalid {model.__name__.lower()}: {_summary(exc)}") from exc


def _summary(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    shown = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(document)'}: {e['msg']}" for e in errors[:3])
    return shown + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "WORKSPACE_MIGRATIONS",
    "WORKSPACE_SCHEMA_VERSION",
    "current_step_error",
    "decode_task",
    "decode_workspace",
    "encode_task",
    "encode_workspace",
    "patch_workspace_refs",
    "ref_document",
]
