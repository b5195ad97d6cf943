"""Every SQL statement the store runs, bound to its schema once (``{s}`` is the quoted schema name).

Statements that write rows for a task select the task in the same statement (``… SELECT … FROM tasks``), so a missing
task inserts nothing instead of raising a foreign-key error that would abort the surrounding transaction.
"""

from __future__ import annotations

import dataclasses

from atlas_tasks.ids import UUID_ID_RE

#: POSIX regex form of the current Go ATLAS's ``task-<uuid4>`` ids (PostgreSQL ``~`` is anchored by hand).
UUID_ID_SQL_RE = f"^(?:{UUID_ID_RE.pattern})$"

# A version's number: what lies between "<stem>." and the extension, digits without a leading zero
# (names.version_of, in SQL).
_VERSION_DIGITS = "substr(name, %(plen)s::int + 1, length(name) - %(plen)s::int - %(slen)s::int)"


@dataclasses.dataclass(frozen=True)
class Queries:
    """The statements, as attributes; build with :meth:`for_schema`."""

    # -- workspaces -------------------------------------------------------------------------------------------------
    workspace_insert: str = (
        "INSERT INTO {s}.workspaces (name, doc) VALUES (%(ws)s, %(doc)s::json) ON CONFLICT (name) DO NOTHING"
    )
    workspace_replace: str = "UPDATE {s}.workspaces SET doc = %(doc)s::json WHERE name = %(ws)s"
    workspace_get: str = (
        "SELECT w.doc::text, (SELECT json_agg(t.ref ORDER BY t.seq) FROM {s}.tasks t WHERE t.workspace = w.name)::text"
        " FROM {s}.workspaces w WHERE w.name = %(ws)s"
    )
    workspace_lock: str = "SELECT doc::text FROM {s}.workspaces WHERE name = %(ws)s FOR NO KEY UPDATE"
    workspace_list: str = (
        "SELECT w.name, w.doc::text,"
        " (SELECT json_agg(t.ref ORDER BY t.seq) FROM {s}.tasks t WHERE t.workspace = w.name)::text"
        " FROM {s}.workspaces w ORDER BY w.name"
    )
    exists: str = (
        "SELECT EXISTS (SELECT 1 FROM {s}.workspaces WHERE name = %(ws)s),"
        " EXISTS (SELECT 1 FROM {s}.tasks WHERE workspace = %(ws)s AND id = %(id)s)"
    )

    # -- tasks ------------------------------------------------------------------------------------------------------
    # Every task write NOTIFYs the task's channel (the one its log lines are announced on) at commit, payload
    # 'task:<revision>' ('task:deleted'): a live page wakes at once instead of at its next poll. Log followers
    # re-read lines by sequence number on any notification, so this one adds no line and repeats none.
    task_insert: str = (
        "INSERT INTO {s}.tasks (workspace, id, status, created_at, updated_at, revision, doc, ref, summary,"
        " summary_revision)"
        " SELECT name, %(id)s, %(status)s, %(created_at)s, %(updated_at)s, %(revision)s, %(doc)s::json, %(ref)s::json,"
        " %(summary)s, %(summary_revision)s FROM {s}.workspaces WHERE name = %(ws)s"
        " ON CONFLICT (workspace, id) DO NOTHING RETURNING seq, pg_notify(%(channel)s, 'task:' || revision)"
    )
    # Optimistic: the revision read is the revision replaced, or nothing is written (then: ConflictError).
    task_update: str = (
        "UPDATE {s}.tasks SET status = %(status)s, updated_at = %(updated_at)s, revision = %(revision)s,"
        " doc = %(doc)s::json, ref = coalesce(%(ref)s::json, ref), summary = %(summary)s,"
        " summary_revision = %(summary_revision)s"
        " WHERE workspace = %(ws)s AND id = %(id)s AND revision = %(expected)s"
        " RETURNING pg_notify(%(channel)s, 'task:' || revision)"
    )
    # get(): the primary key alone (a join with workspaces, to tell a missing workspace in the same round trip, cost
    # ~25 µs of every read); no row: the caller asks `exists` which of the two is missing.
    task_get: str = "SELECT doc::text FROM {s}.tasks WHERE workspace = %(ws)s AND id = %(id)s"
    # The statements of Connections.rows (get and the listings) take positional parameters: a mapping costs ~20 µs
    # more per call in psycopg's Python, a tenth of a get.
    task_read: str = "SELECT doc::text FROM {s}.tasks WHERE workspace = %s AND id = %s"
    # NO KEY UPDATE, not UPDATE: it still excludes other writers and delete, but lets log appends and artifact
    # saves (which only need the task to exist) go on while a task is being edited.
    task_lock: str = "SELECT doc::text FROM {s}.tasks WHERE workspace = %(ws)s AND id = %(id)s FOR NO KEY UPDATE"
    task_revision: str = "SELECT revision FROM {s}.tasks WHERE workspace = %(ws)s AND id = %(id)s"
    task_delete: str = (
        "DELETE FROM {s}.tasks WHERE workspace = %(ws)s AND id = %(id)s"
        " RETURNING pg_notify(%(channel)s, 'task:deleted')"
    )
    # One statement: the task goes and its tombstone comes together (the last deletion of an id wins). No row
    # returned: no such task. created_at comes from the caller, who read the locked document (json's ->> would
    # refuse a document holding a \u0000 anywhere).
    task_delete_tombstoned: str = (
        "WITH gone AS (DELETE FROM {s}.tasks WHERE workspace = %(ws)s AND id = %(id)s"
        " RETURNING pg_notify(%(channel)s, 'task:deleted'))"
        " INSERT INTO {s}.tombstones (workspace, id, deleted_at, created_at, info)"
        " SELECT %(ws)s, %(id)s, %(deleted_at)s, %(created_at)s, %(info)s::json FROM gone"
        " ON CONFLICT (workspace, id) DO UPDATE SET deleted_at = excluded.deleted_at,"
        " created_at = excluded.created_at, info = excluded.info"
        " RETURNING 1"
    )
    tombstone_get: str = (
        "SELECT deleted_at, created_at, info::text FROM {s}.tombstones WHERE workspace = %(ws)s AND id = %(id)s"
    )
    tombstone_list: str = "SELECT id, deleted_at, created_at, info::text FROM {s}.tombstones WHERE workspace = %(ws)s"
    # A copied tombstone (import_tombstone): never over a live task, never over a tombstone already there.
    tombstone_import: str = (
        "INSERT INTO {s}.tombstones (workspace, id, deleted_at, created_at, info)"
        " SELECT %(ws)s, %(id)s, %(deleted_at)s, %(created_at)s, %(info)s::json"
        " WHERE NOT EXISTS (SELECT 1 FROM {s}.tasks WHERE workspace = %(ws)s AND id = %(id)s)"
        " ON CONFLICT (workspace, id) DO NOTHING RETURNING 1"
    )
    tombstone_lift: str = "DELETE FROM {s}.tombstones WHERE workspace = %(ws)s AND id = %(id)s"
    # Newest first, in the order of the index tasks_newest_first (migration 4: NULLS LAST, as listings put tasks
    # without created_at), so LIMIT reads only its rows. LIMIT NULL is no limit. No row: the caller asks whether the
    # workspace exists.
    task_list_page: str = (
        "SELECT id, doc::text FROM {s}.tasks WHERE workspace = %s"
        " ORDER BY created_at DESC NULLS LAST, id DESC LIMIT %s::bigint OFFSET %s::bigint"
    )
    # list_summaries: the summary a writer stored (migration 4) when it is of the row's current revision, else the
    # document (a row written before migration 4's backfill, or by an older atlas-tasks still running through an
    # upgrade, which updates revision but not summary): exact either way, and the document travels only then.
    task_summaries: str = (
        "SELECT id, CASE WHEN summary_revision = revision THEN summary END,"
        " CASE WHEN summary_revision IS DISTINCT FROM revision OR summary IS NULL THEN doc::text END"
        " FROM {s}.tasks WHERE workspace = %s ORDER BY created_at DESC NULLS LAST, id DESC"
    )
    workspace_exists: str = "SELECT 1 FROM {s}.workspaces WHERE name = %s"
    # A whole listing: the order first (ids only, from the index: no document is read), then the documents in
    # chunks by primary key, fetched while the previous chunk is decoded.
    task_ids_newest: str = "SELECT id FROM {s}.tasks WHERE workspace = %s ORDER BY created_at DESC NULLS LAST, id DESC"
    task_docs: str = "SELECT id, doc::text FROM {s}.tasks WHERE workspace = %s AND id = ANY(%s)"
    # Keyset pages in insertion order: stable while tasks are added or deleted, no connection held between pages.
    task_page: str = (
        "SELECT seq, id, doc::text FROM {s}.tasks WHERE workspace = %(ws)s AND seq > %(after)s::bigint"
        " ORDER BY seq LIMIT %(size)s::bigint"
    )
    ids_in_range: str = (
        "SELECT id FROM {s}.tasks WHERE workspace = %(ws)s AND id >= %(low)s AND id < %(high)s"
        " UNION ALL SELECT id FROM {s}.tombstones WHERE workspace = %(ws)s AND id >= %(low)s AND id < %(high)s"
    )
    has_uuid_ids: str = "SELECT EXISTS (SELECT 1 FROM {s}.tasks WHERE workspace = %(ws)s AND id ~ %(pattern)s)"

    # -- logs -------------------------------------------------------------------------------------------------------
    log_append: str = (
        "WITH task AS (SELECT workspace, id FROM {s}.tasks WHERE workspace = %(ws)s AND id = %(id)s FOR KEY SHARE),"
        " head AS (INSERT INTO {s}.log_heads AS h (workspace, task_id, last_seq) SELECT workspace, id, 1 FROM task"
        " ON CONFLICT (workspace, task_id) DO UPDATE SET last_seq = h.last_seq + 1 RETURNING last_seq)"
        " , line AS (INSERT INTO {s}.log_lines (workspace, task_id, seq, line)"
        "   SELECT %(ws)s, %(id)s, last_seq, %(line)s FROM head RETURNING seq)"
        # Sent at commit, to `logs --follow` listeners of this task only (the channel is the task's).
        " SELECT seq, pg_notify(%(channel)s, seq::text) FROM line"
    )
    # Lines after `after`, for a follower. No row: no task; one row with NULLs: no new lines.
    log_since: str = (
        "SELECT l.seq, l.line FROM {s}.tasks t LEFT JOIN {s}.log_lines l"
        " ON l.workspace = t.workspace AND l.task_id = t.id AND l.seq > %(after)s::bigint"
        " WHERE t.workspace = %(ws)s AND t.id = %(id)s ORDER BY l.seq"
    )
    # No row: no task; one row with a NULL line: a task without log lines.
    log_read: str = (
        "SELECT l.line FROM {s}.tasks t LEFT JOIN {s}.log_lines l ON l.workspace = t.workspace AND l.task_id = t.id"
        " WHERE t.workspace = %(ws)s AND t.id = %(id)s ORDER BY l.seq"
    )
    # tail_log: the task's last line number and a window of its lines, read by the primary key (an index scan that
    # stops after `limit` rows, whatever the log's length). No row: no task; one row with NULLs: an empty window.
    log_tail: str = (
        "SELECT h.last_seq, l.seq, l.line FROM {s}.tasks t"
        " LEFT JOIN {s}.log_heads h ON h.workspace = t.workspace AND h.task_id = t.id"
        " LEFT JOIN LATERAL (SELECT seq, line FROM {s}.log_lines WHERE workspace = t.workspace AND task_id = t.id"
        "   ORDER BY seq DESC LIMIT %(limit)s::bigint) l ON true"
        " WHERE t.workspace = %(ws)s AND t.id = %(id)s"
    )
    log_after: str = (
        "SELECT h.last_seq, l.seq, l.line FROM {s}.tasks t"
        " LEFT JOIN {s}.log_heads h ON h.workspace = t.workspace AND h.task_id = t.id"
        " LEFT JOIN LATERAL (SELECT seq, line FROM {s}.log_lines WHERE workspace = t.workspace AND task_id = t.id"
        "   AND seq > %(after)s::bigint ORDER BY seq LIMIT %(limit)s::bigint) l ON true"
        " WHERE t.workspace = %(ws)s AND t.id = %(id)s"
    )
    log_set_head: str = "INSERT INTO {s}.log_heads (workspace, task_id, last_seq) VALUES (%(ws)s, %(id)s, %(last)s)"
    log_insert: str = (
        "INSERT INTO {s}.log_lines (workspace, task_id, seq, line) VALUES (%(ws)s, %(id)s, %(seq)s, %(line)s)"
    )

    # -- artifacts --------------------------------------------------------------------------------------------------
    artifact_put: str = (
        "INSERT INTO {s}.artifacts (workspace, task_id, name, data)"
        " SELECT workspace, id, %(name)s, %(data)s FROM {s}.tasks WHERE workspace = %(ws)s AND id = %(id)s"
        " ON CONFLICT (workspace, task_id, name) DO UPDATE SET data = EXCLUDED.data, updated_at = now()"
        " RETURNING name"
    )
    # Claims version max+1 of one base name: never below a higher version, never an existing one (the primary key;
    # a concurrent claimer of the same number makes this insert nothing, and the caller claims again).
    artifact_claim: str = (
        "INSERT INTO {s}.artifacts (workspace, task_id, name, data)"  # noqa: S608 - constant text, values are bound
        " SELECT t.workspace, t.id, %(prefix)s || (coalesce(v.highest, 0) + 1)::text || %(suffix)s, %(data)s"
        " FROM {s}.tasks t, (SELECT max(" + _VERSION_DIGITS + "::numeric) AS highest FROM {s}.artifacts"
        "   WHERE workspace = %(ws)s AND task_id = %(id)s"
        "   AND left(name, %(plen)s::int) = %(prefix)s AND right(name, %(slen)s::int) = %(suffix)s"
        "   AND length(name) > %(plen)s::int + %(slen)s::int"
        "   AND " + _VERSION_DIGITS + " ~ '^[1-9][0-9]*$') v"
        " WHERE t.workspace = %(ws)s AND t.id = %(id)s"
        " ON CONFLICT (workspace, task_id, name) DO NOTHING RETURNING name"
    )
    artifact_get: str = (
        "SELECT a.name IS NOT NULL, a.data FROM {s}.tasks t"
        " LEFT JOIN {s}.artifacts a ON a.workspace = t.workspace AND a.task_id = t.id AND a.name = %(name)s"
        " WHERE t.workspace = %(ws)s AND t.id = %(id)s"
    )
    artifact_list: str = (
        "SELECT a.name FROM {s}.tasks t"
        " LEFT JOIN {s}.artifacts a ON a.workspace = t.workspace AND a.task_id = t.id"
        " WHERE t.workspace = %(ws)s AND t.id = %(id)s"
    )
    artifact_sizes: str = (
        "SELECT a.name, octet_length(a.data) FROM {s}.tasks t"
        " LEFT JOIN {s}.artifacts a ON a.workspace = t.workspace AND a.task_id = t.id"
        " WHERE t.workspace = %(ws)s AND t.id = %(id)s"
    )
    artifact_insert: str = (
        "INSERT INTO {s}.artifacts (workspace, task_id, name, data) VALUES (%(ws)s, %(id)s, %(name)s, %(data)s)"
    )

    # -- compaction -------------------------------------------------------------------------------------------------
    artifact_delete: str = (
        "DELETE FROM {s}.artifacts WHERE workspace = %(ws)s AND task_id = %(id)s AND name = %(name)s RETURNING name"
    )
    # The row every append_log upserts: locked, no line can be appended until the rotation commits.
    log_head_lock: str = "SELECT last_seq FROM {s}.log_heads WHERE workspace = %(ws)s AND task_id = %(id)s FOR UPDATE"
    log_first: str = (
        "SELECT seq, line FROM {s}.log_lines WHERE workspace = %(ws)s AND task_id = %(id)s"
        " ORDER BY seq LIMIT %(limit)s::bigint"
    )
    log_drop_through: str = (
        "DELETE FROM {s}.log_lines WHERE workspace = %(ws)s AND task_id = %(id)s AND seq <= %(last)s::bigint"
    )

    # -- run leases -------------------------------------------------------------------------------------------------
    lease_try: str = "SELECT pg_try_advisory_lock(%(key)s::bigint)"
    lease_unlock: str = "SELECT pg_advisory_unlock(%(key)s::bigint)"
    # Describe the holder; no row: no such task (the lock is then given back).
    lease_describe: str = (
        "INSERT INTO {s}.run_leases (workspace, task_id, holder, backend_pid)"
        " SELECT workspace, id, %(holder)s::json, pg_backend_pid() FROM {s}.tasks"
        " WHERE workspace = %(ws)s AND id = %(id)s"
        " ON CONFLICT (workspace, task_id) DO UPDATE"
        " SET holder = EXCLUDED.holder, backend_pid = EXCLUDED.backend_pid, acquired_at = now()"
        " RETURNING 1"
    )
    lease_forget: str = (
        "DELETE FROM {s}.run_leases WHERE workspace = %(ws)s AND task_id = %(id)s AND backend_pid = pg_backend_pid()"
    )
    # Held iff some server process holds the advisory lock (a bigint key shows as classid = high 32 bits, objid =
    # low 32 bits, objsubid = 1). The description counts only if that same process wrote it.
    lease_holder: str = (
        "SELECT CASE WHEN r.backend_pid = l.pid THEN r.holder::text END FROM pg_locks l"
        " LEFT JOIN {s}.run_leases r ON r.workspace = %(ws)s AND r.task_id = %(id)s"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND l.classid = %(hi)s::bigint::oid AND l.objid = %(lo)s::bigint::oid"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )

    # -- sessions ---------------------------------------------------------------------------------------------------
    set_lock_timeout: str = "SELECT set_config('lock_timeout', %(timeout)s, true)"

    @classmethod
    def for_schema(cls, schema: str) -> Queries:
        """The statements with ``{s}`` replaced by the (already checked) schema name, quoted."""
        quoted = f'"{schema}"'
        return cls(**{f.name: str(f.default).format(s=quoted) for f in dataclasses.fields(cls)})


__all__ = ["UUID_ID_SQL_RE", "Queries"]
