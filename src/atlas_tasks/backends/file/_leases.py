"""Run leases: ``.atlas-tasks/leases/<ws>/<id>.lease``, an flock held by the live runner, its holder inside.

A runner creates its lease file before it moves the task to running, and the file is never removed, so a running
task without one has no live runner. A task the Go ATLAS daemon of the Go home reports as running counts as held.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from atlas_tasks import go_daemon
from atlas_tasks._fs import locks, ops
from atlas_tasks.backends.file._layout import Layout
from atlas_tasks.errors import TaskRunningError


def acquire(layout: Layout, go_home: Path, workspace: str, task_id: str, holder: Mapping[str, Any]) -> locks.Lease:
    """Take the task's run lease. Raises TaskRunningError naming the live runner (or the Go daemon)."""
    daemon = go_daemon.running_holder(go_home, task_id)
    if daemon is not None:
        raise TaskRunningError(workspace, task_id, daemon)
    with layout.private_dir("leases", workspace, create=True) as lease_dir:
        path, data = lease_dir.child(f"{task_id}.lease"), json.dumps(dict(holder), default=str).encode()
        lease = locks.try_lease(path, data, dir_fd=lease_dir.fd)
    if lease is None:
        raise TaskRunningError(workspace, task_id, holder_of(layout, go_home, workspace, task_id) or {})
    return lease


def holder_of(layout: Layout, go_home: Path, workspace: str, task_id: str) -> dict[str, Any] | None:
    """Who holds the task's run lease (the holder it was taken with), or None when no live runner does."""
    try:
        lease_dir = layout.private_dir("leases", workspace, create=False)
    except FileNotFoundError:
        return go_daemon.running_holder(go_home, task_id)
    with lease_dir:
        raw = locks.lease_holder(lease_dir.child(f"{task_id}.lease"), dir_fd=lease_dir.fd)
    if raw is None:
        return go_daemon.running_holder(go_home, task_id)
    try:
        holder = json.loads(raw)
    except (ValueError, RecursionError):
        return {}  # held, but the holder is still writing its description (or wrote nonsense)
    return holder if isinstance(holder, dict) else {}


def candidates(layout: Layout, workspace: str) -> builtins.set[str]:
    """The ids of the workspace's tasks that have a lease file at all: one directory listing."""
    try:
        lease_dir = layout.private_dir("leases", workspace, create=False)
    except FileNotFoundError:
        return set()
    with lease_dir:
        return {
            e.name[: -len(".lease")] for e in ops.scandir(lease_dir.fd, lease_dir.path) if e.name.endswith(".lease")
        }


__all__ = ["acquire", "candidates", "holder_of"]
