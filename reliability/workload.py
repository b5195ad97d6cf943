"""The operations the campaigns break, and the homes they start from.

``base`` holds one workspace ``w`` with three tasks: ``task-a`` (a log, two versions of ``validation.json`` and
``notes/plan.md``), ``task-b`` (no log, no artifacts) and ``task-d`` (to be deleted). ``dirty`` is ``base`` after
crashes: a NUL-filled torn log tail, a temp file, an incomplete creation, a parked delete and a stale ref.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from atlas_tasks import FileStore, Task
from atlas_tasks.models import Step, TaskConfig, TaskStatus

WS = "w"
Op = Callable[[FileStore, dict[str, Any]], object]


def task(**fields: Any) -> Task:
    """A realistic task without clock fields of its own (so runs at different times compare equal)."""
    base: dict[str, Any] = {
        "description": "fix the null pointer in the payment handler",
        "template": "bugfix",
        "status": TaskStatus.RUNNING,
        "steps": [Step(name="analyze", type="ai"), Step(name="validate", type="validation"), Step(name="commit")],
        "config": TaskConfig(model="claude-sonnet", max_turns=10),
        "metadata": {"branch": "fix/npe"},
    }
    base.update(fields)
    return Task(**base)


def make_base(home: Path) -> None:
    """Build the ``base`` home (see the module docstring)."""
    store = FileStore(home)
    store.create_workspace(WS)
    store.create(WS, task(id="task-a", description="A"))
    store.append_log(WS, "task-a", {"event": "start", "step": 0})
    store.append_log(WS, "task-a", {"event": "done", "step": 0})
    store.save_versioned_artifact(WS, "task-a", "validation.json", b'{"ok": false}')
    store.save_versioned_artifact(WS, "task-a", "validation.json", b'{"ok": true}')
    store.save_artifact(WS, "task-a", "notes/plan.md", b"# plan\n1. analyze\n")
    store.create(WS, task(id="task-b", description="B"))
    store.create(WS, task(id="task-d", description="D"))
    store.append_log(WS, "task-d", {"event": "start"})
    store.save_versioned_artifact(WS, "task-d", "validation.json", b"{}")


def make_dirty(home: Path) -> None:
    """Build ``base``, then plant what earlier crashes leave behind."""
    make_base(home)
    store = FileStore(home)
    tasks = home / "workspaces" / WS / "tasks"
    with (tasks / "task-a" / "task.log").open("ab") as log:
        log.write(b'{"event": "tor' + b"\0" * 40)
    (tasks / "task-a" / ".task.json.0123456789ab.tmp").write_bytes(b'{"half": ')
    (tasks / "task-x").mkdir(mode=0o750)
    trash = home / ".atlas-tasks" / "trash" / "w--task-z--00000000"
    trash.mkdir(parents=True, mode=0o700)
    (trash / "task.json").write_bytes(b"{}")
    store.create(WS, task(id="task-s", description="soon gone"))
    (tasks / "task-s").rename(trash.parent / "w--task-s--11111111")  # leaves a stale ref in workspace.json


def _set_description(text: str, task_id: str) -> Op:
    def op(store: FileStore, ctx: dict[str, Any]) -> object:
        current = store.get(WS, ctx.get(task_id, task_id))
        current.description = text
        return store.update(WS, current)

    return op


def _bump(store: FileStore, ctx: dict[str, Any]) -> object:
    return store.modify(WS, "task-a", lambda t: t.metadata.__setitem__("bumps", t.metadata.get("bumps", 0) + 1))


def _create(store: FileStore, ctx: dict[str, Any]) -> object:
    created = store.create(WS, task(description="new"))
    ctx["new"] = created.id
    return created


def _raise_first(failed: dict[str, Any]) -> None:
    """delete_many reports a task it could not delete in its result, not by raising: a caller that checks it (as the
    campaigns judge a call: raised means not acknowledged) raises the error it got."""
    if failed:
        raise next(iter(failed.values()))


def _on(task_id: str, fn: Callable[[FileStore, str], object]) -> Op:
    return lambda store, ctx: fn(store, ctx.get(task_id, task_id))


OPS: dict[str, Op] = {
    "create": _create,
    "create_explicit": lambda s, c: s.create(WS, task(id="task-n", description="N")),
    "create_workspace": lambda s, c: s.create_workspace("w2"),
    "update": _set_description("A2", "task-a"),
    "modify": _bump,
    "append_log": _on("task-a", lambda s, t: s.append_log(WS, t, {"event": "step", "step": 1})),
    "append_log_first": _on("task-b", lambda s, t: s.append_log(WS, t, {"event": "first"})),
    "save_artifact": _on("task-a", lambda s, t: s.save_artifact(WS, t, "notes/plan.md", b"# plan\n2. fix\n")),
    "save_versioned_artifact": _on(
        "task-a", lambda s, t: s.save_versioned_artifact(WS, t, "validation.json", b'{"ok": 3}')
    ),
    "save_versioned_first": _on(
        "task-b", lambda s, t: s.save_versioned_artifact(WS, t, "reports/out.json", b'{"first": 1}')
    ),
    "delete": _on("task-d", lambda s, t: s.delete(WS, t)),
    "delete_many": _on("task-d", lambda s, t: _raise_first(s.delete_many(WS, [t]))),
    "set_workspace_status": lambda s, c: s.set_workspace_status(WS, "paused"),
    "check_fix": lambda s, c: s.check(fix=True),
}

# Which starting home each operation is run on (the doctor and the torn-tail cut need leftovers to work on).
BASES: dict[str, Callable[[Path], None]] = {"base": make_base, "dirty": make_dirty}
OP_BASE: dict[str, str] = dict.fromkeys(OPS, "base") | {"check_fix": "dirty", "append_log_torn": "dirty"}
OPS["append_log_torn"] = OPS["append_log"]

# The operations the issue names, for the fast subset.
CORE_OPS = ("create", "update", "append_log", "save_versioned_artifact", "delete")
