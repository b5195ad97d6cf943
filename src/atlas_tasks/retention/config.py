"""Retention settings from configuration files: how long ``gc`` keeps finished tasks of each status.

Two sets of keys are read from one YAML file, by default the Go ATLAS's global configuration
``<Go home>/config.yaml`` (``~/.atlas/config.yaml``; ``$ATLAS_HOME/config.yaml`` when that is set):

* the Go tool's own ``hooks.retention.completed``, ``.failed`` and ``.abandoned`` (Go durations: ``720h``,
  ``168h``, ``1h30m``). Go's ``failed`` is the end of a run that failed: our ``validation_failed``, ``gh_failed``,
  ``ci_failed`` and ``ci_timeout`` (an ``interrupted`` task is one to resume, so Go's key does not cover it);
* atlas-tasks' section ``retention:``, which the Go tool ignores: ``completed``, ``rejected``, ``abandoned``,
  ``failed`` (the four statuses above), ``interrupted`` and each failure status by name, as ages (``30d``, ``720h``,
  ``2w``), and ``keep_last`` (a count). A key here wins over the Go key for the same statuses.

Only keys that are present count: the Go tool's built-in defaults are not applied (an empty file collects nothing).
Unknown keys are ignored (the Go tool keeps many others in this file). Command-line options win over both.

``compact``'s defaults are under ``retention.compact``: ``keep_versions`` (a whole number, 1 or more) and
``max_log_size`` (bytes, or a size such as ``512K``, ``10M``, ``1G``), read by :func:`load_compact_settings`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from atlas_tasks.errors import ConfigError
from atlas_tasks.transitions import ERROR_STATUSES, TERMINAL_STATUSES

#: Go's ``failed`` hook state, as our statuses: a run that ended in a failure (not an interruption to resume).
FAILED = ("ci_failed", "ci_timeout", "gh_failed", "validation_failed")
#: The Go tool's keys: key under ``hooks.retention`` -> the statuses it sets.
GO_KEYS: dict[str, tuple[str, ...]] = {"completed": ("completed",), "failed": FAILED, "abandoned": ("abandoned",)}
#: Our keys under ``retention``: key -> the statuses it sets (every collectable status by its own name too).
OWN_KEYS: dict[str, tuple[str, ...]] = {
    "completed": ("completed",),
    "rejected": ("rejected",),
    "abandoned": ("abandoned",),
    "failed": FAILED,
    **{str(s): (str(s),) for s in sorted(ERROR_STATUSES | TERMINAL_STATUSES, key=str)},
}

_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}


def parse_age(text: str) -> timedelta:
    """A Go duration (``720h``, ``1h30m``, ``90s``), also with ``d`` (days) and ``w`` (weeks): a positive timedelta.

    Raises:
        ValueError: not such a duration, or not positive.
    """
    text = text.strip()
    pos, seconds = 0, 0.0
    while pos < len(text):
        match = _GO_PART.match(text, pos)
        if match is None:
            raise ValueError(f"{text!r} is not a duration such as 720h, 1h30m, 30d or 2w")
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration such as 720h, 1h30m, 30d or 2w")
    return timedelta(seconds=seconds)


@dataclass
class RetentionPolicy:
    """Ages by status and ``keep_last``, with where each setting came from (``file: key``)."""

    ages: dict[str, timedelta] = field(default_factory=dict)
    keep_last: int | None = None
    sources: dict[str, str] = field(default_factory=dict)
    path: str = ""

    @property
    def empty(self) -> bool:
        """No setting at all (a missing file, or one without retention keys)."""
        return not self.ages and self.keep_last is None

    def document(self) -> dict[str, Any]:
        """The policy as ``gc --json`` reports it."""
        return {
            "path": self.path,
            "ages_seconds": {status: age.total_seconds() for status, age in sorted(self.ages.items())},
            "keep_last": self.keep_last,
            "sources": dict(sorted(self.sources.items())),
        }


def default_path() -> Path:
    """The Go ATLAS's global configuration file: ``$ATLAS_HOME/config.yaml``, else ``~/.atlas/config.yaml``."""
    home = os.environ.get("ATLAS_HOME") or "~/.atlas"
    return Path(home).expanduser() / "config.yaml"


def _read_document(where: Path, *, required: bool) -> Mapping[str, Any] | None:
    """The YAML mapping in ``where``; None for a missing (unless ``required``) or empty file. Raises ConfigError."""
    try:
        raw = where.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(str(where), "no such file") from None
        return None
    except OSError as exc:
        raise ConfigError(str(where), f"cannot be read: {exc.strerror or exc}") from None
    import yaml

    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(str(where), f"is not valid YAML: {str(exc).splitlines()[0]}") from None
    if doc is None:
        return None
    if not isinstance(doc, Mapping):
        raise ConfigError(str(where), "must be a YAML mapping (key: value) at the top level")
    return doc


