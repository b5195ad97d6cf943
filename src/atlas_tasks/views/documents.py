"""The JSON documents of ``--json`` and of the dashboard's ``/api/``: one builder each, so both say the same.

Their shapes are documented in docs/cli.md and are part of the stable interface (tests pin them byte for byte).
Nothing here imports rich, typer or starlette.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from atlas_tasks.errors import AtlasTasksError, CorruptLogError
    from atlas_tasks.models import Task, Workspace
    from atlas_tasks.store import LogLines
    from atlas_tasks.views.display import DisplayState


class Artifact(NamedTuple):
    """An artifact as the CLI reports it.

    Attributes:
        name: Its path relative to the task's ``artifacts/`` directory (``sdd/spec.md``).
        size: Its size in bytes, or ``None`` when it could not be read.
        step: The name of the step that produced it (from the step results that recorded it), or ``None``.
    """

    name: str
    size: int | None
    step: str | None = None


def dumps(document: Any, **layout: Any) -> bytes:
    """A JSON document as UTF-8 bytes (``layout``: ``indent``/``separators`` as for :func:`json.dumps`)."""
    try:
        return json.dumps(document, ensure_ascii=False, **layout).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (legal as a JSON escape in a stored file) has no UTF-8 form: keep it escaped.
        return json.dumps(document, ensure_ascii=True, **layout).encode("ascii")


# -- JSON documents (the stable shapes of docs/cli.md) --------------------------------------------------------------


def task_document(task: Task) -> dict[str, Any]:
    """The task's JSON document, exactly as the store writes it to ``task.json`` (same keys, order and values)."""
    from atlas_tasks._codec import encode_task

    # The codec, not model_dump: it is what defines the on-disk shape (Go's key spelling, omitted empty fields).
    document: dict[str, Any] = json.loads(encode_task(task))
    return document


def workspace_document(workspace: Workspace) -> dict[str, Any]:
    """The workspace's JSON document, exactly as the store writes it to ``workspace.json``."""
    from atlas_tasks._codec import encode_workspace

    document: dict[str, Any] = json.loads(encode_workspace(workspace))
    return document


def task_error_document(exc: AtlasTasksError) -> dict[str, Any]:
    """An unreadable task: ``{"task_id", "path", "reason", "error", "message"}``."""
    path = exc.context.get("path")
    task_id = exc.context.get("task_id") or _owner_name(path, "task.json")
    return _error_document(exc, {"task_id": task_id, "path": path})


def workspace_error_document(exc: AtlasTasksError) -> dict[str, Any]:
    """An unreadable workspace: ``{"workspace", "path", "reason", "error", "message"}``."""
    path = exc.context.get("path")
    name = exc.context.get("workspace") or exc.context.get("name") or _owner_name(path, "workspace.json")
    return _error_document(exc, {"workspace": name, "path": path})


def log_error_document(exc: CorruptLogError) -> dict[str, Any]:
    """A damaged log line: ``{"line", "path", "reason", "error", "message"}``."""
    return _error_document(exc, {"line": exc.line_number, "path": exc.path})


def _error_document(exc: AtlasTasksError, where: dict[str, Any]) -> dict[str, Any]:
    reason = exc.context.get("reason") or exc.message
    return {**where, "reason": reason, "error": type(exc).__name__, "message": exc.message}


def _owner_name(path: str | None, file_name: str) -> str | None:
    # A SchemaVersionError names only the file; the task id or workspace is its directory's name.
    if not path:
        return None
    pure = PurePosixPath(path)
    return pure.parent.name if pure.name == file_name else pure.name


def task_list_document(workspace: str, tasks: Sequence[Task], errors: Sequence[AtlasTasksError]) -> dict[str, Any]:
    """``list --json``: ``{"workspace", "tasks": [task document...], "errors": [task error...]}``."""
    return {
        "workspace": workspace,
        "tasks": [task_document(task) for task in tasks],
        "errors": [task_error_document(exc) for exc in errors],
    }


def workspace_list_document(
    workspaces: Sequence[Workspace],
    errors: Sequence[AtlasTasksError],
    task_counts: Sequence[int | None] | None = None,
) -> dict[str, Any]:
    """``workspace list --json``: ``{"workspaces": [workspace document...], "errors": [workspace error...],
    "task_counts": [n or null...]}`` (``task_counts`` parallel to ``workspaces``, see :func:`workspace_task_count`;
    left out when not given)."""
    document: dict[str, Any] = {
        "workspaces": [workspace_document(ws) for ws in workspaces],
        "errors": [workspace_error_document(exc) for exc in errors],
    }
    if task_counts is not None:
        document["task_counts"] = list(task_counts)
    return document


