"""The Go ATLAS's crash-recovery hook files, read (never written) so atlas-tasks can show them.

The Go engine's hook manager keeps ``hook.json``, ``HOOK.md`` (a note regenerated from hook.json) and
``hook.json.lock`` in ``<home>/workspaces/<ws>/tasks/<id>/`` of the **legacy** tree, even for a task stored under
``<home>/repos/<key>/``. A task directory there may therefore hold hook files and no ``task.json``: that is not a
damaged task, and it is not ours to change. atlas-tasks reads hook.json only (a summary for ``show`` and the
dashboard), through the same symlink-free walk as the store, and never rewrites or locks a Go hook.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic_core import from_json

from atlas_tasks import names as N
from atlas_tasks._fs import ops
from atlas_tasks._fs.dirs import UnsafePathError, open_home, walk

HOOK_FILE = "hook.json"
#: The files the Go hook manager writes into a task directory (its temp files are ``.tmp-*``).
HOOK_FILES = frozenset({HOOK_FILE, "HOOK.md", "hook.json.lock"})
#: A hook.json larger than this is not read (Go caps its history at 200 entries and checkpoints at 50).
MAX_HOOK_BYTES = 16 << 20
#: How many of the newest checkpoints a summary keeps.
CHECKPOINTS_SHOWN = 5


def is_hook_only(names: Iterable[str]) -> bool:
    """Whether a task directory's entries are the Go hook manager's files and nothing else (and not none)."""
    seen = False
    for name in names:
        if name in HOOK_FILES or name.startswith(".tmp-"):
            seen = seen or name in HOOK_FILES
            continue
        return False
    return seen


def read_hook(home: str | os.PathLike[str], workspace: str, task_id: str) -> dict[str, Any] | None:
    """A summary of the Go hook of a task, or None when there is none.

    Args:
        home: the Go home that holds the legacy ``workspaces/`` tree (for a repo-scoped store, the home above
            ``repos/``).
        workspace: the workspace's name.
        task_id: the task's id.

    Returns:
        ``{"path", "state", "updated_at", "current_step", "recovery", "checkpoints", "checkpoint_count"}`` from
        hook.json (values as Go wrote them; the newest checkpoints only), or ``{"path", "error"}`` when the file is
        there but cannot be used (not a regular file, too large, not JSON). Never raises for a damaged hook.
    """
    N.check_workspace_name(workspace)
    N.check_task_id(task_id)
    path = f"{Path(home)}/workspaces/{workspace}/tasks/{task_id}/{HOOK_FILE}"
    try:
        raw = _read(str(home), workspace, task_id, path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"path": path, "error": str(exc)}
    try:
        doc = from_json(raw)
    except ValueError as exc:
        return {"path": path, "error": f"not valid JSON ({exc})"}
    if not isinstance(doc, dict):
        return {"path": path, "error": "not a JSON object"}
    found = doc.get("checkpoints")
    checkpoints: list[Any] = found if isinstance(found, list) else []
    return {
        "path": path,
        "state": doc.get("state"),
        "updated_at": doc.get("updated_at"),
        "current_step": doc.get("current_step"),
        "recovery": doc.get("recovery"),
        "checkpoints": checkpoints[-CHECKPOINTS_SHOWN:],
        "checkpoint_count": len(checkpoints),
    }


def describe(hook: dict[str, Any]) -> str:
    """One line about the Go ATLAS's hook of a task: its state, step, recovery advice and newest checkpoint."""
    if hook.get("error"):
        return f"{hook['path']}: cannot be read ({hook['error']})"
    parts = [f"state {hook.get('state') or '?'}"]
    step = hook.get("current_step")
    if isinstance(step, dict) and step.get("step_name"):
        parts.append(f"step {step['step_name']} (attempt {step.get('attempt', '?')})")
    recovery = hook.get("recovery")
    if isinstance(recovery, dict) and recovery.get("recommended_action"):
        why = f": {recovery['reason']}" if recovery.get("reason") else ""
        parts.append(f"recovery {recovery['recommended_action']}{why}")
    checkpoints = hook.get("checkpoints") or []
    if checkpoints and isinstance(checkpoints[-1], dict):
        newest = checkpoints[-1]
        commit = str(newest.get("git_commit") or "")[:12]
        parts.append(
            f"{hook.get('checkpoint_count', len(checkpoints))} checkpoint(s), newest {newest.get('checkpoint_id', '?')}"
            + (f" at commit {commit}" if commit else "")
        )
    return "; ".join(str(p) for p in parts) + f" ({hook['path']})"


def hook_for(store: object, workspace: str, task_id: str) -> dict[str, Any] | None:
    """The hook of a task of ``store``: read from its Go home (a store of local files); None for other stores."""
    from atlas_tasks.store.capabilities import LocalFiles

    return read_hook(store.go_home, workspace, task_id) if isinstance(store, LocalFiles) else None


def _read(home: str, workspace: str, task_id: str, path: str) -> bytes:
    with open_home(home, create=False) as root, walk(root, ["workspaces", workspace, "tasks", task_id]) as d:
        try:
            fd = ops.open_file(HOOK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, d.fd, path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePathError(exc.errno, "hook.json is a symlink", path) from None
            raise
        try:
            info = ops.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ValueError(f"{path} is not a regular file")
            if info.st_size > MAX_HOOK_BYTES:
                raise ValueError(f"{path} is {info.st_size} bytes, more than the {MAX_HOOK_BYTES} read")
            return ops.pread(fd, MAX_HOOK_BYTES + 1, 0, path)
        finally:
            ops.close(fd)


__all__ = [
    "CHECKPOINTS_SHOWN",
    "HOOK_FILE",
    "HOOK_FILES",
    "MAX_HOOK_BYTES",
    "describe",
    "hook_for",
    "is_hook_only",
    "read_hook",
]
