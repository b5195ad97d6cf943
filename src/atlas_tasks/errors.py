"""Every error atlas-tasks raises.

All errors derive from :class:`AtlasTasksError`. Where the meaning matches a built-in exception the error also
derives from it (``TaskNotFoundError`` is a ``LookupError``, ``InvalidNameError`` a ``ValueError``,
``LockTimeoutError`` a ``TimeoutError``), so callers can catch either. Every error carries structured attributes
(``workspace``, ``task_id``, ``path`` ...) and a message that says what failed, where, and what to do.
Errors pickle, so they cross process boundaries intact.
"""

from __future__ import annotations

# typing only for type checkers: this module is on the CLI's start-up path (atlas_tasks.cli._fast), where typing
# costs ~4 ms. TYPE_CHECKING spelled as typing defines it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar


def _rebuild(cls: type[AtlasTasksError], message: str, context: dict[str, Any]) -> AtlasTasksError:
    # Built-ins such as TimeoutError (an OSError) interpret constructor arguments, so rebuild without __init__.
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.message = message
    err.context = context
    _set_context(err, context)
    return err


def _set_context(err: Exception, context: dict[str, Any]) -> None:
    # setattr, not __dict__.update: OSError's errno/strerror are descriptors that a __dict__ entry would not reach.
    for key, value in context.items():
        setattr(err, key, value)


class AtlasTasksError(Exception):
    """Base class of every atlas-tasks error.

    Attributes:
        message: The full human-readable message.
        context: The structured attributes (also set as attributes of the error itself).
    """

    message: str
    context: dict[str, Any]

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context
        _set_context(self, context)

    def __str__(self) -> str:
        return self.message

    @property
    def cli_message(self) -> str:
        """The message as the ``atlas-tasks`` command shows it: :attr:`message`, unless the library's advice names
        Python code (``store.create_workspace(...)``, ``exist_ok=True``), which the command line words as the
        command or option that does the same. Built from :attr:`context`, so it survives pickling too."""
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.context))


def _where(workspace: str | None, task_id: str | None) -> str:
    if workspace is not None and task_id is not None:
        return f"task {task_id!r} in workspace {workspace!r}"
    if workspace is not None:
        return f"workspace {workspace!r}"
    return f"task {task_id!r}"


class InvalidNameError(AtlasTasksError, ValueError):
    """A workspace name, task id or artifact path is not allowed.

    Names are checked against an allowlist and rejected, never rewritten. Attributes: ``kind``
    (``"workspace"``, ``"task id"``, ``"artifact"``), ``name`` and ``reason``.
    """

    kind: str
    name: str
    reason: str

    def __init__(self, kind: str, name: str, reason: str) -> None:
        super().__init__(
            f"invalid {kind} {name!r}: {reason}",
            kind=kind,
            name=name,
            reason=reason,
        )


class WorkspaceNotFoundError(AtlasTasksError, LookupError):
    """The workspace directory does not exist."""

    workspace: str
    path: str

    def __init__(self, workspace: str, path: str) -> None:
        super().__init__(
            f"workspace {workspace!r} does not exist (no directory {path}); create it with "
            f"`atlas-tasks workspace create {workspace}` or store.create_workspace({workspace!r})",
            workspace=workspace,
            path=path,
        )

    @property
    def cli_message(self) -> str:
        return (
            f"workspace {self.workspace!r} does not exist (no directory {self.path}); create it with "
            f"`atlas-tasks workspace create {self.workspace}`, or see `atlas-tasks workspace list`"
        )


class WorkspaceExistsError(AtlasTasksError):
    """``create_workspace`` was asked for a workspace that already has a workspace.json."""

    workspace: str
    path: str

    def __init__(self, workspace: str, path: str) -> None:
        super().__init__(
            f"workspace {workspace!r} already exists ({path}); pass exist_ok=True to accept an existing one",
            workspace=workspace,
            path=path,
        )

    @property
    def cli_message(self) -> str:
        return (
            f"workspace {self.workspace!r} already exists ({self.path}); add --exist-ok to accept an existing "
            "workspace (it is left unchanged)"
        )


