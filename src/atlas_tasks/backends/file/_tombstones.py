"""Tombstones: ``.atlas-tasks/tombstones/<ws>/<id>.json``, one small file per deleted task id.

Written (atomically, the directory fsynced) under the task's write lock before ``delete`` renames the task into the
trash, so a crash in between leaves the tombstone and the whole task. ``create`` reserves an id by mkdir and only
then looks for its tombstone: a delete that removed the directory had written the tombstone first, so no creator
can slip in between. The Go ATLAS never reads these files.
"""

from __future__ import annotations

import builtins
import json
import os
import signal

from atlas_tasks._fs import atomic, ops
from atlas_tasks._fs.dirs import Dir
from atlas_tasks.backends.file._layout import Layout, exists
from atlas_tasks.store.types import Tombstone

KIND = "tombstones"
SUFFIX = ".json"

# Test-only crash injection: ATLAS_TASKS_DELETE_CRASH=tombstoned makes delete SIGKILL its own process right after
# the tombstone is durable and before the task is moved away, the one window a delete has.
CRASH_ENV = "ATLAS_TASKS_DELETE_CRASH"


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def record(layout: Layout, stone: Tombstone) -> None:
    """Write the tombstone durably (replacing an older one of the same id: the last deletion wins)."""
    with layout.private_dir(KIND, stone.workspace, create=True) as d:
        record_in(d, stone)


def record_in(d: Dir, stone: Tombstone, *, sync_dir: bool = True) -> None:
    """Write the tombstone into its workspace's open tombstone directory ``d``; ``sync_dir=False``: the caller
    fsyncs ``d`` once for several tombstones, before anything that relies on them."""
    data = json.dumps(stone.to_dict(), sort_keys=True, separators=(",", ":")).encode() + b"\n"
    atomic.replace(d, stone.id + SUFFIX, data, sync_dir=sync_dir)


def is_retired(layout: Layout, workspace: str, task_id: str) -> bool:
    """Whether the id has a tombstone (a cheap stat; a damaged tombstone still retires its id)."""
    try:
        d = layout.private_dir(KIND, workspace, create=False)
    except FileNotFoundError:
        return False
    with d:
        return exists(d, task_id + SUFFIX)


def get(layout: Layout, workspace: str, task_id: str) -> Tombstone | None:
    """The id's tombstone, or None. A damaged file still counts: its id stays retired, with what can be read."""
    try:
        d = layout.private_dir(KIND, workspace, create=False)
    except FileNotFoundError:
        return None
    with d:
        try:
            raw = atomic.read(d, task_id + SUFFIX)
        except FileNotFoundError:
            return None
    return _decode(raw, workspace, task_id)


def list_all(layout: Layout, workspace: str) -> builtins.list[Tombstone]:
    """Every tombstone of the workspace, in directory order."""
    try:
        d = layout.private_dir(KIND, workspace, create=False)
    except FileNotFoundError:
        return []
    found: builtins.list[Tombstone] = []
    with d:
        for entry in ops.list_dir(d.fd, d.path):
            if not entry.name.endswith(SUFFIX) or atomic.is_temp_name(entry.name):
                continue
            try:
                raw = atomic.read(d, entry.name)
            except FileNotFoundError:
                continue  # lifted meanwhile (a restore)
            found.append(_decode(raw, workspace, entry.name[: -len(SUFFIX)]))
    return found


def lift(layout: Layout, workspace: str, task_id: str) -> None:
    """Remove the id's tombstone durably (the deleted task is being restored); nothing if there is none."""
    try:
        d = layout.private_dir(KIND, workspace, create=False)
    except FileNotFoundError:
        return
    with d:
        try:
            ops.unlink(task_id + SUFFIX, d.fd, d.child(task_id + SUFFIX))
        except FileNotFoundError:
            return
        ops.fsync(d.fd, d.path)


def _decode(raw: bytes, workspace: str, task_id: str) -> Tombstone:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        doc = {}
    info = doc.get("info")
    return Tombstone(
        workspace=workspace,
        id=task_id,
        deleted_at=str(doc.get("deleted_at") or ""),
        created_at=str(doc.get("created_at") or ""),
        info=info if isinstance(info, dict) else {},
    )


__all__ = ["CRASH_ENV", "crash_point", "get", "is_retired", "lift", "list_all", "record"]
