"""PostgresStore: the Store contract on a PostgreSQL server, for agents running on many machines.

Every public behaviour is :class:`~atlas_tasks.store.base.BaseStore`'s; this class writes its primitives in SQL,
plus the few reads SQL does better with the same results (``list`` with ORDER BY/LIMIT, ``list_summaries`` in one
query, ``tail_log`` by line number, ``follow_log`` by LISTEN/NOTIFY, ``artifact_sizes`` by ``octet_length``). How
each promise is kept:

* ids: the shared candidates (:mod:`atlas_tasks.ids`), reserved by the primary key (``INSERT … ON CONFLICT DO
  NOTHING``, then the next one); the task's workspace ref is written by the same statement.
* no lost updates: ``update`` writes ``WHERE revision = <the revision it checked>`` and raises ConflictError when
  that matches nothing (no row lock needed); ``edit``/``modify`` hold the row (``FOR NO KEY UPDATE``) in one
  transaction from read to save.
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
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, cast

from psycopg_pool import AsyncConnectionPool, ConnectionPool

from atlas_tasks import names as N
from atlas_tasks._codec import decode_workspace, encode_task, encode_workspace
from atlas_tasks._gcpause import gc_paused
from atlas_tasks.backends.postgres import _collector, _leases
from atlas_tasks.backends.postgres._connections import Conn, Connections, Mode
from atlas_tasks.backends.postgres._encoding import TaskRow, refs_from_json, summary_from_text
from atlas_tasks.backends.postgres._errors import translated
from atlas_tasks.backends.postgres._queries import UUID_ID_SQL_RE, Queries
from atlas_tasks.documents.head import TaskHead
from atlas_tasks.documents.logs import encode_line, parse_line, parse_lines, to_bytes
from atlas_tasks.documents.summaries import natural_sorted, summarize
from atlas_tasks.errors import (
    ArtifactNotFoundError,
    AtlasTasksError,
    ConflictError,
    CorruptTaskError,
    CorruptWorkspaceError,
    SchemaVersionError,
    TaskExistsError,
    TaskIdRetiredError,
    TaskNotFoundError,
    TaskRunningError,
    WorkspaceExistsError,
    WorkspaceNotFoundError,
)
from atlas_tasks.ids import IdStyle, timestamp_candidates, uuid_id
from atlas_tasks.models import Task, TaskRef, Workspace
from atlas_tasks.store.base import BaseStore, decode_stored, new_tombstone, refuse_import
from atlas_tasks.store.types import (
    LogEntry,
    LogTail,
    SummaryList,
    TaskList,
    TaskSummary,
    Tombstone,
    WorkspaceList,
)
from atlas_tasks.transitions import is_terminal

#: Tasks per page of a workspace scan (``iter_tasks``): one page in memory, no connection held between pages.
_PAGE = 200
#: Tasks per chunk of a whole listing (``list`` without limit), fetched while the previous one is decoded.
_LIST_CHUNK = 2000


class _Slot:
    """A task row held for a read-modify-write (see :class:`atlas_tasks.store.base.TaskSlot`).

    ``write`` replaces the row only at the revision ``head()`` read (``WHERE revision = …``), so it is safe with or
    without a row lock: without one (``update``) a writer that committed in between makes it raise ConflictError.
    """

    def __init__(self, store: PostgresStore, conn: Conn, workspace: str, task_id: str, doc: str) -> None:
        self._store, self._conn = store, conn
        self._ws, self._id = workspace, task_id
        self._raw = doc.encode("utf-8")
        self._head: TaskHead | None = None
        self.path = store._location(workspace, task_id)

    def read(self) -> bytes:
        return self._raw

    def head(self) -> TaskHead:
        if self._head is None:
            self._head = TaskHead.parse(self._raw, self._ws, self._id, self.path)
        return self._head

    def write(self, data: bytes) -> None:
        store, ws, task_id, before = self._store, self._ws, self._id, self.head()
        row = TaskRow(data)
        params = row.params(ws, task_id, data)
        # The ref in the workspace's refs follows a task when it reaches a terminal status, as in the file store.
        reached_end = row.status != before.status and is_terminal(row.status)
        params.update(
            expected=before.revision,
            ref=row.ref(task_id).model_dump_json() if reached_end else None,
            channel=store._channel(ws, task_id),
        )
        with store._translated("update", ws, task_id):
            if self._conn.execute(store._q.task_update, params).rowcount == 1:
                return
            # Another writer committed after our read: report the revision it left.
            found = self._conn.execute(store._q.task_revision, {"ws": ws, "id": task_id}).fetchone()
        if found is None:
            raise TaskNotFoundError(ws, task_id, store._location(ws))
        raise ConflictError(ws, task_id, before.revision, int(found[0]))


class PostgresStore(BaseStore):
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
        native: talk to the server through psycopg's async connections (``pool`` may then be a
            ``psycopg_pool.AsyncConnectionPool``). Only for :func:`atlas_tasks.aio.open_async_store`, which runs
            every call in a greenlet on its event loop; called from sync code, such a store raises NotBridgedError.

    Nothing connects until the first operation; then the server is probed and the tables are created or migrated.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: ConnectionPool[Any] | AsyncConnectionPool[Any] | None = None,
        schema: str = "atlas_tasks",
        lock_timeout: float = 10.0,
        id_style: IdStyle = "auto",
        connect_timeout: float = 10.0,
        max_connections: int = 10,
        native: bool = False,
    ) -> None:
        if id_style not in ("auto", "timestamp", "uuid"):
            raise ValueError(f"id_style must be 'auto', 'timestamp' or 'uuid', not {id_style!r}")
        connections = Connections
        if native:
            from atlas_tasks.backends.postgres._bridge import BridgedConnections

            connections = BridgedConnections
        if isinstance(pool, AsyncConnectionPool) and not native:
            raise ValueError("an AsyncConnectionPool needs native=True (or aio.open_async_store(pool=...))")
        self._db = connections(
            dsn or "",
            cast(Any, pool),
            schema,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            lock_timeout=lock_timeout,
        )
        self._q = Queries.for_schema(self._db.schema)
        self.schema = self._db.schema
        self.where = self._db.where
        self.lock_timeout = lock_timeout
        self.id_style = id_style
        self._uuid_workspaces: set[str] = set()
        # workspace -> task id -> (stored summary text, the TaskSummary built from it), of the last list_summaries.
        self._summaries: dict[str, dict[str, tuple[str, TaskSummary]]] = {}

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r}, schema={self.schema!r})"

    @property
    def url(self) -> str:
        """A ``postgresql://`` URL naming this server, database and schema: ``open_store(url)`` opens it again.

        Built from the connection string (a caller's pool: the one its connections use). It holds the password when
        the connection string did: show ``atlas_tasks.store.urls.redact(url)``. Connection parameters a caller's
        pool passes outside its connection string (its ``kwargs``) are not in it.
        """
        from urllib.parse import urlencode

        from psycopg.conninfo import conninfo_to_dict

        from atlas_tasks.store.urls import split_schema

        info = self._db.conninfo
        if info.startswith(("postgresql://", "postgres://")):
            base, _ = split_schema(info)
            sep = "&" if "?" in base else "?"
            return f"{base}{sep}{urlencode({'schema': self.schema})}"
        params = {k: str(v) for k, v in conninfo_to_dict(info).items() if v is not None}
        params["schema"] = self.schema
        return "postgresql://?" + urlencode(params)

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

    def _translated(self, op: str, workspace: str, task_id: str) -> contextlib.AbstractContextManager[None]:
        """Database errors translated as a session translates them (a lock wait named), outside a session."""
        locking = f"task {task_id!r} in workspace {workspace!r}"
        return translated(op, self.where, locking=locking, lock_timeout=self.lock_timeout)

    def _location(self, workspace: str, task_id: str = "") -> str:
        return f"{self.where} schema {self.schema}, {workspace}/{task_id}" if task_id else f"{self.where}"

    def _channel(self, workspace: str, task_id: str) -> str:
        return _leases.log_channel(self.schema, workspace, task_id)

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
        return decode_stored(text.encode("utf-8"), workspace, task_id, self._location(workspace, task_id))

    # -- workspaces (primitives) ----------------------------------------------------------------------------------
    def _insert_workspace(self, workspace: Workspace, *, exist_ok: bool) -> Workspace:
        name = workspace.name
        with self._session("create_workspace", name, mode="write") as conn:
            doc = encode_workspace(workspace).decode()
            if conn.execute(self._q.workspace_insert, {"ws": name, "doc": doc}).rowcount == 1:
                return workspace
        if exist_ok:
            return self._get_workspace(name)
        raise WorkspaceExistsError(name, self._location(name))

    def _get_workspace(self, name: str) -> Workspace:
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
        ws.tasks = refs_from_json(refs)
        return ws

    def _list_workspaces(self) -> WorkspaceList:
        result = WorkspaceList()
        with self._session("list_workspaces") as conn:
            rows = conn.execute(self._q.workspace_list).fetchall()
        for name, doc, refs in rows:
            try:
                result.append(self._decode_workspace(name, doc, refs))
            except (CorruptWorkspaceError, SchemaVersionError) as exc:
                result.errors.append(exc)
        return result

    def _edit_workspace(self, name: str, change: Callable[[Workspace], None]) -> Workspace:
        with self._session("set_workspace_status", name, mode="transaction") as conn:
            row = conn.execute(self._q.workspace_lock, {"ws": name}).fetchone()
            if row is None:
                raise WorkspaceNotFoundError(name, self._location(name))
            ws = self._decode_workspace(name, row[0], None)
            change(ws)
            conn.execute(self._q.workspace_replace, {"ws": name, "doc": encode_workspace(ws).decode()})
        return self._get_workspace(name)

    # -- tasks (primitives) ---------------------------------------------------------------------------------------
    def _insert_task(
        self, workspace: str, task_id: str | None, build: Callable[[str], bytes]
    ) -> tuple[str, bytes, str]:
        if task_id is not None:
            # A transaction: the tombstone is looked for after the row is in (a fresh snapshot), so a delete that
            # committed while we waited on its row cannot slip past; finding one rolls the insert back.
            with self._session("create", workspace, task_id, mode="transaction") as conn:
                data = build(task_id)
                inserted = self._insert_row(conn, workspace, task_id, data)
                if not inserted:
                    self._require(conn, workspace, "")
                stone = self._tombstone_in(conn, workspace, task_id)
                if stone is not None:
                    raise TaskIdRetiredError(workspace, task_id, stone.deleted_at, self._location(workspace, task_id))
                if not inserted:
                    raise TaskExistsError(workspace, task_id, self._location(workspace))
                return task_id, data, self._location(workspace, task_id)
        with self._session("create", workspace, "", mode="write") as conn:
            return self._insert_fresh(conn, workspace, build)

    def _insert_row(self, conn: Conn, workspace: str, task_id: str, data: bytes) -> bool:
        """Insert the task row with its workspace ref (one statement); False if the id is taken or no workspace."""
        row = TaskRow(data)
        params = row.params(workspace, task_id, data)
        params.update(ref=row.ref(task_id).model_dump_json(), channel=self._channel(workspace, task_id))
        return conn.execute(self._q.task_insert, params).fetchone() is not None

    def _insert_fresh(self, conn: Conn, workspace: str, build: Callable[[str], bytes]) -> tuple[str, bytes, str]:
        while True:
            if self._style_for(conn, workspace) == "uuid":
                candidates: Iterator[str] = iter([uuid_id()])
                taken: set[str] = set()
            else:
                later = timestamp_candidates(self._now())
                base = next(later)
                candidates = itertools.chain([base], later)
                taken = self._taken(conn, workspace, base)
            for candidate in candidates:
                if candidate in taken:
                    continue
                data = build(candidate)
                if self._insert_row(conn, workspace, candidate, data):
                    return candidate, data, self._location(workspace, candidate)
                # Refused: a concurrent creator took this id (try the next), or there is no workspace.
                self._require(conn, workspace, "")
            if self._style_for(conn, workspace) == "timestamp":
                # Over a thousand creations within one second in this workspace: wait for the next second.
                time.sleep(1.0 - (time.time() % 1.0))

    def _taken(self, conn: Conn, workspace: str, base: str) -> set[str]:
        # Tombstoned ids count as taken: a deleted task's id is never handed out again.
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

    def _read_task(self, workspace: str, task_id: str) -> tuple[bytes, str]:
        # One round trip by the primary key; only a miss asks which of workspace and task is missing.
        rows = self._db.rows("get", self._q.task_read, (workspace, task_id))
        if not rows:
            with self._session("get") as conn:
                self._require(conn, workspace, task_id)
            raise TaskNotFoundError(workspace, task_id, self._location(workspace))  # deleted since: as not found
        return rows[0][0].encode("utf-8"), self._location(workspace, task_id)

    @contextlib.contextmanager
    def _task_for_update(self, workspace: str, task_id: str) -> Iterator[_Slot]:
        # No row lock and, on the store's own pool, no transaction: the slot's UPDATE applies only to the revision
        # that was read and checked (two round trips, as a single-statement write needs).
        with self._session("update", workspace, task_id, mode="write") as conn:
            row = conn.execute(self._q.task_get, {"ws": workspace, "id": task_id}).fetchone()
            if row is None:
                self._require(conn, workspace, task_id)
                raise TaskNotFoundError(workspace, task_id, self._location(workspace))  # deleted since: as not found
            yield _Slot(self, conn, workspace, task_id, row[0])

    @contextlib.contextmanager
    def _locked_task(self, workspace: str, task_id: str) -> Iterator[_Slot]:
        # The row stays locked (FOR NO KEY UPDATE) in one transaction from read to save. An ExitStack rather than a
        # `with`, so that an exception from the caller's block is re-raised as is: it must not pass through the
        # session's error translation (it is the caller's, not the database's); the slot translates its own.
        stack = contextlib.ExitStack()
        try:
            conn = stack.enter_context(self._session("edit", workspace, task_id, mode="transaction"))
            row = conn.execute(self._q.task_lock, {"ws": workspace, "id": task_id}).fetchone()
            if row is None:
                self._require(conn, workspace, "")
                raise TaskNotFoundError(workspace, task_id, self._location(workspace))
        except BaseException:
            stack.__exit__(*sys.exc_info())  # roll back; a database error comes out of here translated
            raise
        try:
            yield _Slot(self, conn, workspace, task_id, row[0])
        except BaseException:
            with contextlib.suppress(Exception):
                stack.__exit__(*sys.exc_info())  # roll back, whatever that says: the block's error is the news
            raise
        stack.close()  # commit

    def _scan_tasks(self, workspace: str) -> Iterator[tuple[str, bytes, str] | AtlasTasksError]:
        # Keyset pages in insertion order: stable while tasks are added or deleted, no connection held between pages.
        after, first = 0, True
        while True:
            with self._session("iter_tasks") as conn:
                rows = conn.execute(self._q.task_page, {"ws": workspace, "after": after, "size": _PAGE}).fetchall()
                if first and not rows:
                    self._require(conn, workspace, "")
            first = False
            for seq, task_id, doc in rows:
                yield task_id, doc.encode("utf-8"), self._location(workspace, task_id)
                after = seq
            if len(rows) < _PAGE:
                return

    def _delete_task(self, workspace: str, task_id: str, info: Mapping[str, Any] | None) -> None:
        params = {"ws": workspace, "id": task_id, "channel": self._channel(workspace, task_id)}
        if info is None:
            with self._session("delete", workspace, task_id, mode="write") as conn:
                if conn.execute(self._q.task_delete, params).rowcount == 0:
                    self._require(conn, workspace, task_id)
            return
        # One transaction: the document is read under the row lock (its created_at goes into the tombstone), then
        # the task is deleted and the tombstone written by one statement.
        with self._session("delete", workspace, task_id, mode="transaction") as conn:
            row = conn.execute(self._q.task_lock, params).fetchone()
            if row is None:
                self._require(conn, workspace, task_id)
                raise TaskNotFoundError(workspace, task_id, self._location(workspace))  # not reached: _require raised
            stone = new_tombstone(workspace, task_id, row[0].encode("utf-8"), info)
            info_text = json.dumps(stone.info, default=str)
            params.update(deleted_at=stone.deleted_at, created_at=stone.created_at, info=info_text)
            conn.execute(self._q.task_delete_tombstoned, params)

    def _tombstone_in(self, conn: Conn, workspace: str, task_id: str) -> Tombstone | None:
        row = conn.execute(self._q.tombstone_get, {"ws": workspace, "id": task_id}).fetchone()
        if row is None:
            return None
        return Tombstone(workspace, task_id, row[0], row[1], _info(row[2]))

    def _get_tombstone(self, workspace: str, task_id: str) -> Tombstone | None:
        with self._session("tombstone", workspace, task_id) as conn:
            return self._tombstone_in(conn, workspace, task_id)

    def _list_tombstones(self, workspace: str) -> builtins.list[Tombstone]:
        with self._session("tombstones", workspace) as conn:
            rows = conn.execute(self._q.tombstone_list, {"ws": workspace}).fetchall()
        return [Tombstone(workspace, row[0], row[1], row[2], _info(row[3])) for row in rows]

    # -- listings (SQL does the ordering) -------------------------------------------------------------------------
    def list(self, workspace: str, *, strict: bool = False, limit: int | None = None) -> TaskList:
        """Return the workspace's tasks, newest first. See :meth:`atlas_tasks.store.Store.list`.

        ``limit`` keeps only the newest ``limit`` readable tasks, and older rows are not read at all (so ``errors``
        reports the unreadable tasks among those read).
        """
        N.check_workspace_name(workspace)
        if limit is None:
            return self._list_all(workspace, strict)
        result, offset = TaskList(), 0
        while True:
            # Ask for as many rows as readable tasks are still missing (unreadable ones make us ask again).
            wanted = None if limit is None else max(limit - len(result), 1)
            rows = self._list_page(workspace, wanted, offset)
            with gc_paused(len(rows)):
                for task_id, doc in rows:
                    try:
                        result.append(self._decode(doc, workspace, task_id))
                    except (CorruptTaskError, SchemaVersionError) as exc:
                        if strict:
                            raise
                        result.errors.append(exc)
            offset += len(rows)
            if limit is None:
                return result
            if len(result) >= limit or len(rows) < (wanted or 0):
                del result[max(limit, 0) :]  # limit 0 still asked for one row, to tell an empty workspace
                return result

    def _list_all(self, workspace: str, strict: bool) -> TaskList:
        """Every task, newest first: the order from the index, then the documents by chunks, read ahead.

        The server's part (reading, decompressing and sending ~10 KB per task) is done while the previous chunk is
        decoded: a second thread fetches the chunks in order on a connection of its own (the wait on the network
        releases the GIL). As the file store's listing, this is no snapshot: a task deleted meanwhile is left out,
        a task updated meanwhile is listed as it is when its chunk is read.
        """
        ids = [row[0] for row in self._db.rows("list", self._q.task_ids_newest, (workspace,))]
        if not ids:
            self._require_workspace("list", workspace)
            return TaskList()
        chunks = [ids[i : i + _LIST_CHUNK] for i in range(0, len(ids), _LIST_CHUNK)]
        result = TaskList()
        reader = None
        try:
            if len(chunks) == 1 or not self._db.threads_ok:
                # One chunk, or a native async store (its connections belong to the loop): read in turn, lazily.
                fetched: Iterator[builtins.list[tuple[Any, ...]]] = (
                    self._db.rows("list", self._q.task_docs, (workspace, c)) for c in chunks
                )
            else:
                reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atlas-tasks-list")
                futures = [reader.submit(self._db.rows, "list", self._q.task_docs, (workspace, c)) for c in chunks]
                fetched = (future.result() for future in futures)
            with gc_paused(len(ids)):
                for chunk, rows in zip(chunks, fetched, strict=True):
                    docs = dict(rows)
                    for task_id in chunk:
                        doc = docs.get(task_id)
                        if doc is None:
                            continue  # deleted since the order was read
                        try:
                            result.append(self._decode(doc, workspace, task_id))
                        except (CorruptTaskError, SchemaVersionError) as exc:
                            if strict:
                                raise
                            result.errors.append(exc)
        finally:
            if reader is not None:
                reader.shutdown(wait=True, cancel_futures=True)
        return result

    def _list_page(self, workspace: str, limit: int | None, offset: int) -> builtins.list[tuple[Any, ...]]:
        rows = self._db.rows("list", self._q.task_list_page, (workspace, limit, offset))
        if not rows and offset == 0:
            self._require_workspace("list", workspace)
        return rows

    def _require_workspace(self, op: str, workspace: str) -> None:
        if not self._db.rows(op, self._q.workspace_exists, (workspace,)):
            raise WorkspaceNotFoundError(workspace, self._location(workspace))

    def list_summaries(self, workspace: str) -> SummaryList:
        """Summaries of the workspace's tasks, newest first (one query, ordered by the server).

        Each row brings the summary its last writer stored (``tasks.summary``, read from the document by the shared
        summary reader), or the document itself when there is none of the row's revision; a summary equal to the
        one the previous call of this store built is handed out again (summaries are frozen), so an unchanged
        task costs a string comparison. Unreadable tasks are reported in ``.errors`` exactly as ``list`` reports
        them.
        """
        N.check_workspace_name(workspace)
        rows = self._db.rows("list_summaries", self._q.task_summaries, (workspace,))
        if not rows:
            self._require_workspace("list_summaries", workspace)
        result = SummaryList()
        before = self._summaries.get(workspace, {})
        built: dict[str, tuple[str, TaskSummary]] = {}
        with gc_paused(len(rows)):
            for task_id, text, doc in rows:
                if text is None:
                    try:
                        location = self._location(workspace, task_id)
                        result.append(summarize(doc.encode(), workspace, task_id, location))
                    except (CorruptTaskError, SchemaVersionError) as exc:
                        result.errors.append(exc)
                    continue
                known = before.get(task_id)
                fresh = known is None or known[0] != text
                summary = summary_from_text(text, workspace) if fresh else known[1]  # type: ignore[index]
                built[task_id] = (text, summary)
                result.append(summary)
        # Only the last listing's summaries are kept: as much memory as the listing handed to the caller.
        self._summaries[workspace] = built
        return result

    # -- logs (primitives) ----------------------------------------------------------------------------------------
    def _append_log_line(self, workspace: str, task_id: str, line: bytes) -> None:
        # Stored without its newline, one row per line; the NOTIFY wakes `follow_log` listeners at commit.
        params = {"ws": workspace, "id": task_id, "line": line[:-1], "channel": self._channel(workspace, task_id)}
        with self._session("append_log", workspace, task_id, mode="write") as conn:
            if conn.execute(self._q.log_append, params).fetchone() is None:
                self._require(conn, workspace, task_id)

    def _read_log(self, workspace: str, task_id: str) -> tuple[bytes, str]:
        with self._session("read_log") as conn:
            rows = conn.execute(self._q.log_read, {"ws": workspace, "id": task_id}).fetchall()
            if not rows:
                self._require(conn, workspace, task_id)
        raw = b"".join(bytes(row[0]) + b"\n" for row in rows if row[0] is not None)
        return raw, self._location(workspace, task_id) + " log"

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
            record, _reason = parse_line(line)
            if record is None:
                window.skipped += 1
            else:
                window.append(record)
                window.positions.append(seq)
        return window

    # -- artifacts (primitives) -----------------------------------------------------------------------------------
    def _put_artifact(self, workspace: str, task_id: str, parts: builtins.list[str], data: bytes) -> None:
        params = {"ws": workspace, "id": task_id, "name": "/".join(parts), "data": data}
        with self._session("save_artifact", workspace, task_id, mode="write") as conn:
            if conn.execute(self._q.artifact_put, params).fetchone() is None:
                self._require(conn, workspace, task_id)

    def _put_versioned_artifact(self, workspace: str, task_id: str, parts: builtins.list[str], data: bytes) -> str:
        folder = "".join(f"{part}/" for part in parts[:-1])
        stem, dot, ext = parts[-1].rpartition(".")
        # names.versioned_name: "<stem>.<N>.<ext>", or "<leaf>.<N>" without an extension.
        prefix, suffix = (f"{folder}{stem}.", f".{ext}") if dot else (f"{folder}{parts[-1]}.", "")
        params: dict[str, Any] = {"ws": workspace, "id": task_id, "data": data}
        params.update(prefix=prefix, suffix=suffix, plen=len(prefix), slen=len(suffix))
        while True:
            with self._session("save_versioned_artifact", workspace, task_id, mode="write") as conn:
                row = conn.execute(self._q.artifact_claim, params).fetchone()
                if row is not None:
                    return str(row[0])
                # Nothing claimed: the task is gone, or another saver took this number first (claim the next).
                self._require(conn, workspace, task_id)

    def _get_artifact(self, workspace: str, task_id: str, parts: builtins.list[str]) -> bytes:
        name = "/".join(parts)
        with self._session("get_artifact") as conn:
            row = conn.execute(self._q.artifact_get, {"ws": workspace, "id": task_id, "name": name}).fetchone()
            if row is None:
                self._require(conn, workspace, task_id)
        if row is None or not row[0]:
            raise ArtifactNotFoundError(workspace, task_id, name, self._location(workspace, task_id))
        return bytes(row[1])

    def _artifact_names(self, workspace: str, task_id: str) -> builtins.list[str]:
        with self._session("list_artifacts") as conn:
            rows = conn.execute(self._q.artifact_list, {"ws": workspace, "id": task_id}).fetchall()
            if not rows:
                self._require(conn, workspace, task_id)
        return [str(row[0]) for row in rows if row[0] is not None]

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
        return {name: found[name] for name in natural_sorted(builtins.list(found))}

    # -- compaction (primitives) ----------------------------------------------------------------------------------
    def _delete_artifact(self, workspace: str, task_id: str, parts: builtins.list[str]) -> None:
        name = "/".join(parts)
        with self._session("delete_artifact", workspace, task_id, mode="write") as conn:
            if conn.execute(self._q.artifact_delete, {"ws": workspace, "id": task_id, "name": name}).fetchone():
                return
            self._require(conn, workspace, task_id)
        raise ArtifactNotFoundError(workspace, task_id, name, self._location(workspace, task_id))

    def _drop_log_head(self, workspace: str, task_id: str, head: bytes) -> bool:
        key = {"ws": workspace, "id": task_id}
        count = head.count(b"\n")  # whole lines only: one row each, stored without the newline
        with self._session("rotate_log", workspace, task_id, mode="write") as conn:
            if conn.execute(self._q.log_head_lock, key).fetchone() is None:
                self._require(conn, workspace, task_id)
                return not head  # no line was ever appended
            rows = conn.execute(self._q.log_first, {**key, "limit": count}).fetchall()
            if len(rows) != count or b"".join(bytes(line) + b"\n" for _, line in rows) != head:
                return False
            if rows:
                # Line numbers (tail_log positions) of the lines that stay are unchanged: followers are not moved.
                conn.execute(self._q.log_drop_through, {**key, "last": int(rows[-1][0])})
            return True

    # -- following a log ------------------------------------------------------------------------------------------
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
                    yield from parse_lines([line for _, line in lines], workspace, task_id, where)
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

    def lease_candidates(self, workspace: str) -> builtins.set[str] | None:
        """None: a lease lives in a server session, so each task is asked (``lease_holder``)."""
        return None

    def collector_lock(self, holder: Mapping[str, Any]) -> _collector.PostgresCollectorLock:
        """Take the schema's collector lock (an advisory lock on a connection of its own): one ``gc`` at a time.

        Raises:
            CollectorBusyError: another live collector holds it (the error names its pid, host and start).
        """
        conn = self._db.dedicated("collector_lock", **_leases.CLIENT_KEEPALIVES)
        return _collector.acquire(conn, self.where, self.schema, holder)

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

    def import_tombstone(self, tombstone: Tombstone) -> bool:
        """Record a tombstone as given (Importable); False if the id already has one.

        Raises:
            InvalidNameError, TaskExistsError (a task holds the id).
        """
        workspace = N.check_workspace_name(tombstone.workspace)
        task_id = N.check_task_id(tombstone.id)
        params = {
            "ws": workspace,
            "id": task_id,
            "deleted_at": tombstone.deleted_at,
            "created_at": tombstone.created_at,
            "info": json.dumps(tombstone.info, default=str),
        }
        with self._session("import_tombstone", workspace, task_id, mode="transaction") as conn:
            if conn.execute(self._q.tombstone_import, params).fetchone() is not None:
                return True
            if self._tombstone_in(conn, workspace, task_id) is not None:
                return False
        raise TaskExistsError(workspace, task_id, self._location(workspace, task_id))

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
        lines = [encode_line(workspace, task_id, entry, fill_defaults=False)[:-1] for entry in log_lines]
        blobs = {"/".join(N.artifact_parts(name)): to_bytes(data) for name, data in (artifacts or {}).items()}
        data = encode_task(task)
        row = TaskRow(data)
        params = row.params(workspace, task_id, data)
        channel = self._channel(workspace, task_id)
        params.update(ref=(ref or row.ref(task_id)).model_dump_json(), channel=channel)
        with self._session("import_task", workspace, task_id, mode="transaction") as conn:
            if replace:  # replaced, not deleted: the id stays in use, so no tombstone
                conn.execute(self._q.task_delete, {"ws": workspace, "id": task_id, "channel": channel})
            stone = self._tombstone_in(conn, workspace, task_id)
            if stone is not None and refuse_import(stone, task, self._location(workspace, task_id)):
                # The deleted task itself, restored: the tombstone goes in the same transaction as the task comes.
                conn.execute(self._q.tombstone_lift, {"ws": workspace, "id": task_id})
            if conn.execute(self._q.task_insert, params).fetchone() is None:
                self._require(conn, workspace, "")
                raise TaskExistsError(workspace, task_id, self._location(workspace))
            self._import_rows(conn, workspace, task_id, lines, blobs)
        return decode_stored(data, workspace, task_id, self._location(workspace, task_id))

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


def _info(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


__all__ = ["PostgresStore"]
