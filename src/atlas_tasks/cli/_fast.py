"""The fast path of the commands people run most: ``atlas-tasks list`` (and ``--version``) without typer or pydantic.

A cold ``atlas-tasks list`` used to import typer, click, pydantic, the models and the file store before reading a
single task (~200 ms of ~300 ms). :func:`run` handles the common form of ``list`` on its own: it parses the command
line itself, answers from :mod:`atlas_tasks.cli._listcache` (the values the previous full ``list`` decoded, checked
against every task.json's current stamp) and renders with the very functions the full command uses
(:func:`atlas_tasks.cli._render.print_task_list`), so the output is the same, byte for byte.

It answers only when it is sure to say what the full command would say. Anything else returns None and the full
CLI runs (nothing has been written by then): ``--help``, an option or form it does not know, a usage error, a
store other than a file store named by ``--home``/``$ATLAS_HOME``/``~/.atlas``, the store of the current git
repository, a missing home or workspace, ``--json``, any task or workspace entry that is new, changed, unreadable
or odd since the last full listing, a running task with a lease file (its runner must be probed), shell completion.
The full command then refreshes the cache, so the next ``list`` is fast again.

Nothing here imports typer, click, pydantic or the store; rich is imported by the renderer only when rows are
printed.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (~4 ms) on the start-up path
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

#: The options of ``list`` handled here that take a value, by every spelling; and the flags.
_LIST_VALUE_OPTIONS = {"--limit": "limit", "-n": "limit", "--status": "status", "-s": "status"}
_LIST_FLAGS = {"--all-workspaces": "all", "-a": "all"}
_ACTIVE = ("running", "validating")
# As atlas_tasks.runs.GO_STALE_AFTER: a Go task counts as crashed only after five minutes without a write.
_GO_STALE_AFTER = timedelta(minutes=5)
_OLDEST = datetime.min.replace(tzinfo=UTC)
_CRASHED_LABEL = "interrupted (crashed)"  # atlas_tasks.views.display.CRASHED_LABEL


class _Fallback(Exception):
    """The full CLI must answer (raised before anything is written)."""


def run(argv: Sequence[str]) -> int | None:
    """Run ``argv`` (without the program name) here if it is a form this module handles; its exit code, else None."""
    if any(key.startswith("_") and key.endswith("_COMPLETE") for key in os.environ):
        return None  # shell completion: click's business
    if list(argv) == ["--version"]:
        from atlas_tasks import __version__

        sys.stdout.write(f"atlas-tasks {__version__}\n")
        sys.stdout.flush()
        return 0
    try:
        home, rest = _global_options(argv)
        if not rest or rest[0] not in ("list", "ls"):
            return None
        request = _list_options(rest[1:])
        plan = _plan(_home(home), request)
    except _Fallback:
        return None
    try:
        _print(plan)
    except BrokenPipeError:
        # As click does (typer.core._main): the reader went away, say nothing more, exit code 1.
        _pacify()
        return 1
    return 0


def _global_options(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """``--home DIR`` (or ``--home=DIR``) before the command; anything else before it is not handled here."""
    home: str | None = None
    args = list(argv)
    while args and args[0].startswith("-"):
        arg = args.pop(0)
        if arg == "--home" and args and home is None:
            home = args.pop(0)
        elif arg.startswith("--home=") and home is None:
            home = arg.removeprefix("--home=")
        else:
            raise _Fallback
        if not home or home.startswith("-"):
            raise _Fallback
    return home, args


class _Request:
    """The ``list`` arguments understood here."""

    def __init__(self) -> None:
        self.workspace: str | None = None
        self.all = False
        self.limit: int | None = None
        self.statuses: list[str] = []


def _list_options(args: list[str]) -> _Request:
    request = _Request()
    while args:
        arg = args.pop(0)
        if arg in _LIST_FLAGS:
            request.all = True
            continue
        name, value = arg, None
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
        key = _LIST_VALUE_OPTIONS.get(name)
        if key is not None:
            if value is None:
                if not args:
                    raise _Fallback
                value = args.pop(0)
            _set_option(request, key, value)
        elif arg.startswith("-") or request.workspace is not None:
            raise _Fallback  # --json, --help, another option, a second argument, "--": the full CLI decides
        else:
            request.workspace = arg
    return request


def _set_option(request: _Request, key: str, value: str) -> None:
    if key == "limit":
        # Exactly the digits click's int type would read the same way, and within --limit's range (min 1).
        if request.limit is not None or not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise _Fallback
        request.limit = int(value)
    else:
        wanted = value.lower()
        if wanted not in _status_choices():
            raise _Fallback  # a usage error: worded by the full CLI
        request.statuses.append(wanted)


def _status_choices() -> tuple[str, ...]:
    from atlas_tasks._status import TaskStatus

    return (*[str(s) for s in TaskStatus], "crashed")


def _home(home: str | None) -> str:
    """The file store's directory, chosen as :class:`atlas_tasks.cli._state.State` chooses it, or _Fallback."""
    if home is None:
        if os.environ.get("ATLAS_STORE_URL"):
            raise _Fallback  # a store URL: maybe PostgreSQL, maybe a file: URL with its own rules
        if _in_a_repository():
            from atlas_tasks import repos

            found = repos.find_repo()
            if found is not None:
                try:
                    scoped = repos.repo_home(found)
                except repos.RepoNotFoundError:
                    scoped = None
                if scoped is not None and scoped.is_dir():
                    raise _Fallback  # the repository's store, announced with a note by the full CLI
        home = os.environ.get("ATLAS_HOME") or "~/.atlas"  # atlas_tasks.store.urls.default_home
    # Path(home).expanduser().absolute() as the store takes it, without pathlib (~4 ms with urllib.parse): the same
    # directory ("." and "//" aside, which the system reads alike; ".." is kept, as pathlib keeps it).
    path = os.path.expanduser(home)  # noqa: PTH111
    if path.startswith("~"):
        raise _Fallback  # no such user: pathlib raises, the full CLI reports it
    if not os.path.isabs(path):  # noqa: PTH117
        path = os.path.join(os.getcwd(), path)  # noqa: PTH109, PTH118
    if not os.path.isdir(path):  # noqa: PTH112
        raise _Fallback  # a missing home: a warning or a note, worded by the full CLI
    return path


