"""Which workspace names, task ids and artifact paths the store accepts.

Names are checked against an allowlist and rejected with :class:`~atlas_tasks.errors.InvalidNameError`; they are
never rewritten (a rewritten name can collide with another one, or surprise the caller). The file backend checks
again at open time by walking from its home with ``O_NOFOLLOW``, so a symlink planted in the store cannot redirect
a write either.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from atlas_tasks.errors import InvalidNameError

MAX_NAME_LENGTH = 128
# NAME_MAX is 255 bytes, and the store adds to an artifact's name: a temp name (".<name>.<12 hex>.tmp", 18 bytes) and
# a version number (".<N>", up to 20 digits); 200 leaves room for both.
MAX_ARTIFACT_COMPONENT_BYTES = 200
MAX_ARTIFACT_DEPTH = 8

# ASCII letters and digits first, then letters, digits, '.', '_' and '-'; the Go workspace store allows a subset.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Artifact path components may also hold '+', '=', '@' and ','; never a leading dot (temp files start with one).
_ARTIFACT_COMPONENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=@,-]*")
# `<stem>.<N><ext>`: the names save_versioned_artifact hands out, write-once.
VERSIONED_RE = re.compile(r"(?P<stem>.+?)\.(?P<n>[1-9][0-9]*)(?P<ext>\.[^.]*)?")
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)


def _check_component(kind: str, name: object, pattern: re.Pattern[str], max_len: int) -> str:
    if not isinstance(name, str):
        raise InvalidNameError(kind, repr(name), f"must be a string, not {type(name).__name__}")
    if not name:
        raise InvalidNameError(kind, name, "must not be empty")
    if name in (".", ".."):
        raise InvalidNameError(kind, name, "'.' and '..' are not names")
    if len(name.encode("utf-8", "surrogatepass")) > max_len:
        raise InvalidNameError(kind, name, f"longer than {max_len} bytes")
    if not pattern.fullmatch(name):
        raise InvalidNameError(
            kind,
            name,
            "use ASCII letters, digits, '.', '_' and '-' only, starting with a letter or digit "
            "(no separators, spaces, control characters or leading dot)",
        )
    if name.endswith("."):
        raise InvalidNameError(kind, name, "must not end with '.'")
    if name.split(".", 1)[0].lower() in _WINDOWS_DEVICES:
        raise InvalidNameError(kind, name, "is a reserved device name on Windows")
    return name


def is_valid(check: Callable[[object], str], name: object) -> bool:
    """Whether ``check`` (one of the ``check_*`` validators below) accepts ``name``: for filtering, not refusing."""
    try:
        check(name)
    except InvalidNameError:
        return False
    return True


def check_workspace_name(name: object) -> str:
    """Return ``name`` if it is a valid workspace name, else raise InvalidNameError."""
    return _check_component("workspace name", name, _NAME_RE, MAX_NAME_LENGTH)


def check_template_name(name: object) -> str:
    """Return ``name`` if it is a valid template name (a file name under ``<home>/templates``), else raise."""
    return _check_component("template name", name, _NAME_RE, MAX_NAME_LENGTH)


def check_task_id(task_id: object) -> str:
    """Return ``task_id`` if it is a valid task id, else raise InvalidNameError."""
    return _check_component("task id", task_id, _NAME_RE, MAX_NAME_LENGTH)


def artifact_parts(name: object) -> list[str]:
    """Split a relative POSIX artifact path (``sdd/spec.md``) into checked components.

    Raises:
        InvalidNameError: absolute, empty, with ``.``/``..``/empty components, a backslash, or bad characters.
    """
    if not isinstance(name, str):
        raise InvalidNameError("artifact name", repr(name), f"must be a string, not {type(name).__name__}")
    if name.startswith("/"):
        raise InvalidNameError("artifact name", name, "must be relative to the task's artifacts/ directory")
    if "\\" in name:
        raise InvalidNameError("artifact name", name, "use '/' to separate directories, not '\\'")
    parts = name.split("/")
    if len(parts) > MAX_ARTIFACT_DEPTH:
        raise InvalidNameError("artifact name", name, f"nested deeper than {MAX_ARTIFACT_DEPTH} directories")
    for part in parts:
        try:
            _check_component("artifact name", part, _ARTIFACT_COMPONENT_RE, MAX_ARTIFACT_COMPONENT_BYTES)
        except InvalidNameError as exc:
            raise InvalidNameError("artifact name", name, f"component {part!r}: {exc.reason}") from None
    return parts


def check_plain_artifact_name(name: object) -> list[str]:
    """Like :func:`artifact_parts`, and also refuse a name shaped like a version (``validation.2.json``).

    Versioned names are write-once; letting ``save_artifact`` write one would overwrite an earlier attempt.
    """
    parts = artifact_parts(name)
    if VERSIONED_RE.fullmatch(parts[-1]):
        raise InvalidNameError(
            "artifact name",
            str(name),
            "looks like a versioned artifact (<name>.<N>.<ext>), which are write-once; save it with "
            "save_versioned_artifact, or choose a name without a '.<number>' part",
        )
    return parts


def versioned_name(leaf: str, version: int) -> str:
    """``validation.json`` → ``validation.3.json``; ``notes`` → ``notes.3`` (the extension is from the last dot)."""
    stem, dot, ext = leaf.rpartition(".")
    if not dot:
        return f"{leaf}.{version}"
    return f"{stem}.{version}.{ext}"


def version_of(leaf: str, base_leaf: str) -> int | None:
    """The version number if ``leaf`` is a version of ``base_leaf``, else None."""
    stem, dot, ext = base_leaf.rpartition(".")
    if not dot:
        prefix, suffix = base_leaf + ".", ""
    else:
        prefix, suffix = stem + ".", "." + ext
    if not (leaf.startswith(prefix) and leaf.endswith(suffix)):
        return None
    middle = leaf[len(prefix) : len(leaf) - len(suffix)] if suffix else leaf[len(prefix) :]
    if middle.isascii() and middle.isdigit() and not middle.startswith("0"):
        return int(middle)
    return None