class TaskNotFoundError(AtlasTasksError, LookupError):
    """No task with that id exists in the workspace."""

    workspace: str
    task_id: str
    path: str | None

    def __init__(self, workspace: str, task_id: str, path: str | None = None, *, deleted_at: str | None = None) -> None:
        where = f" (looked in {path})" if path else ""
        # A deleted task says so (its tombstone remembers when): "not found" alone reads like a typo.
        gone = f": it was deleted at {deleted_at} (tombstone)" if deleted_at is not None else ""
        context: dict[str, object] = {"workspace": workspace, "task_id": task_id, "path": path}
        if deleted_at is not None:
            context["deleted_at"] = deleted_at
        super().__init__(
            f"{_where(workspace, task_id)} not found{where}{gone}; `atlas-tasks list {workspace}` shows its tasks",
            **context,
        )


class TaskExistsError(AtlasTasksError):
    """``create`` was given an explicit id that is already taken."""

    workspace: str
    task_id: str
    path: str | None

    def __init__(self, workspace: str, task_id: str, path: str | None = None) -> None:
        super().__init__(
            f"{_where(workspace, task_id)} already exists ({path}); leave task.id empty to get a fresh id",
            workspace=workspace,
            task_id=task_id,
            path=path,
        )


class TaskIdRetiredError(TaskExistsError):
    """The id belonged to a task that was deleted (it has a tombstone): a deleted id is never given out again.

    A TaskExistsError, so code that handles an id collision handles this one too.
    """

    deleted_at: str

    def __init__(self, workspace: str, task_id: str, deleted_at: str, path: str | None = None) -> None:
        # Not TaskExistsError.__init__: the message is this error's own.
        AtlasTasksError.__init__(
            self,
            f"{_where(workspace, task_id)} was deleted at {deleted_at or 'an unknown time'} and its id is retired "
            f"(tombstone {path or '?'}), so it is never reused; leave task.id empty to get a fresh id (a bundle: "
            "import it with --as-new-id)",
            workspace=workspace,
            task_id=task_id,
            deleted_at=deleted_at,
            path=path,
        )


class BundleError(AtlasTasksError, ValueError):
    """A task bundle cannot be exported or imported: damaged, tampered, unsafe, or clashing with the target."""

    path: str
    member: str | None

    def __init__(self, path: str, problem: str, member: str | None = None) -> None:
        where = f"bundle {path}" + (f", member {member!r}" if member else "")
        super().__init__(f"{where}: {problem}", path=path, member=member)


class ConfigError(AtlasTasksError, ValueError):
    """A configuration file cannot be used: unreadable, not YAML, or a key with a value that makes no sense."""

    path: str
    key: str | None

    def __init__(self, path: str, problem: str, key: str | None = None) -> None:
        where = f"{path}" + (f", key {key}" if key else "")
        super().__init__(f"configuration {where}: {problem}", path=path, key=key)


class ArtifactNotFoundError(AtlasTasksError, LookupError):
    """The artifact does not exist for that task."""

    workspace: str
    task_id: str
    name: str
    path: str | None

    def __init__(self, workspace: str, task_id: str, name: str, path: str | None = None) -> None:
        super().__init__(
            f"artifact {name!r} of {_where(workspace, task_id)} not found"
            f"{f' ({path})' if path else ''}; `atlas-tasks artifacts {workspace} {task_id}` lists them",
            workspace=workspace,
            task_id=task_id,
            name=name,
            path=path,
        )


class CorruptTaskError(AtlasTasksError):
    """A stored task cannot be read: invalid JSON, invalid fields, or an incomplete creation.

    Nothing is changed on disk; ``atlas-tasks doctor`` reports such tasks. Attributes: ``workspace``, ``task_id``,
    ``path`` and ``reason``.
    """

    workspace: str
    task_id: str
    path: str
    reason: str

    def __init__(self, workspace: str, task_id: str, path: str, reason: str) -> None:
        super().__init__(
            f"{_where(workspace, task_id)} is unreadable: {reason} ({path}); "
            f"the file was left untouched, run `atlas-tasks doctor {workspace}` to inspect it",
            workspace=workspace,
            task_id=task_id,
            path=path,
            reason=reason,
        )


