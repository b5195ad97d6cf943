"""What ``atlas-tasks list`` showed of each task, kept so that the next ``list`` can start without pydantic.

A cold ``atlas-tasks list`` spent most of its time importing pydantic and building the models' schemas (~120 ms of
~300 ms) to decode task.json files whose bytes had not changed since the previous listing. This cache remembers,
per task, the few values the table shows (id, status, template, description, step progress, times, the flags the
crash check needs), taken from the fully validated :class:`~atlas_tasks.models.Task` that the full ``list``
decoded, with the *stamp* of the task.json they came from (see :mod:`atlas_tasks.backends._file_light`). task.json
only ever changes by rename (ours and the Go ATLAS's), so an unchanged stamp means unchanged bytes, which decode to
the same values. :mod:`atlas_tasks.cli._fast` answers ``list`` from it only when *every* entry of the workspace's
``tasks/`` has an entry with its current stamp; anything else (a new, changed, unreadable or odd entry) makes it
hand the command to the full CLI, which reads everything and refreshes the cache. So the cache can make ``list``
faster, never different.

The full ``list`` cannot learn the stamp from the very descriptor the store read the bytes through (that would take
a change in the store), so it takes every task.json's stamp before the listing and again after it, and caches only
the tasks whose stamps were equal both times: the bytes read in between are then the bytes of that stamp.

Unreadable tasks are never cached (the full ``list`` reports them, with its warnings, every time). For ``list``
without a workspace, the entries of ``workspaces/`` are cached with the stamp of each workspace.json and whether
the full listing took it as a workspace (one it cannot read is left out of ``list`` silently, by both paths).

Files (the file store's home): ``.atlas-tasks/cli-list/<ws>.cache`` per workspace and
``.atlas-tasks/cli-list/@.cache`` for the workspaces (``@`` starts no valid workspace name); see
:func:`atlas_tasks.backends._file_light.load_cache` for their format. Delete them at any time.
"""

from __future__ import annotations

from atlas_tasks.backends import _file_light as files

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the fast path's start-up)
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

    from atlas_tasks.models import Task

#: The format of the cache files; a file of another version is ignored (and rewritten by the next full list).
VERSION = 1
#: The cache file of the workspaces entry (``@`` starts no valid workspace name).
WORKSPACES_ENTRY = "@"


def row_of(task: Task) -> dict[str, Any]:
    """What ``list`` shows of a fully decoded task, and what its crash check needs, as JSON values."""
    from atlas_tasks.runs import ready_to_continue

    current = task.current
    return {
        "id": task.id,
        "status": str(task.status),
        "template": task.template,
        "description": task.description,
        "current_step": task.current_step,
        "steps": len(task.steps),
        "current": current.name if current is not None else None,
        "created": task.created_at.isoformat() if task.created_at is not None else None,
        "updated": task.updated_at.isoformat() if task.updated_at is not None else None,
        "fork_incomplete": bool(task.metadata.get("fork_incomplete")),
        "go": task.key_style == "go",
        "ready": ready_to_continue(task),
    }


def load(home: str, name: str) -> dict[str, Any] | None:
    """The cached entries of workspace ``name`` (or of :data:`WORKSPACES_ENTRY`); None without a usable file.

    A workspace's file exists only once a full ``list`` has listed that workspace, which checked its name: the fast
    path takes its existence as that check.
    """
    return files.load_cache(home, name, VERSION)


def remember_tasks(home: str, workspace: str, before: Mapping[str, Any], tasks: Iterable[Task]) -> None:
    """Cache the rows of ``tasks`` (just listed from ``workspace``) whose task.json kept its stamp throughout.

    ``before`` are the stamps taken before the listing (:func:`atlas_tasks.backends._file_light.task_stamps`).
    Entries learnt earlier stay while their stamps hold (``list -n 5`` learns 5 tasks and keeps the others').
    """
    after = files.task_stamps(home, workspace)
    old = load(home, workspace)
    entries: dict[str, Any] = {}
    for name, stamp in after.items():
        known = old.get(name) if old is not None else None
        if stamp is not None and isinstance(known, dict) and known.get("stamp") == stamp:
            entries[name] = known
    for task in tasks:
        stamp = after.get(task.id)
        # Kept above: the same stamp, so the same bytes and the same row (and no need to build it again).
        if stamp is not None and task.id not in entries and before.get(task.id) == stamp:
            entries[task.id] = {"stamp": stamp, **row_of(task)}
    if entries != old:
        files.save_cache(home, workspace, VERSION, entries)


def remember_workspaces(home: str, before: Mapping[str, Any], listed: Sequence[str]) -> None:
    """Cache which entries of ``workspaces/`` the full listing took as workspaces (``listed``, by name).

    Kept only when no entry changed during the listing, and only when the listing named each workspace by its own
    directory, once, in name order (the store's way); an entry it did not take is cached as such.
    """
    after = files.workspace_stamps(home)
    if after != before or any(stamp is None for stamp in after.values()):
        return
    shown = set(listed)
    if list(listed) != sorted(name for name in after if name in shown) or len(shown) != len(listed):
        return
    entries = {name: {"stamp": stamp, "listed": name in shown} for name, stamp in after.items()}
    if entries != load(home, WORKSPACES_ENTRY):
        files.save_cache(home, WORKSPACES_ENTRY, VERSION, entries)


__all__ = ["VERSION", "WORKSPACES_ENTRY", "load", "remember_tasks", "remember_workspaces", "row_of"]