def _in_a_repository() -> bool:
    """Whether :func:`atlas_tasks.repos.find_repo` can find a repository here (a ``.git`` entry in the current
    directory or above it): only then is atlas_tasks.repos loaded (with hashlib, pathlib and dataclasses, ~10 ms)."""
    try:
        here = os.path.normpath(os.getcwd())  # noqa: PTH109
    except OSError:
        return False
    while True:
        if os.path.lexists(os.path.join(here, ".git")):  # noqa: PTH118
            return True
        parent = os.path.dirname(here)  # noqa: PTH120
        if parent == here:
            return False
        here = parent


class _Step:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Task:
    """What :func:`atlas_tasks.cli._render.print_task_list` reads of a task, from a cache row."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.id: str = row["id"]
        self.status: str = row["status"]
        self.template: str = row["template"]
        self.description: str = row["description"]
        self.current_step: int = row["current_step"]
        self.steps = range(row["steps"])  # only its length is read
        self.current = _Step(row["current"]) if row["current"] is not None else None
        self.created_at = datetime.fromisoformat(row["created"]) if row["created"] is not None else None
        self.updated_at = datetime.fromisoformat(row["updated"]) if row["updated"] is not None else None
        self.metadata = {"fork_incomplete": True} if row["fork_incomplete"] else {}
        self.go: bool = row["go"]
        self.ready: bool = row["ready"]


class _State:
    """What the renderer reads of a :class:`atlas_tasks.views.display.DisplayState`."""

    __slots__ = ("crashed", "task")

    def __init__(self, task: _Task, crashed: bool) -> None:
        self.task = task
        self.crashed = crashed

    @property
    def label(self) -> str:
        return _CRASHED_LABEL if self.crashed else self.task.status

    @property
    def status(self) -> str:
        return "crashed" if self.crashed else self.task.status


class _Plan:
    def __init__(self, rows: list[tuple[str, _State]], several: bool, note: str | None, now: datetime) -> None:
        self.rows, self.several, self.note, self.now = rows, several, note, now


def _plan(home: str, request: _Request) -> _Plan:
    """Everything the full ``list`` would print, decided from the cache, or _Fallback."""
    from atlas_tasks.backends import _file_light as files
    from atlas_tasks.cli import _listcache as cache

    wanted = [request.workspace] if request.workspace is not None and not request.all else _workspaces(home)
    for name in wanted:
        # One path component (never "..", a "/" or a NUL), so the lookups below stay inside the home; the name's
        # validity itself is vouched for by its cache file, which only a full listing of it (that checked the name)
        # writes. atlas_tasks.names is not loaded: its regular expressions would bring re (~3 ms).
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise _Fallback
    now = datetime.now(UTC)
    listed: list[tuple[str, _Task]] = []
    total = 0
    try:
        for ws in wanted:
            stamps = files.task_stamps(home, ws, strict=True)  # a missing workspace is an error: the full CLI's
            rows = cache.load(home, ws)
            if rows is None:
                raise _Fallback  # never listed in full (or the file is damaged): the full CLI checks the name too
            found: list[_Task] = []
            for name, stamp in stamps.items():
                row = rows.get(name)
                if stamp is None or not isinstance(row, dict) or row.get("stamp") != stamp:
                    raise _Fallback  # new, changed, unreadable or odd: the full CLI reads it
                try:
                    found.append(_Task(row))
                except (KeyError, TypeError, ValueError):
                    raise _Fallback from None
            active = [task.id for task in found if task.status in _ACTIVE]
            if active and not files.lease_files(home, ws).isdisjoint(active):
                raise _Fallback  # a runner of ours ran it: its lease must be probed (and the task read again)
            listed.extend((ws, task) for task in found)
            total += len(stamps)
    except OSError:
        raise _Fallback from None  # a missing workspace, a symlink, a permission problem: worded by the full CLI
    listed.sort(key=lambda item: (item[1].created_at or _OLDEST, item[1].id), reverse=True)
    states = [(ws, _State(task, _crashed(task, now))) for ws, task in listed]
    shown = [(ws, state) for ws, state in states if _matches(state, request.statuses)][: request.limit]
    several = request.workspace is None or request.all or len(wanted) > 1
    note = None
    if not shown:
        matching = f" with status {', '.join(request.statuses)}" if request.statuses else ""
        where = f"in workspace {request.workspace}" if request.workspace else "in any workspace"
        note = f"no tasks{matching} {where} ({total} in all)"
    return _Plan(shown, several, note, now)


def _workspaces(home: str) -> list[str]:
    """The workspaces ``list`` goes through, as the last full listing saw them, if nothing changed since."""
    from atlas_tasks.backends import _file_light as files
    from atlas_tasks.cli import _listcache as cache

    entries = cache.load(home, cache.WORKSPACES_ENTRY)
    current = files.workspace_stamps(home)
    if not current or entries is None or set(entries) != set(current):
        raise _Fallback
    shown: list[str] = []
    for name in sorted(current):
        entry = entries[name]
        if not isinstance(entry, dict) or current[name] is None or entry.get("stamp") != current[name]:
            raise _Fallback
        if entry.get("listed") is True:
            shown.append(name)
    return shown


def _crashed(task: _Task, now: datetime) -> bool:
    """:func:`atlas_tasks.runs.is_interrupted` for a task no runner of ours holds (it has no lease file)."""
    if task.status not in _ACTIVE or task.ready:
        return False
    if task.go and task.updated_at is not None:
        return now - task.updated_at > _GO_STALE_AFTER
    return True


def _matches(state: _State, wanted: list[str]) -> bool:
    """:func:`atlas_tasks.views.display.matches_status`."""
    if not wanted:
        return True
    if state.crashed:
        return "crashed" in wanted or "interrupted" in wanted
    return state.task.status in wanted


def _print(plan: _Plan) -> None:
    if plan.rows:
        from atlas_tasks.cli import _listview

        states: Any = [state for _, state in plan.rows]
        workspaces = [ws for ws, _ in plan.rows] if plan.several else None
        if _listview.plain_stdout():
            text = _listview.plain_table(_listview.list_cells(states, plan.now, workspaces=workspaces)[0])
            if text is not None:
                sys.stdout.write(text)
                return
        from atlas_tasks.cli import _render  # a terminal, or cells only rich lays out right

        _render.print_task_list(states, plan.now, workspaces=workspaces)
    elif plan.note is not None:
        from atlas_tasks.views.text import printable

        sys.stderr.write(f"{printable(plan.note)}\n")
        sys.stderr.flush()


def _pacify() -> None:
    # click's PacifyFlushWrapper, without importing click: later flushes of the closed pipe are ignored.
    import contextlib

    with contextlib.suppress(OSError):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives until exit)


__all__ = ["run"]