class IncompleteTaskError(CorruptTaskError):
    """A task directory exists without a task.json: a creation that crashed before its first write."""

    def __init__(self, workspace: str, task_id: str, path: str) -> None:
        super().__init__(
            workspace,
            task_id,
            path,
            "the task directory has no task.json (a creation interrupted before it finished)",
        )


class CorruptWorkspaceError(AtlasTasksError):
    """A workspace.json cannot be read."""

    workspace: str
    path: str
    reason: str

    def __init__(self, workspace: str, path: str, reason: str) -> None:
        super().__init__(
            f"workspace {workspace!r} has an unreadable workspace.json: {reason} ({path})",
            workspace=workspace,
            path=path,
            reason=reason,
        )


class SchemaVersionError(AtlasTasksError):
    """A stored document was written by a newer, incompatible version of the format.

    The document is refused rather than silently rewritten (which would drop what this version does not know).
    """

    path: str
    found: str
    supported: str

    def __init__(self, path: str, found: str, supported: str) -> None:
        super().__init__(
            f"{path} has schema_version {found!r}, newer than this atlas-tasks supports ({supported}); "
            "upgrade atlas-tasks to read it (the file was left untouched)",
            path=path,
            found=found,
            supported=supported,
        )


class ConflictError(AtlasTasksError):
    """``update`` was given a task whose revision is not the stored one: somebody else saved it first.

    Re-read the task with ``get`` and apply the change again, or use ``store.modify``/``store.edit`` for a locked
    read-modify-write.
    """

    workspace: str
    task_id: str
    expected: int
    found: int

    def __init__(self, workspace: str, task_id: str, expected: int, found: int) -> None:
        super().__init__(
            f"{_where(workspace, task_id)} was changed by another writer: you hold revision {expected}, "
            f"the store has revision {found}; re-read it with get() (or use store.modify) and retry",
            workspace=workspace,
            task_id=task_id,
            expected=expected,
            found=found,
        )

    @property
    def cli_message(self) -> str:
        return (
            f"{_where(self.workspace, self.task_id)} was changed by another writer while this command worked on it "
            f"(revision {self.expected} became {self.found}); nothing was saved, run the command again"
        )


class LockTimeoutError(AtlasTasksError, TimeoutError):
    """A task's (or workspace's) write lock was not obtained in time."""

    what: str
    path: str
    timeout: float

    def __init__(self, what: str, path: str, timeout: float) -> None:
        super().__init__(
            f"could not lock {what} within {timeout:g}s: another writer holds {path}; retry, or raise lock_timeout",
            what=what,
            path=path,
            timeout=timeout,
        )

    @property
    def cli_message(self) -> str:
        return (
            f"could not lock {self.what} within {self.timeout:g}s: another writer holds {self.path}; "
            "nothing was changed, run the command again"
        )


class InvalidTransitionError(AtlasTasksError, ValueError):
    """A status change that the task state machine does not allow.

    ``allowed`` lists the statuses the task may move to from ``from_status`` (empty for a final status).
    """

    task_id: str
    from_status: str
    to_status: str
    allowed: tuple[str, ...]

    def __init__(self, task_id: str, from_status: str, to_status: str, allowed: tuple[str, ...]) -> None:
        if allowed:
            can = f"from {from_status!r} it can only go to {', '.join(allowed)}"
        else:
            can = f"{from_status!r} is a terminal status: nothing can follow it"
        super().__init__(
            f"task {task_id!r} cannot go from {from_status!r} to {to_status!r}; {can}",
            task_id=task_id,
            from_status=from_status,
            to_status=to_status,
            allowed=allowed,
        )


class NotAwaitingApprovalError(InvalidTransitionError):
    """``approve`` or ``reject`` of a task that is not waiting for a human.

    An :class:`InvalidTransitionError` (the decision is a status change the task cannot make now) whose message says
    what state the task is in and what would help instead. Attributes: those of InvalidTransitionError plus
    ``workspace``, ``action`` (``"approve"`` or ``"reject"``) and ``hint``.
    """

    workspace: str
    action: str
    hint: str

    def __init__(
        self,
        workspace: str,
        task_id: str,
        status: str,
        action: str,
        hint: str,
        to_status: str,
        allowed: tuple[str, ...],
    ) -> None:
        message = f"{_where(workspace, task_id)} is {status}, not awaiting approval: {hint}"
        AtlasTasksError.__init__(
            self,
            message,
            task_id=task_id,
            from_status=status,
            to_status=to_status,
            allowed=allowed,
            workspace=workspace,
            action=action,
            hint=hint,
        )


