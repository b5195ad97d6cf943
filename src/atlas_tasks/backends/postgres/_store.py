"""PostgresStore: the Store contract on a PostgreSQL server, for agents running on many machines.

Same observable behaviour as the file store (the shared conformance suite checks it); how each promise is kept:

* ids: the file store's candidates, reserved by the primary key (``INSERT … ON CONFLICT DO NOTHING``, next one).
* no lost updates: ``update`` writes ``WHERE revision = <the revision it checked>`` and raises ConflictError when
  that matches nothing; ``edit``/``modify`` hold the row (``FOR NO KEY UPDATE``) from read to save.
* lock waits are bounded by ``lock_timeout`` (set on each connection of the store's own pool, or ``SET LOCAL`` in
  each write transaction on a caller's pool), then LockTimeoutError.
* reads take no lock: each is one statement on committed rows.
* versioned artifacts: version max+1 claimed by an insert that the primary key makes write-once; a claimer that loses
  the race claims again.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from psycopg_pool import ConnectionPool

from atlas_tasks import names as N
from atlas_tasks._codec import decode_task, decode_workspace, encode_task, encode_workspace
from atlas_tasks.backends.file import _natural_key, _parse_line, summarize
from atlas_tasks.backends.postgres import _encoding as E
from atlas_tasks.backends.postgres import _leases
from atlas_tasks.backends.postgres._connections import Conn, Connections, Mode
from atlas_tasks.backends.postgres._queries import UUID_ID_SQL_RE, Queries
from atlas_tasks.errors import (
    ArtifactNotFoundError,
    AtlasTasksError,
    ConflictError,
    CorruptTaskError,
    CorruptWorkspaceError,
    SchemaVersionError,
    TaskExistsError,
    TaskNotFoundError,
    TaskRunningError,
    WorkspaceExistsError,
    WorkspaceNotFoundError,
)
from atlas_tasks.ids import IdStyle, timestamp_candidates, uuid_id
from atlas_tasks.models import Task, TaskRef, Workspace, WorkspaceStatus, utcnow
from atlas_tasks.store import LogEntry, LogLines, LogTail, SummaryList, TaskList, WorkspaceList
from atlas_tasks.transitions import check_status_change, is_terminal

if TYPE_CHECKING:
    from atlas_tasks.runs import Run

#: Tasks per page of iter_tasks.
_PAGE = 200


class PostgresStore:
    """The Store contract on PostgreSQL (see the module docstring and docs/postgres.md).

    Args:
        dsn: a libpq URL or connection string (``postgresql://user:pw@host:5432/db``); ``None`` uses libpq's
            defaults (``PGHOST``, ``PGDATABASE`` …). Ignored when ``pool`` is given.
        pool: a ``psycopg_pool.ConnectionPool`` to use instead of creating one; the store never closes it.
        schema: the PostgreSQL schema holding the store's tables (created on first use).
        lock_timeout: seconds a writer waits for a row another writer holds before ``LockTimeoutError``.
        id_style: ``"auto"``, ``"timestamp"`` or ``"uuid"``, as for the file store.
        connect_timeout: seconds to wait for the server, or for a free connection of the pool.
        max_connections: size of the pool the store creates.

    Nothing connects until the first operation; then the server is probed and the tables are created or migrated.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: ConnectionPool[Any] | None = None,
        schema: str = "atlas_tasks",
        lock_timeout: float = 10.0,
        id_style: IdStyle = "auto",
        connect_timeout: float = 10.0,
        max_connections: int = 10,
    ) -> None:
        if id_style not in ("auto", "timestamp", "uuid"):
            raise ValueError(f"id_style must be 'auto', 'timestamp' or 'uuid', not {id_style!r}")
        self._db = Connections(
            dsn or "",
            pool,
            schema,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            lock_timeout=lock_timeout,
        )
        self._conninfo = dsn if pool is None else str(getattr(pool, "conninfo", "") or "")
        self._q = Queries.for_schema(self._db.schema)
        self.schema = self._db.schema
        self.where = self._db.where
        self.lock_timeout = lock_timeout
        self.id_style: IdStyle = id_style
        self._uuid_workspaces: set[str] = set()

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r}, schema={self.schema!r})"

    @property
    def url(self) -> str:
        """A ``postgresql://`` URL naming this server, database and schema: ``open_store(url)`` opens it again.

        It holds the password when the connection string did: show ``atlas_tasks.store.urls.redact(url)``.
        """
        from urllib.parse import urlencode

        from psycopg.conninfo import conninfo_to_dict

        from atlas_tasks.store.urls import split_schema

        info = self._conninfo or ""
        if info.startswith(("postgresql://", "postgres://")):
            base, _ = split_schema(info)
            sep = "&" if "?" in base else "?"
            return f"{base}{sep}{urlencode({'schema': self.schema})}"
        params = {k: str(v) for k, v in conninfo_to_dict(info).items() if v is not None}
        params["schema"] = self.schema
        return "postgresql://?" + urlencode(params)

    def lease_candidates(self, workspace: str) -> builtins.set[str] | None:
        """None: a lease lives in a server session, so each task is asked (``lease_holder``)."""
        return None

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the store's own pool (a pool passed in is left open)."""
        self._db.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def migrate(self) -> builtins.list[int]:
        """Bring the tables up to date now (the first operation does it too); return the versions applied.

        Raises:
            DatabaseTooNewError: the database was laid out by a newer atlas-tasks.
            StoreUnavailableError: the server cannot be reached.
        """
        return self._db.migrate()

    def schema_version(self) -> int:
        """The schema version recorded in the database (0 before the first use)."""
        return self._db.schema_version()

    # -- plumbing -------------------------------------------------------------------------------------------------
    def _session(
        self, op: str, workspace: str = "", task_id: str = "", *, mode: Mode = "read"
    ) -> contextlib.AbstractContextManager[Conn]:
        locking = f"task {task_id!r} in workspace {workspace!r}" if task_id else f"workspace {workspace!r}"
        return self._db.session(op, locking=locking, lock_timeout=self.lock_timeout, mode=mode)

    def _location(self, workspace: str, task_id: str = "") -> str:
        return f"{self.where} schema {self.schema}, {workspace}/{task_id}" if task_id else f"{self.where}"

    def _missing(self, conn: Conn, workspace: str, task_id: str) -> AtlasTasksError | None:
        """The error for an absent workspace or task (no ``task_id``: the workspace only), or None if they exist."""
        row = conn.execute(self._q.exists, {"ws": workspace, "id": task_id}).fetchone()
        if row is None or not row[0]:
            return WorkspaceNotFoundError(workspace, self._location(workspace))
        if task_id and not row[1]:
            return TaskNotFoundError(workspace, task_id, self._location(workspace))
        return None

    def _require(self, conn: Conn, workspace: str, task_id: str) -> None:
        error = self._missing(conn, workspace, task_id)
        if error is not None:
            raise error

    def _decode(self, text: str, workspace: str, task_id: str) -> Task:
        path = self._location(workspace, task_id)
        try:
            task = decode_task(text, path=path)
        except SchemaVersionError:
            raise
        except ValueError as exc:
            raise CorruptTaskError(workspace, task_id, path, str(exc).splitlines()[0]) from None
        if not task.id:
            task.id = task_id
        elif task.id != task_id:
            raise CorruptTaskError(workspace, task_id, path, f"the stored document names another task, {task.id!r}")
        return task

    # -- workspaces -----------------------------------------------------------------------------------------------
    def create_workspace(
        self,
        name: str,
        *,
        path: str = "",
        worktree_path: str = "",
        branch: str = "",
        metadata: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> Workspace:
        """Create a workspace. See :meth:`atlas_tasks.store.Store.create_workspace`."""
        N.check_workspace_name(name)
        now = utcnow()
        ws = Workspace(
            name=name,
            path=path,
            worktree_path=worktree_path,
            branch=branch,
            created_at=now,
            updated_at=now,
            metadata=dict(metadata or {}),
        )
        with self._session("create_workspace", name, mode="write") as conn:
            doc = encode_workspace(ws).decode()
            if conn.execute(self._q.workspace_insert, {"ws": name, "doc": doc}).rowcount == 1:
                return ws
        if exist_ok:
            return self.get_workspace(name)
        raise WorkspaceExistsError(name, self._location(name))

    def get_workspace(self, name: str) -> Workspace:
        """Return a workspace with its task refs. See :meth:`atlas_tasks.store.Store.get_workspace`."""
        N.check_workspace_name(name)
        with self._session("get_workspace") as conn:
            row = conn.execute(self._q.workspace_get, {"ws": name}).fetchone()
        if row is None:
            raise WorkspaceNotFoundError(name, self._location(name))
        return self._decode_workspace(name, row[0], row[1])

    def _decode_workspace(self, name: str, doc: str, refs: str | None) -> Workspace:
        path = f"{self.where} schema {self.schema}, workspace {name}"
        try:
            ws = decode_workspace(doc, path=path)
        except SchemaVersionError:
            raise
        except ValueError as exc:
            raise CorruptWorkspaceError(name, path, str(exc).splitlines()[0]) from None
        ws.tasks = E.refs_from_json(refs)
        return ws

    def list_workspaces(self) -> WorkspaceList:
        """Return every workspace, sorted by name. See :meth:`atlas_tasks.store.Store.list_workspaces`."""
        result = WorkspaceList()
        with self._session("list_workspaces") as conn:
            rows = conn.execute(self._q.workspace_list).fetchall()
        for name, doc, refs in rows:
            try:
                result.append(self._decode_workspace(name, doc, refs))
            except (CorruptWorkspaceError, SchemaVersionError) as exc:
                result.errors.append(exc)
        return result

    def set_workspace_status(self, name: str, status: str) -> Workspace:
        """Set a workspace's status (active, paused, closed).

        Raises:
            ValueError: not one of the statuses.
            InvalidNameError, WorkspaceNotFoundError, LockTimeoutError.
        """
        N.check_workspace_name(name)
        new_status = WorkspaceStatus(status)
        with self._session("set_workspace_status", name, mode="transaction") as conn:
            row = conn.execute(self._q.workspace_lock, {"ws": name}).fetchone()
            if row is None:
                raise WorkspaceNotFoundError(name, self._location(name))
            ws = self._decode_workspace(name, row[0], None)
            ws.status, ws.updated_at = new_status, utcnow()
            conn.execute(self._q.workspace_replace, {"ws": name, "doc": encode_workspace(ws).decode()})
        return self.get_workspace(name)

    # -- reading tasks --------------------------------------------------------------------------------------------
    def get(self, workspace: str, task_id: str) -> Task:
        """Return the last committed state of a task. See :meth:`atlas_tasks.store.Store.get`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with self._session("get") as conn:
            row = conn.execute(self._q.task_get, {"ws": workspace, "id": task_id}).fetchone()
        if row is None:
            raise WorkspaceNotFoundError(workspace, self._location(workspace))
        if row[0] is None:
            raise TaskNotFoundError(workspace, task_id, self._location(workspace))
        return self._decode(row[0], workspace, task_id)

    def list(self, workspace: str, *, strict: bool = False, limit: int | None = None) -> TaskList:
        """Return the workspace's tasks, newest first. See :meth:`atlas_tasks.store.Store.list`.

        ``limit`` keeps only the newest ``limit`` readable tasks, and older rows are not read at all (so ``errors``
        reports the unreadable tasks among those read).
        """
        N.check_workspace_name(workspace)
        result, offset = TaskList(), 0
        while True:
            # Ask for as many rows as readable tasks are still missing (unreadable ones make us ask again).
            wanted = None if limit is None else max(limit - len(result), 1)
            rows = self._list_page(workspace, wanted, offset)
            for task_id, doc in rows:
                self._collect(result, result.errors, workspace, task_id, doc, strict)
            offset += len(rows)
            if limit is None:
                return result
            if len(result) >= limit or len(rows) < (wanted or 0):
                del result[max(limit, 0) :]  # limit 0 still asked for one row, to tell an empty workspace
                return result

    def _list_page(self, workspace: str, limit: int | None, offset: int) -> builtins.list[tuple[Any, ...]]:
        with self._session("list") as conn:
            params = {"ws": workspace, "limit": limit, "offset": offset}
            rows = conn.execute(self._q.task_list_page, params).fetchall()
        if not rows and offset == 0:
            raise WorkspaceNotFoundError(workspace, self._location(workspace))
        # The outer join gives one empty row for a workspace without tasks.
        return [row for row in rows if row[0] is not None]

    def _collect(
        self,
        tasks: builtins.list[Task],
        errors: builtins.list[AtlasTasksError] | None,
        workspace: str,
        task_id: str,
        doc: str,
        strict: bool,
    ) -> None:
        try:
            tasks.append(self._decode(doc, workspace, task_id))
        except (CorruptTaskError, SchemaVersionError) as exc:
            if strict or errors is None:
                raise
            errors.append(exc)

    def iter_tasks(self, workspace: str, *, errors: builtins.list[AtlasTasksError] | None = None) -> Iterator[Task]:
        """Yield the workspace's tasks one at a time, oldest created first, holding one page in memory.

        Unreadable tasks are appended to ``errors`` when a list is given; otherwise the first one is raised.
        No connection is held between pages, so a slow consumer keeps nothing locked.
        """
        N.check_workspace_name(workspace)
        after, first = 0, True
        while True:
            with self._session("iter_tasks") as conn:
                params = {"ws": workspace, "after": after, "size": _PAGE}
                rows = conn.execute(self._q.task_page, params).fetchall()
                if first and not rows:
                    self._require(conn, workspace, "")
            first = False
            for seq, task_id, doc in rows:
                page: builtins.list[Task] = []
                self._collect(page, errors, workspace, task_id, doc, strict=False)
                yield from page
                after = seq
            if len(rows) < _PAGE:
                return

    def list_summaries(self, workspace: str) -> SummaryList:
        """Summaries of the workspace's tasks, newest first, read without building full typed tasks.

        Unreadable tasks are reported in ``.errors`` exactly as ``list`` reports them.
        """
        result = SummaryList()
        for task_id, doc in self._list_page(N.check_workspace_name(workspace), None, 0):
            path = self._location(workspace, task_id)
            try:
                result.append(summarize(doc.encode(), workspace, task_id, path))
            except (CorruptTaskError, SchemaVersionError) as exc:
                result.errors.append(exc)
        return result

    # -- creating -------------------------------------------------------------------------------------------------
    def create(self, workspace: str, task: Task) -> Task:
        """Store a new task. See :meth:`atlas_tasks.store.Store.create`."""
        explicit = N.check_task_id(task.id) if task.id else ""
        N.check_workspace_name(workspace)
        new = task.model_copy(deep=True)
        now = utcnow()
        new.workspace_name = new.workspace_name or workspace
        new.created_at = new.created_at or now
        new.updated_at = now
        new.revision = 1
        new.schema_version = "1.0"
        with self._session("create", workspace, explicit, mode="write") as conn:
            if explicit:
                if not self._insert(conn, workspace, new, explicit):
                    self._require(conn, workspace, "")
                    raise TaskExistsError(workspace, explicit, self._location(workspace))
            else:
                self._insert_fresh(conn, workspace, new)
        return new

    def _insert(self, conn: Conn, workspace: str, new: Task, task_id: str) -> bool:
        """Insert ``new`` as ``task_id``; False if the id is taken (or the workspace is missing)."""
        new.id = task_id
        params = E.task_params(workspace, new, encode_task(new))
        params.update(ref=E.ref_json(new), channel=self._channel(workspace, task_id))
        return conn.execute(self._q.task_insert, params).fetchone() is not None

    def _insert_fresh(self, conn: Conn, workspace: str, new: Task) -> None:
        while True:
            if self._style_for(conn, workspace) == "uuid":
                candidates: Iterator[str] = iter([uuid_id()])
                taken: set[str] = set()
            else:
                later = timestamp_candidates()
                base = next(later)
                candidates = itertools.chain([base], later)
                taken = self._taken(conn, workspace, base)
            for candidate in candidates:
                if candidate in taken:
                    continue
                if self._insert(conn, workspace, new, candidate):
                    return
                # Refused: a concurrent creator took this id (try the next), or there is no workspace.
                self._require(conn, workspace, "")
            if self._style_for(conn, workspace) == "timestamp":
                # Over a thousand creations within one second in this workspace: wait for the next second.
                time.sleep(1.0 - (time.time() % 1.0))

    def _taken(self, conn: Conn, workspace: str, base: str) -> set[str]:
        # Every candidate is `base` or `base-NNN`, all inside [base, base + "."): '.' follows '-' in code points.
        rows = conn.execute(self._q.ids_in_range, {"ws": workspace, "low": base, "high": base + "."}).fetchall()
        return {row[0] for row in rows}

    def _style_for(self, conn: Conn, workspace: str) -> Literal["timestamp", "uuid"]:
        if self.id_style != "auto":
            return self.id_style
        if workspace in self._uuid_workspaces:
            return "uuid"
        row = conn.execute(self._q.has_uuid_ids, {"ws": workspace, "pattern": UUID_ID_SQL_RE}).fetchone()
        if row is not None and row[0]:
            self._uuid_workspaces.add(workspace)
            return "uuid"
        return "timestamp"

    # -- updating -------------------------------------------------------------------------------------------------
    def update(self, workspace: str, task: Task) -> Task:
        """Save ``task`` unless somebody saved it first. See :meth:`atlas_tasks.store.Store.update`."""
        task_id = N.check_task_id(task.id)
        N.check_workspace_name(workspace)
        # No transaction needed: the UPDATE only applies to the revision that was read and checked.
        with self._session("update", workspace, task_id, mode="write") as conn:
            row = conn.execute(self._q.task_get, {"ws": workspace, "id": task_id}).fetchone()
            current = self._current(row, workspace, task_id)
            return self._save(conn, workspace, current, task)

    def _current(self, row: tuple[Any, ...] | None, workspace: str, task_id: str) -> Task:
        if row is None:
            raise WorkspaceNotFoundError(workspace, self._location(workspace))
        if row[0] is None:
            raise TaskNotFoundError(workspace, task_id, self._location(workspace))
        return self._decode(row[0], workspace, task_id)

    def _save(self, conn: Conn, workspace: str, current: Task, task: Task) -> Task:
        """Check and write ``task`` over ``current``; return what get() would now return."""
        if task.revision != current.revision:
            raise ConflictError(workspace, task.id, task.revision, current.revision)
        check_status_change(task.id, current.status, task.status, task.transitions[len(current.transitions) :])
        stored = task.model_copy(update={"revision": current.revision + 1, "updated_at": utcnow()})
        data = encode_task(stored)
        params = E.task_params(workspace, stored, data)
        # The ref in workspace.json follows a task when it reaches a terminal status, as in the file store.
        reached_end = stored.status != current.status and is_terminal(stored.status)
        params.update(expected=current.revision, ref=E.ref_json(stored) if reached_end else None)
        params["channel"] = self._channel(workspace, task.id)
        if conn.execute(self._q.task_update, params).rowcount != 1:
            # Another writer committed after our read: report the revision it left.
            row = conn.execute(self._q.task_revision, {"ws": workspace, "id": task.id}).fetchone()
            if row is None:
                raise TaskNotFoundError(workspace, task.id, self._location(workspace))
            raise ConflictError(workspace, task.id, task.revision, int(row[0]))
        return self._decode(data.decode(), workspace, task.id)

    @contextlib.contextmanager
    def edit(self, workspace: str, task_id: str) -> Iterator[Task]:
        """Locked read-modify-write; saves on a clean exit. See :meth:`atlas_tasks.store.Store.edit`.

        The row stays locked (``FOR NO KEY UPDATE``) for the whole block. The yielded task's ``revision`` and
        ``updated_at`` are brought up to date after the save. Exceptions raised by the block itself pass through
        untouched (and nothing is saved).
        """
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        # An ExitStack rather than a `with`, so that an exception from the block is re-raised as is: it must not
        # pass through the session's error translation (it is the caller's, not the database's).
        stack = contextlib.ExitStack()
        try:
            conn = stack.enter_context(self._session("edit", workspace, task_id, mode="transaction"))
            row = conn.execute(self._q.task_lock, {"ws": workspace, "id": task_id}).fetchone()
            if row is None:
                self._require(conn, workspace, "")
                raise TaskNotFoundError(workspace, task_id, self._location(workspace))
            current = self._decode(row[0], workspace, task_id)
        except BaseException:
            stack.__exit__(*sys.exc_info())  # roll back; a database error comes out of here translated
            raise
        work = current.model_copy(deep=True)
        try:
            yield work
        except BaseException:
            with contextlib.suppress(Exception):
                stack.__exit__(*sys.exc_info())  # roll back, whatever that says: the block's error is the news
            raise
        try:
            stored = self._save(conn, workspace, current, work)
        except BaseException:
            stack.__exit__(*sys.exc_info())
            raise
        stack.close()  # commit
        work.revision, work.updated_at = stored.revision, stored.updated_at

    def modify(self, workspace: str, task_id: str, fn: Callable[[Task], object]) -> Task:
        """Locked read-modify-write with ``fn(task)``; returns the stored task."""
        with self.edit(workspace, task_id) as task:
            fn(task)
        return task

    # -- deleting -------------------------------------------------------------------------------------------------
    def delete(self, workspace: str, task_id: str) -> None:
        """Remove a task with its log and artifacts. See :meth:`atlas_tasks.store.Store.delete`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with self._session("delete", workspace, task_id, mode="write") as conn:
            params = {"ws": workspace, "id": task_id, "channel": self._channel(workspace, task_id)}
            if conn.execute(self._q.task_delete, params).rowcount == 0:
                self._require(conn, workspace, task_id)

    # -- logs -----------------------------------------------------------------------------------------------------
    def append_log(self, workspace: str, task_id: str, entry: LogEntry) -> None:
        """Append one JSON line to the task's log. See :meth:`atlas_tasks.store.Store.append_log`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        line = E.log_line(workspace, task_id, entry)
        with self._session("append_log", workspace, task_id, mode="write") as conn:
            params = {"ws": workspace, "id": task_id, "line": line, "channel": self._channel(workspace, task_id)}
            if conn.execute(self._q.log_append, params).fetchone() is None:
                self._require(conn, workspace, task_id)

    def read_log(self, workspace: str, task_id: str) -> LogLines:
        """Return the log's entries. See :meth:`atlas_tasks.store.Store.read_log`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with self._session("read_log") as conn:
            rows = conn.execute(self._q.log_read, {"ws": workspace, "id": task_id}).fetchall()
            if not rows:
                self._require(conn, workspace, task_id)
        lines = [bytes(row[0]) for row in rows if row[0] is not None]
        return E.parse_lines(lines, workspace, task_id, self._location(workspace, task_id) + " log")

    def iter_log(self, workspace: str, task_id: str) -> Iterator[dict[str, Any]]:
        """Yield the log's intact entries in order."""
        yield from self.read_log(workspace, task_id)

    def tail_log(self, workspace: str, task_id: str, lines: int, *, after: int | None = None) -> LogTail:
        """The last ``lines`` entries of the log, or with ``after`` the first ``lines`` entries after that position.

        One query by the primary key, ``ORDER BY seq DESC LIMIT`` (or ``seq > after ORDER BY seq LIMIT``): only
        the window's rows are read. Positions are line sequence numbers (1, 2, ...), so ``start`` is also the
        number of lines before the window. A position past the last line (the task was re-created since) starts
        over from the beginning. Damaged lines in the window are counted in ``skipped`` only.
        """
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        lines = max(lines, 0)
        key = {"ws": workspace, "id": task_id}
        with self._session("tail_log") as conn:
            if after is None:
                rows = conn.execute(self._q.log_tail, {**key, "limit": lines}).fetchall()
            else:
                rows = conn.execute(self._q.log_after, {**key, "after": max(after, 0), "limit": lines + 1}).fetchall()
                if rows and after > (rows[0][0] or 0):  # past the end: the log was replaced; start over
                    after = 0
                    rows = conn.execute(self._q.log_after, {**key, "after": 0, "limit": lines + 1}).fetchall()
            if not rows:
                self._require(conn, workspace, task_id)
        last = int(rows[0][0] or 0) if rows else 0
        found = sorted((int(seq), bytes(line)) for _, seq, line in rows if seq is not None)
        window = LogTail()
        if after is None:
            window.start = found[0][0] - 1 if found else last
        else:
            window.start = max(after, 0)
            window.more = len(found) > lines
            found = found[:lines]
        window.end = found[-1][0] if found else window.start
        for seq, line in found:
            record, _reason = _parse_line(line)
            if record is None:
                window.skipped += 1
            else:
                window.append(record)
                window.positions.append(seq)
        return window

    # -- artifacts ------------------------------------------------------------------------------------------------
    def save_artifact(self, workspace: str, task_id: str, filename: str, data: bytes | str) -> str:
        """Write (or replace) an artifact. See :meth:`atlas_tasks.store.Store.save_artifact`."""
        name = "/".join(N.check_plain_artifact_name(filename))
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        params = {"ws": workspace, "id": task_id, "name": name, "data": E.to_bytes(data)}
        with self._session("save_artifact", workspace, task_id, mode="write") as conn:
            if conn.execute(self._q.artifact_put, params).fetchone() is None:
                self._require(conn, workspace, task_id)
        return name

    def save_versioned_artifact(self, workspace: str, task_id: str, base_name: str, data: bytes | str) -> str:
        """Write the next version of an artifact. See :meth:`atlas_tasks.store.Store.save_versioned_artifact`."""
        parts = N.artifact_parts(base_name)
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        folder = "".join(f"{part}/" for part in parts[:-1])
        stem, dot, ext = parts[-1].rpartition(".")
        # names.versioned_name: "<stem>.<N>.<ext>", or "<leaf>.<N>" without an extension.
        prefix, suffix = (f"{folder}{stem}.", f".{ext}") if dot else (f"{folder}{parts[-1]}.", "")
        params: dict[str, Any] = {"ws": workspace, "id": task_id, "data": E.to_bytes(data)}
        params.update(prefix=prefix, suffix=suffix, plen=len(prefix), slen=len(suffix))
        while True:
            with self._session("save_versioned_artifact", workspace, task_id, mode="write") as conn:
                row = conn.execute(self._q.artifact_claim, params).fetchone()
                if row is not None:
                    return str(row[0])
                # Nothing claimed: the task is gone, or another saver took this number first (claim the next).
                self._require(conn, workspace, task_id)

    def get_artifact(self, workspace: str, task_id: str, filename: str) -> bytes:
        """Return an artifact's bytes. See :meth:`atlas_tasks.store.Store.get_artifact`."""
        name = "/".join(N.artifact_parts(filename))
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with self._session("get_artifact") as conn:
            row = conn.execute(self._q.artifact_get, {"ws": workspace, "id": task_id, "name": name}).fetchone()
            if row is None:
                self._require(conn, workspace, task_id)
        if row is None or not row[0]:
            raise ArtifactNotFoundError(workspace, task_id, filename, self._location(workspace, task_id))
        return bytes(row[1])

    def list_artifacts(self, workspace: str, task_id: str) -> builtins.list[str]:
        """Relative paths of the task's artifacts in natural order. See :meth:`Store.list_artifacts`."""
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with self._session("list_artifacts") as conn:
            rows = conn.execute(self._q.artifact_list, {"ws": workspace, "id": task_id}).fetchall()
            if not rows:
                self._require(conn, workspace, task_id)
        return sorted((row[0] for row in rows if row[0] is not None), key=_natural_key)

    def artifact_sizes(self, workspace: str, task_id: str) -> dict[str, int]:
        """Each artifact's size in bytes, by name (natural order), without reading the artifacts.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError.
        """
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with self._session("artifact_sizes") as conn:
            rows = conn.execute(self._q.artifact_sizes, {"ws": workspace, "id": task_id}).fetchall()
            if not rows:
                self._require(conn, workspace, task_id)
        found = {str(name): int(size) for name, size in rows if name is not None}
        return {name: found[name] for name in sorted(found, key=_natural_key)}

    # -- following a log ------------------------------------------------------------------------------------------
    def _channel(self, workspace: str, task_id: str) -> str:
        return _leases.log_channel(self.schema, workspace, task_id)

    def follow_log(
        self,
        workspace: str,
        task_id: str,
        *,
        until: Callable[[], bool],
        poll: float = 1.0,
        on_listen: Callable[[], None] | None = None,
        on_task: Callable[[str], None] | None = None,
        after: int = 0,
    ) -> Iterator[dict[str, Any]]:
        """Yield the log's entries, then each new one as it is committed, until ``until()`` says the run is over.

        ``after``: begin after this line (a ``tail_log`` position) instead of at the first one.

        New lines are announced by NOTIFY (sent by ``append_log`` at commit) and read by sequence number, so none
        is missed or repeated; ``until`` is asked at least every ``poll`` seconds, and once it returns true the
        lines committed before it was asked are still yielded. Holds a connection of its own while iterating.

        Every task write (create, update, edit, delete) notifies the same channel: those notifications yield no
        entry; they are passed to ``on_task`` (the new revision as text, or ``"deleted"``), called from the
        iterating thread. ``on_listen`` is called once the connection listens, before the log is first read: a
        task write committed after that call is never missed.

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, StoreUnavailableError.
        """
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        where = self._location(workspace, task_id) + " log"
        conn = self._db.dedicated("follow_log", **_leases.CLIENT_KEEPALIVES)
        with conn:
            after = max(after, 0)
            with self._db.translated("follow_log"):
                conn.execute(f'LISTEN "{self._channel(workspace, task_id)}"')  # a hex identifier, see log_channel
            if on_listen is not None:
                on_listen()
            while True:
                done = until()
                with self._db.translated("follow_log"):
                    rows = conn.execute(self._q.log_since, {"ws": workspace, "id": task_id, "after": after}).fetchall()
                    if not rows:
                        self._require(conn, workspace, task_id)
                lines = [(int(seq), bytes(line)) for seq, line in rows if seq is not None]
                if lines:
                    after = lines[-1][0]
                    yield from E.parse_lines([line for _, line in lines], workspace, task_id, where)
                elif done:
                    return
                with self._db.translated("follow_log"):
                    for notice in conn.notifies(timeout=poll, stop_after=1):
                        if notice.payload.startswith("task:") and on_task is not None:
                            on_task(notice.payload[5:])

    # -- run leases -----------------------------------------------------------------------------------------------
    def acquire_lease(self, workspace: str, task_id: str, holder: Mapping[str, Any]) -> _leases.PostgresLease:
        """Take the task's run lease (one live runner per task, across machines); see :mod:`atlas_tasks.runs`.

        The lease is an advisory lock on a connection of its own, given back by ``lease.release()`` or by the
        server when the runner dies (its connection ends).

        Raises:
            TaskRunningError: a live runner holds it (the error names its pid, host and start time).
            InvalidNameError, WorkspaceNotFoundError, TaskNotFoundError, StoreUnavailableError.
        """
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        conn = self._db.dedicated("acquire_lease", **_leases.CLIENT_KEEPALIVES)
        try:
            lease = _leases.take(conn, self._q, self.where, self.schema, workspace, task_id, holder)
        except LookupError:
            conn.close()
            with self._session("acquire_lease") as check:
                self._require(check, workspace, task_id)
            raise TaskNotFoundError(workspace, task_id, self._location(workspace)) from None
        except BaseException:
            conn.close()
            raise
        if lease is None:
            conn.close()
            raise TaskRunningError(workspace, task_id, self.lease_holder(workspace, task_id) or {})
        return lease

    def lease_holder(self, workspace: str, task_id: str) -> dict[str, Any] | None:
        """Who holds the task's run lease (pid, host, started_at), or None when no live runner does.

        ``{}`` means held by a runner that has not described itself yet. Seen the same from every machine.
        """
        N.check_workspace_name(workspace)
        N.check_task_id(task_id)
        with self._session("lease_holder") as conn:
            return _leases.holder_of(conn, self._q, self.schema, workspace, task_id)

    def run(self, workspace: str, task_id: str) -> contextlib.AbstractContextManager[Run]:
        """Run a task step by step under its run lease; see :mod:`atlas_tasks.runs`."""
        from atlas_tasks import runs

        return runs.run(self, workspace, task_id)

    # -- importing as is (copy_store) -----------------------------------------------------------------------------
    def import_workspace(self, workspace: Workspace, *, replace: bool = False) -> bool:
        """Store a workspace as given (created_at, status, metadata kept); True if it was not there before.

        Its ``tasks`` refs are not stored: they follow the workspace's tasks. An existing workspace is left as it is
        unless ``replace``.

        Raises:
            InvalidNameError.
        """
        name = N.check_workspace_name(workspace.name)
        doc = encode_workspace(workspace.model_copy(update={"tasks": []})).decode()
        with self._session("import_workspace", name, mode="transaction") as conn:
            if conn.execute(self._q.workspace_insert, {"ws": name, "doc": doc}).rowcount == 1:
                return True
            if replace:
                conn.execute(self._q.workspace_replace, {"ws": name, "doc": doc})
        return False

    def import_task(
        self,
        workspace: str,
        task: Task,
        *,
        log_lines: Iterable[LogEntry] = (),
        artifacts: Mapping[str, bytes | str] | None = None,
        ref: TaskRef | None = None,
        replace: bool = False,
    ) -> Task:
        """Store a task exactly as given — id, created_at, updated_at, revision kept — with its log and artifacts.

        All of it is one transaction: after a crash the task is either wholly there or not at all, so a copy can
        simply be run again. Mappings in ``log_lines`` are stored as given (no ``ts``/``task_id`` added);
        artifact names are kept exactly, versioned ones included.

        Args:
            workspace: an existing workspace.
            task: the task; ``task.id`` must be set.
            log_lines: its log entries, in order.
            artifacts: name → content.
            ref: its entry in the workspace's task refs (default: derived as ``create`` does).
            replace: delete a task with that id first (else TaskExistsError).

        Raises:
            InvalidNameError, WorkspaceNotFoundError, TaskExistsError, InvalidLogEntryError, LockTimeoutError.
        """
        task_id = N.check_task_id(task.id)
        N.check_workspace_name(workspace)
        lines = [E.imported_log_line(workspace, task_id, entry) for entry in log_lines]
        blobs = {"/".join(N.artifact_parts(name)): E.to_bytes(data) for name, data in (artifacts or {}).items()}
        data = encode_task(task)
        params = E.task_params(workspace, task, data)
        channel = self._channel(workspace, task_id)
        params.update(ref=E.ref_json(task, ref), channel=channel)
        with self._session("import_task", workspace, task_id, mode="transaction") as conn:
            if replace:
                conn.execute(self._q.task_delete, {"ws": workspace, "id": task_id, "channel": channel})
            if conn.execute(self._q.task_insert, params).fetchone() is None:
                self._require(conn, workspace, "")
                raise TaskExistsError(workspace, task_id, self._location(workspace))
            self._import_rows(conn, workspace, task_id, lines, blobs)
        return self._decode(data.decode(), workspace, task_id)

    def _import_rows(
        self, conn: Conn, workspace: str, task_id: str, lines: builtins.list[bytes], blobs: dict[str, bytes]
    ) -> None:
        key = {"ws": workspace, "id": task_id}
        with conn.cursor() as cur:
            if lines:
                cur.executemany(
                    self._q.log_insert, [{**key, "seq": n, "line": line} for n, line in enumerate(lines, 1)]
                )
                cur.execute(self._q.log_set_head, {**key, "last": len(lines)})
            if blobs:
                cur.executemany(self._q.artifact_insert, [{**key, "name": n, "data": d} for n, d in blobs.items()])


__all__ = ["PostgresStore"]
