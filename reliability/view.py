"""The logical content of a store (a *view*), read through the real reader, and the leftovers a crash can leave.

A view holds what a user of the store can observe: workspaces, tasks (without their clock fields), log records
(without their timestamps) and artifact digests. Comparing views answers "is this the old state or the new one",
and the difference between two views counts the acknowledged items that were lost.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from atlas_tasks import FileStore
from atlas_tasks._fs import atomic
from atlas_tasks.errors import IncompleteTaskError

View = dict[str, Any]
# Fields whose value depends on the clock of the run: excluded so that two runs of one operation compare equal.
VOLATILE = frozenset({"created_at", "updated_at", "completed_at", "ts", "timestamp", "started_at"})
NEW_ID = "<new>"


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def take_view(store: FileStore, known_ids: Iterable[str] | None = None) -> View:
    """The observable content of ``store``; task ids outside ``known_ids`` (if given) become ``<new>``."""
    known = None if known_ids is None else set(known_ids)
    view: View = {"workspaces": {}, "tasks": {}, "unreadable": []}
    listing = store.list_workspaces()
    view["unreadable"] += [str(e) for e in listing.errors]
    for ws in listing:
        view["workspaces"][ws.name] = _strip(ws.model_dump(mode="json", exclude={"tasks"}))
        tasks = store.list(ws.name)
        # An incomplete creation was never acknowledged: not data (the doctor reports it; invariants check that).
        view["unreadable"] += [str(e) for e in tasks.errors if not isinstance(e, IncompleteTaskError)]
        for task in tasks:
            key = f"{ws.name}/{task.id if known is None or task.id in known else NEW_ID}"
            view["tasks"][key] = _task_view(store, ws.name, task.id, task.model_dump(mode="json"), known)
    return view


def _task_view(store: FileStore, ws: str, task_id: str, dump: dict[str, Any], known: set[str] | None) -> View:
    if known is not None and task_id not in known:
        dump["id"] = NEW_ID
    log = store.read_log(ws, task_id)
    artifacts = {
        name: hashlib.sha256(store.get_artifact(ws, task_id, name)).hexdigest()[:16]
        for name in store.list_artifacts(ws, task_id)
    }
    return {"task": _strip(dump), "log": [_strip(r) for r in log], "artifacts": artifacts}


def items(view: View) -> set[str]:
    """The view as a set of acknowledged items (workspaces, task states, log lines, artifacts), for counting losses."""
    out = {f"workspace {name}" for name in view["workspaces"]}
    for key, task in view["tasks"].items():
        out.add(f"task {key} {json.dumps(task['task'], sort_keys=True)}")
        out.update(f"log {key} #{i} {json.dumps(r, sort_keys=True)}" for i, r in enumerate(task["log"]))
        out.update(f"artifact {key} {name} {sha}" for name, sha in task["artifacts"].items())
    return out


def lost_items(acked: View, found: View, in_flight: View | None = None) -> int:
    """Acknowledged items missing from ``found``, not counting those the in-flight operation replaces or removes."""
    before = items(acked)
    replaced = before - items(in_flight) if in_flight is not None else set()
    return len(before - items(found) - replaced)


def diff(a: View, b: View) -> str:
    """A short description of how two views differ (for violation examples)."""
    ia, ib = items(a), items(b)
    gone = [i[:90] for i in sorted(ia - ib)[:2]]
    new = [i[:90] for i in sorted(ib - ia)[:2]]
    return f"missing {gone} / unexpected {new}"


def canonical(view: View) -> str:
    return json.dumps(view, sort_keys=True)


def leftovers(home: Path) -> set[str]:
    """What a crash can leave behind, found without the store: temp files, incomplete task directories, parked
    deletes and torn log tails (paths relative to ``home``). The doctor must report every one of them."""
    found: set[str] = set()
    for root, dirs, files in os.walk(home):
        rel = os.path.relpath(root, home)
        if rel.startswith(".atlas-tasks/locks"):
            continue
        found.update(_rel(rel, f) for f in files if atomic.is_temp_name(f))
        if rel == ".atlas-tasks/trash":
            found.update(_rel(rel, d) for d in dirs + files)
            dirs[:] = []
        elif _is_tasks_dir(rel):
            found.update(
                _rel(rel, d) for d in dirs if not d.startswith(".") and not (Path(root, d, "task.json")).exists()
            )
        elif _is_task_dir(rel) and "task.log" in files and _torn(Path(root, "task.log")):
            found.add(_rel(rel, "task.log"))
    return found


def _rel(root: str, name: str) -> str:
    return name if root == "." else f"{root}/{name}"


def _is_tasks_dir(rel: str) -> bool:
    parts = Path(rel).parts
    return len(parts) == 3 and parts[0] == "workspaces" and parts[2] == "tasks"


def _is_task_dir(rel: str) -> bool:
    parts = Path(rel).parts
    return len(parts) == 4 and parts[0] == "workspaces" and parts[2] == "tasks"


def _torn(log: Path) -> bool:
    """True if the log's last line is incomplete or not an intact JSON object (what a crashed append leaves)."""
    raw = log.read_bytes()
    if not raw:
        return False
    if not raw.endswith(b"\n"):
        return True
    last = raw[:-1].rsplit(b"\n", 1)[-1]
    try:
        return not isinstance(json.loads(last), dict)
    except ValueError:
        return True


def tree_digest(root: Path, skip: str | None = None) -> dict[str, str]:
    """Every path under ``root`` (except the ``skip`` subtree) with a digest of its content or link target."""
    out: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if skip is not None and rel == skip:
            dirs[:] = []
            continue
        for name in dirs + files:
            path = Path(dirpath, name)
            key = _rel(rel, name)
            if skip is not None and key == skip:
                continue
            if path.is_symlink():
                out[key] = f"-> {path.readlink()}"
            elif path.is_file():
                out[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            else:
                out[key] = "dir"
    return out