class _CannotStopError(InvalidTransitionError):
    """What CannotAbandonError and CannotCancelError share: a task with no run to stop and no Go edge to the end
    status asked for; ``hint`` says what would help instead."""

    _verb: ClassVar[str]
    _to_status: ClassVar[str]
    workspace: str
    hint: str

    def __init__(self, workspace: str, task_id: str, status: str, hint: str, allowed: tuple[str, ...]) -> None:
        AtlasTasksError.__init__(
            self,
            f"{_where(workspace, task_id)} is {status} and cannot be {self._verb}: {hint}",
            task_id=task_id,
            from_status=status,
            to_status=self._to_status,
            allowed=allowed,
            workspace=workspace,
            hint=hint,
        )


class CannotAbandonError(_CannotStopError):
    """``abandon`` of a task whose status has no edge to abandoned (pending, finished, waiting for a review).

    Attributes: those of InvalidTransitionError plus ``workspace`` and ``hint`` (what would help instead).
    """

    _verb, _to_status = "abandoned", "abandoned"


class CannotCancelError(_CannotStopError):
    """``cancel`` of a task with no run to stop and no Go edge to a stopped status (pending, waiting for a review,
    or finished).

    Attributes: those of InvalidTransitionError plus ``workspace`` and ``hint`` (what would help instead).
    """

    _verb, _to_status = "cancelled", "interrupted"


class TaskFinishedError(AtlasTasksError):
    """A change asked of a finished task (completed, rejected or abandoned), which keeps what it ran with."""

    workspace: str
    task_id: str
    status: str

    def __init__(self, workspace: str, task_id: str, status: str) -> None:
        super().__init__(
            f"{_where(workspace, task_id)} is {status}: a finished task keeps the configuration it ran with; "
            "nothing was changed (create a new task instead)",
            workspace=workspace,
            task_id=task_id,
            status=status,
        )


class IncompleteConfigError(AtlasTasksError, ValueError):
    """A task that would fail at one of its steps as configured (no AI command, no validation commands).

    Attributes: ``template`` and ``problems`` (one sentence per missing piece, saying how to supply it).
    """

    template: str
    problems: list[str]

    def __init__(self, template: str, problems: list[str]) -> None:
        super().__init__(
            f"a task from template {template!r} cannot run as configured: {'; '.join(problems)}; nothing was "
            "created (without --run the task is created, and `atlas-tasks set` can complete it later)",
            template=template,
            problems=problems,
        )


class InvalidValueError(AtlasTasksError, ValueError):
    """A value given for a task (a description, a command to run) that cannot work, refused before it is stored.

    Attributes: ``what`` (the value's name, e.g. ``"--ai-command"``), ``value`` and ``reason`` (what is wrong and
    what to do).
    """

    what: str
    value: str
    reason: str

    def __init__(self, what: str, value: str, reason: str) -> None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        super().__init__(f"invalid {what} {shown!r}: {reason}", what=what, value=value, reason=reason)


class AmbiguousTaskIdError(AtlasTasksError, LookupError):
    """A shortened task id (a fragment of the id) that matches more than one task of the workspace.

    Attributes: ``workspace``, ``fragment`` and ``candidates`` (every matching id, newest first).
    """

    workspace: str
    fragment: str
    candidates: list[str]

    def __init__(self, workspace: str, fragment: str, candidates: list[str]) -> None:
        shown = ", ".join(candidates[:8]) + (f" and {len(candidates) - 8} more" if len(candidates) > 8 else "")
        super().__init__(
            f"{fragment!r} matches {len(candidates)} tasks in workspace {workspace!r}: {shown}; give more of the id",
            workspace=workspace,
            fragment=fragment,
            candidates=candidates,
        )