def workspace_task_count(store: Any, workspace: Workspace) -> int | None:
    """How many tasks a workspace holds, for ``workspace list``; None if its tasks directory cannot be read.

    A file store's workspace.json need not list every task (its default ``task_refs`` mode adds no ref on create,
    nor does the current Go ATLAS), so its task directories are counted: one directory read, no task.json opened.
    (A directory a crashed create left without its task.json counts too; ``doctor`` reports it.) The other stores'
    refs list every task.
    """
    import os

    from atlas_tasks.store.capabilities import LocalFiles

    if not isinstance(store, LocalFiles):
        return len(workspace.tasks)
    try:
        with os.scandir(store.workspace_path(workspace.name) / "tasks") as entries:
            return sum(1 for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return 0
    except OSError:
        return None


def artifact_documents(artifacts: Sequence[Artifact]) -> list[dict[str, Any]]:
    """Artifacts as ``[{"name", "size", "step"}...]``."""
    return [{"name": a.name, "size": a.size, "step": a.step} for a in artifacts]


def log_summary_document(log: LogLines) -> dict[str, Any]:
    """A log's counts: ``{"lines", "skipped", "torn_tail", "errors": [log error...]}``."""
    return {
        "lines": len(log),
        "skipped": log.skipped,
        "torn_tail": log.torn_tail,
        "errors": [log_error_document(exc) for exc in log.errors],
    }


def show_document(
    workspace: str,
    state: DisplayState,
    artifacts: Sequence[Artifact],
    log: LogLines,
    hook: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``show --json``: ``{"workspace", "task": task document, "artifacts": [...], "log": log summary, "crashed",
    "display_status", "runner", "lifecycle"}``, plus ``"go_hook"`` (see :func:`atlas_tasks.go_hooks.read_hook`)
    when the Go ATLAS keeps a hook for the task. ``lifecycle`` (:func:`atlas_tasks.lifecycle.document`) says what
    controls the run: a stop and its reason, cancel requests, deadlines, budgets and spend, lineage."""
    from atlas_tasks import lifecycle

    extra = {} if hook is None else {"go_hook": hook}
    return {
        **extra,
        "workspace": workspace,
        "task": task_document(state.task),
        "artifacts": artifact_documents(artifacts),
        "log": log_summary_document(log),
        "crashed": state.crashed,
        "display_status": state.label,
        "runner": state.holder,
        "lifecycle": lifecycle.document(state.task),
    }


def artifacts_document(workspace: str, task_id: str, artifacts: Sequence[Artifact]) -> dict[str, Any]:
    """``artifacts --json``: ``{"workspace", "task_id", "artifacts": [{"name", "size"}...]}``."""
    return {"workspace": workspace, "task_id": task_id, "artifacts": artifact_documents(artifacts)}


def with_steps(task: Task, artifacts: Sequence[Artifact]) -> list[Artifact]:
    """The artifacts, each labelled with the step that produced it.

    The step is taken from the task's step results: a step's result records the artifact it saved last
    (``artifact_path``), which is the one artifact every built-in executor saves. This costs no read (names and
    contents are not guessed from: ``validation.2.json`` may come from any validation step). An artifact no result
    refers to (saved by a step still in flight, or a second artifact of one step) has no step (``None``, ``-``).
    """
    producers: dict[str, str] = {}
    for result in task.step_results:
        if result.artifact_path:
            name = result.step_name or (
                task.steps[result.step_index].name if 0 <= result.step_index < len(task.steps) else ""
            )
            producers[result.artifact_path.removeprefix("artifacts/")] = name
    return [artifact._replace(step=producers.get(artifact.name, artifact.step)) for artifact in artifacts]


__all__ = [
    "Artifact",
    "artifact_documents",
    "artifacts_document",
    "dumps",
    "log_error_document",
    "log_summary_document",
    "show_document",
    "task_document",
    "task_error_document",
    "task_list_document",
    "with_steps",
    "workspace_document",
    "workspace_error_document",
    "workspace_list_document",
    "workspace_task_count",
]