def load_policy(path: str | os.PathLike[str] | None = None, *, required: bool = False) -> RetentionPolicy:
    """The retention settings in ``path`` (default :func:`default_path`); an empty policy when there is no file.

    Raises:
        ConfigError: the file cannot be read or parsed, or a retention key has a bad value; with ``required``,
            also a missing file.
    """
    where = Path(path) if path is not None else default_path()
    policy = RetentionPolicy(path=str(where))
    doc = _read_document(where, required=required)
    if doc is None:
        return policy
    hooks = doc.get("hooks")
    go = hooks.get("retention") if isinstance(hooks, Mapping) else None
    _apply(policy, where, go, GO_KEYS, "hooks.retention")
    own = doc.get("retention")
    _apply(policy, where, own, OWN_KEYS, "retention")
    if isinstance(own, Mapping) and "keep_last" in own:
        value = own["keep_last"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(str(where), f"must be a whole number, 0 or more (got {value!r})", "retention.keep_last")
        policy.keep_last = value
        policy.sources["keep_last"] = f"{where}: retention.keep_last"
    return policy


def _apply(
    policy: RetentionPolicy, where: Path, section: object, keys: Mapping[str, tuple[str, ...]], prefix: str
) -> None:
    if section is None:
        return
    if not isinstance(section, Mapping):
        raise ConfigError(str(where), "must be a mapping of status: age", prefix)
    # Broad keys first, so a status's own key (retention.ci_failed) wins over a group (retention.failed).
    for key in sorted((k for k in section if k in keys), key=lambda k: -len(keys[k])):
        value = section[key]
        if value is None:
            continue
        try:
            age = parse_age(str(value))
        except ValueError as exc:
            raise ConfigError(str(where), str(exc), f"{prefix}.{key}") from None
        for status in keys[key]:
            policy.ages[status] = age
            policy.sources[status] = f"{where}: {prefix}.{key}"


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2}
_SIZE_UNITS.update({"g": 1024**3, "gb": 1024**3, "gib": 1024**3})
_SIZE = re.compile(r"\s*([0-9]+)\s*([a-zA-Z]*)\s*")


def parse_size(text: str) -> int:
    """``10MiB``, ``512k``, ``4096``: a size in bytes (units are powers of 1024). Raises ValueError."""
    match = _SIZE.fullmatch(text)
    unit = match[2].lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size: write bytes, or a number with K, M or G (e.g. 10M, 512KiB)")
    value = int(match[1]) * _SIZE_UNITS[unit]
    if value < 1:
        raise ValueError("must be at least 1 byte")
    return value


@dataclass
class CompactSettings:
    """``compact``'s defaults from a file (None: not set there), with where each came from (``file: key``)."""

    keep_versions: int | None = None
    max_log_bytes: int | None = None
    sources: dict[str, str] = field(default_factory=dict)
    path: str = ""


def load_compact_settings(path: str | os.PathLike[str] | None = None, *, required: bool = False) -> CompactSettings:
    """``retention.compact.keep_versions`` and ``.max_log_size`` in ``path`` (default :func:`default_path`).

    Raises:
        ConfigError: the file cannot be read or parsed, or one of these keys has a bad value; with ``required``,
            also a missing file.
    """
    where = Path(path) if path is not None else default_path()
    settings = CompactSettings(path=str(where))
    doc = _read_document(where, required=required)
    own = doc.get("retention") if doc is not None else None
    section = own.get("compact") if isinstance(own, Mapping) else None
    if section is None:
        return settings
    if not isinstance(section, Mapping):
        raise ConfigError(str(where), "must be a mapping (keep_versions, max_log_size)", "retention.compact")
    value = section.get("keep_versions")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                str(where), f"must be a whole number, 1 or more (got {value!r})", "retention.compact.keep_versions"
            )
        settings.keep_versions = value
        settings.sources["keep_versions"] = f"{where}: retention.compact.keep_versions"
    value = section.get("max_log_size")
    if value is not None:
        try:
            if isinstance(value, bool):
                raise ValueError(f"{value!r} is not a size: write bytes, or a number with K, M or G (e.g. 10M)")
            settings.max_log_bytes = parse_size(str(value))
        except ValueError as exc:
            raise ConfigError(str(where), str(exc), "retention.compact.max_log_size") from None
        settings.sources["max_log_bytes"] = f"{where}: retention.compact.max_log_size"
    return settings


__all__ = [
    "FAILED",
    "GO_KEYS",
    "OWN_KEYS",
    "CompactSettings",
    "RetentionPolicy",
    "default_path",
    "load_compact_settings",
    "load_policy",
    "parse_age",
    "parse_size",
]