class StorageError(AtlasTasksError, OSError):
    """The operating system refused a filesystem operation (disk full, I/O error, read-only, permissions).

    The operation was not acknowledged and the previous committed state is intact. After a failed fsync the data
    may not be on disk: the store never retries an fsync into a false success. Attributes: ``op``, ``path``,
    ``errno`` and ``strerror``.
    """

    op: str
    path: str

    def __init__(self, op: str, path: str, errno: int | None, strerror: str | None) -> None:
        super().__init__(
            f"{op} failed for {path}: {strerror or 'error'} (errno {errno}); nothing was acknowledged and the "
            "previous state is intact",
            op=op,
            path=path,
            errno=errno,
            strerror=strerror,
        )


class UnsafeTaskFileError(CorruptTaskError, StorageError):
    """A task's task.json is not a regular file: a symlink, FIFO, socket, device or directory.

    The store never follows or opens such an entry (a FIFO would block the reader forever, a symlink could lead
    outside the store). It is both a :class:`CorruptTaskError` (one unreadable task: listings report it in
    ``errors`` and go on) and a :class:`StorageError` (the file was refused, as a symlink always was).
    Attributes: ``workspace``, ``task_id``, ``path``, ``reason``, ``kind``, plus StorageError's ``op``, ``errno``
    and ``strerror``.
    """

    kind: str

    def __init__(self, workspace: str, task_id: str, path: str, kind: str) -> None:
        reason = f"task.json is {kind}, not a regular file; the store never follows or opens such an entry"
        AtlasTasksError.__init__(
            self,
            f"{_where(workspace, task_id)} is unreadable: {reason} ({path}); nothing was changed; remove or replace "
            f"the entry, then run `atlas-tasks doctor {workspace}`",
            workspace=workspace,
            task_id=task_id,
            path=path,
            reason=reason,
            kind=kind,
            op="open",
            errno=None,
            strerror=reason,
        )


class InvalidLogEntryError(AtlasTasksError, ValueError):
    """A log entry that cannot be stored as exactly one JSON line (not JSON, or with a newline or NUL inside)."""

    workspace: str
    task_id: str
    reason: str

    def __init__(self, workspace: str, task_id: str, reason: str) -> None:
        super().__init__(
            f"log entry for {_where(workspace, task_id)} refused: {reason}; pass a dict, or one line of JSON",
            workspace=workspace,
            task_id=task_id,
            reason=reason,
        )


class CorruptLogError(AtlasTasksError):
    """A task.log line that is not valid JSON and is followed by valid lines: damage, not a torn tail."""

    workspace: str
    task_id: str
    path: str
    line_number: int
    reason: str

    def __init__(self, workspace: str, task_id: str, path: str, line_number: int, reason: str) -> None:
        super().__init__(
            f"{path} line {line_number} of {_where(workspace, task_id)} is damaged: {reason}; "
            "later lines are intact and were kept",
            workspace=workspace,
            task_id=task_id,
            path=path,
            line_number=line_number,
            reason=reason,
        )


class StoreUnavailableError(AtlasTasksError, ConnectionError):
    """The store's server cannot be reached (a network store such as PostgreSQL).

    Attributes: ``where`` (the address tried, without credentials) and ``reason``.
    """

    where: str
    reason: str

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the store at {where}: {reason}; check that the server runs and the URL is right",
            where=where,
            reason=reason,
        )


class NotBridgedError(AtlasTasksError, RuntimeError):
    """A native async store's connection was used outside its event loop's bridge (from sync code or a thread).

    The store behind ``aio.open_async_store("postgresql://...")`` talks to the server through psycopg's async
    connections, which only its coroutines can drive.
    """

    def __init__(self) -> None:
        super().__init__(
            "a native async PostgreSQL store was called from sync code (or another thread), outside its event loop; "
            "await the AsyncStore's coroutines instead, or open a sync store (atlas_tasks.open_store) or "
            "aio.open_async_store(url, native=False) for code that must call it synchronously"
        )


class TaskRunningError(AtlasTasksError):
    """A run was asked for a task that a live runner holds (its run lease is taken).

    Attributes: ``workspace``, ``task_id`` and ``holder`` (pid, host and start time of the live runner).
    """

    workspace: str
    task_id: str
    holder: dict[str, Any]

    def __init__(self, workspace: str, task_id: str, holder: dict[str, Any]) -> None:
        if holder.get("daemon"):
            who, stop = f"by the Go ATLAS daemon at {holder['daemon']}", "or cancel it through that daemon"
        else:
            who, stop = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}", "or stop that process"
        since = f" since {holder['started_at']}" if holder.get("started_at") else ""
        super().__init__(
            f"{_where(workspace, task_id)} is already running ({who}{since}); wait for it to finish, {stop} "
            "first — a task has one live runner at a time",
            workspace=workspace,
            task_id=task_id,
            holder=holder,
        )


class CollectorBusyError(AtlasTasksError):
    """Another garbage collector holds the store's collector lock: one ``gc`` at a time per store.

    Attributes: ``where`` (the store) and ``holder`` (pid, host and since of the running collector, as known).
    """

    where: str
    holder: dict[str, Any]

    def __init__(self, where: str, holder: dict[str, Any]) -> None:
        since = f" since {holder['since']}" if holder.get("since") else ""
        super().__init__(
            f"another gc is collecting {where} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}{since}); "
            "wait for it to finish, or stop that process, then run gc again",
            where=where,
            holder=holder,
        )


class StepFailedError(AtlasTasksError):
    """A step of a run failed; the task was checkpointed in the failure status its step type implies."""

    workspace: str
    task_id: str
    step_name: str
    status: str
    reason: str

    def __init__(self, workspace: str, task_id: str, step_name: str, status: str, reason: str) -> None:
        super().__init__(
            f"step {step_name!r} of {_where(workspace, task_id)} failed: {reason}; the task is now {status!r} — "
            f"fix the cause and run it again to retry the step (`atlas-tasks run {workspace} {task_id}`)",
            workspace=workspace,
            task_id=task_id,
            step_name=step_name,
            status=status,
            reason=reason,
        )


class WorkdirError(AtlasTasksError):
    """There is no safe directory to run a task's commands in: the configured one is missing, the workspace cannot
    be read, or nothing was configured and the caller did not say where.

    Attributes: ``workspace``, ``path`` (the missing directory, or ``""``) and ``reason``.
    """

    workspace: str
    path: str
    reason: str

    def __init__(self, workspace: str, path: str, reason: str) -> None:
        super().__init__(
            f"cannot run the steps of workspace {workspace!r}: {reason}; nothing was run",
            workspace=workspace,
            path=path,
            reason=reason,
        )


class NotRunnableError(AtlasTasksError):
    """``run`` was asked for a task that cannot run now (finished, or waiting for a human)."""

    workspace: str
    task_id: str
    status: str

    def __init__(self, workspace: str, task_id: str, status: str, hint: str) -> None:
        super().__init__(
            f"task {task_id!r} in workspace {workspace!r} is {status}: {hint}",
            workspace=workspace,
            task_id=task_id,
            status=status,
        )


class DeadlinePassedError(NotRunnableError):
    """``run`` was asked for a task whose deadline (``metadata.deadline``) has passed."""

    deadline: str

    def __init__(self, workspace: str, task_id: str, status: str, deadline: str) -> None:
        hint = (
            f"its deadline ({deadline}) has passed; extend it (`atlas-tasks deadline {workspace} {task_id} "
            f"--extend 1h`) or clear it (`atlas-tasks deadline {workspace} {task_id} --clear`)"
        )
        super().__init__(workspace, task_id, status, hint)
        self.deadline = deadline
        self.context["deadline"] = deadline


class CrashLoopError(NotRunnableError):
    """``run`` was asked for a task whose runner died too many times in a row without finishing a step."""

    crash_resumes: int
    limit: int

    def __init__(self, workspace: str, task_id: str, status: str, crash_resumes: int, limit: int) -> None:
        hint = (
            f"its runner died {crash_resumes} times in a row without finishing a step (limit {limit}); look at "
            f"`atlas-tasks logs {workspace} {task_id}`, then override with "
            f"`atlas-tasks run {workspace} {task_id} --reset-crash-count`"
        )
        super().__init__(workspace, task_id, status, hint)
        self.crash_resumes, self.limit = crash_resumes, limit
        self.context.update(crash_resumes=crash_resumes, limit=limit)


class GuardValueError(AtlasTasksError, ValueError):
    """A retry policy, deadline or crash limit with a value that makes no sense (in a template, task or option)."""

    field: str
    value: str
    reason: str

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field} = {value!r}: {reason}", field=field, value=repr(value), reason=reason)


class BudgetExceededError(NotRunnableError):
    """``run`` was asked for a task whose spend has reached a hard limit of its budget (tokens or cost).

    Attributes: ``workspace``, ``task_id``, ``status``, ``limit`` (``"tokens"`` or ``"cost_usd"``), ``used`` and
    ``hard``; the message names the ``atlas-tasks budget`` command that raises the limit.
    """

    limit: str
    used: float
    hard: float

    def __init__(
        self, workspace: str, task_id: str, status: str, limit: str, used: float, hard: float, hint: str
    ) -> None:
        super().__init__(workspace, task_id, status, hint)
        more = {"limit": limit, "used": used, "hard": hard}
        self.context.update(more)
        _set_context(self, more)


class RewindError(AtlasTasksError, ValueError):
    """``retry``/``fork`` from a step that cannot be used: out of range, an ambiguous name, no failed step, a
    step past the first unfinished one, or a finished task retried in place.

    Attributes: ``workspace``, ``task_id``, ``step`` (as asked), ``reason`` and ``choices`` (the valid choices).
    """

    workspace: str
    task_id: str
    step: str
    reason: str
    choices: tuple[str, ...]

    def __init__(self, workspace: str, task_id: str, step: str, reason: str, choices: tuple[str, ...] = ()) -> None:
        valid = f"; valid: {', '.join(choices)}" if choices else ""
        super().__init__(
            f"task {task_id!r} in workspace {workspace!r}: cannot start again from step {step!r}: {reason}{valid}; "
            "nothing was changed",
            workspace=workspace,
            task_id=task_id,
            step=step,
            reason=reason,
            choices=choices,
        )


class TemplateError(AtlasTasksError, LookupError):
    """A template that does not exist or cannot be read."""

    name: str
    reason: str

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"template {name!r}: {reason}", name=name, reason=reason)


class MissingExtraError(AtlasTasksError, ImportError):
    """A backend needs packages of an optional extra that are not installed.

    Attributes: ``extra`` (e.g. ``"postgres"``), ``feature`` and ``reason`` (the import error).
    """

    extra: str
    feature: str
    reason: str

    def __init__(self, extra: str, feature: str, reason: BaseException | str) -> None:
        super().__init__(
            f"{feature} needs the optional '{extra}' dependencies ({reason}); install them with: "
            f"pip install 'atlas-tasks[{extra}]'",
            extra=extra,
            feature=feature,
            reason=str(reason),
        )


__all__ = [
    "AmbiguousTaskIdError",
    "ArtifactNotFoundError",
    "AtlasTasksError",
    "BudgetExceededError",
    "BundleError",
    "CannotAbandonError",
    "CannotCancelError",
    "CollectorBusyError",
    "ConfigError",
    "ConflictError",
    "CorruptLogError",
    "CorruptTaskError",
    "CorruptWorkspaceError",
    "CrashLoopError",
    "DeadlinePassedError",
    "GuardValueError",
    "IncompleteConfigError",
    "IncompleteTaskError",
    "InvalidLogEntryError",
    "InvalidNameError",
    "InvalidTransitionError",
    "InvalidValueError",
    "LockTimeoutError",
    "MissingExtraError",
    "NotAwaitingApprovalError",
    "NotBridgedError",
    "NotRunnableError",
    "RewindError",
    "SchemaVersionError",
    "StepFailedError",
    "StorageError",
    "StoreUnavailableError",
    "TaskExistsError",
    "TaskFinishedError",
    "TaskIdRetiredError",
    "TaskNotFoundError",
    "TaskRunningError",
    "TemplateError",
    "UnsafeTaskFileError",
    "WorkdirError",
    "WorkspaceExistsError",
    "WorkspaceNotFoundError",
]
