"""PostgresStore beyond the conformance suite: parity with the file store on edge cases, import, ids, lifecycle."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from atlas_tasks import (
    AtlasTasksError,
    FileStore,
    InvalidLogEntryError,
    SchemaVersionError,
    StoreUnavailableError,
    TaskExistsError,
    TaskStatus,
    WorkspaceNotFoundError,
)
from atlas_tasks._codec import decode_task, encode_task
from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.ids import TIMESTAMP_ID_RE, UUID_ID_RE
from atlas_tasks.models import TaskRef, Workspace, WorkspaceStatus
from atlas_tasks.store import Store
from atlas_tasks.testing.conformance import sample_task

# -- parity: the same scenario on both stores gives the same observable result -----------------------------------


def _refs_scenario(store: Store, ws: str) -> list[tuple[str, str, bool]]:
    store.create_workspace(ws)
    for name in ("t-a", "t-b", "t-c"):
        store.create(ws, sample_task(id=name))
    b = store.get(ws, "t-b")
    b.transition(TaskStatus.VALIDATING)  # not terminal: the file store leaves the ref's status alone
    store.update(ws, b)
    store.modify(ws, "t-c", lambda t: t.transition(TaskStatus.ABANDONED))
    store.delete(ws, "t-a")
    store.create(ws, sample_task(id="t-d"))  # created after the delete (t-a's id is retired): its ref goes last
    return [(r.id, str(r.status), r.completed_at is not None) for r in store.get_workspace(ws).tasks]


def _log_scenario(store: Store, ws: str) -> list[Any]:
    store.create_workspace(ws)
    task = store.create(ws, sample_task())
    outcomes = []
    for entries in (['{"a": 1}', "[1]", '{"b": 2}'], ['"just a string"']):
        for entry in entries:
            store.append_log(ws, task.id, entry)
        lines = store.read_log(ws, task.id)
        outcomes.append((list(lines), lines.skipped, lines.torn_tail, [e.line_number for e in lines.errors]))
    return outcomes


@pytest.mark.parametrize("scenario", [_refs_scenario, _log_scenario])
def test_same_result_as_the_file_store(
    scenario: Callable[[Store, str], Any], pg_store: PostgresStore, tmp_path: Path
) -> None:
    """Workspace refs and logs holding non-object JSON lines come out exactly as the file store gives them (refs:
    PostgreSQL keeps one per task, as the file store with task_refs="all")."""
    ws = f"ws-parity-{secrets.token_hex(4)}"
    assert scenario(pg_store, ws) == scenario(FileStore(tmp_path / "home", task_refs="all"), ws)


# -- ids ----------------------------------------------------------------------------------------------------------


def test_auto_ids_follow_a_uuid_workspace(pg_store: PostgresStore, pg_ws: str) -> None:
    """In a workspace that already has a task-<uuid> task, auto ids are uuid-form too (the current Go ATLAS's)."""
    assert TIMESTAMP_ID_RE.fullmatch(pg_store.create(pg_ws, sample_task()).id)
    pg_store.create(pg_ws, sample_task(id="task-3f2b8c1e-9a4d-4e7b-8c21-5d6f0a9b7e13"))
    assert UUID_ID_RE.fullmatch(pg_store.create(pg_ws, sample_task()).id)


@pytest.mark.parametrize(("style", "pattern"), [("uuid", UUID_ID_RE), ("timestamp", TIMESTAMP_ID_RE)])
def test_forced_id_style(make_store: Callable[..., PostgresStore], pg_ws: str, style: str, pattern: Any) -> None:
    """id_style="uuid" or "timestamp" forces that form of id."""
    assert pattern.fullmatch(make_store(id_style=style).create(pg_ws, sample_task()).id)


def test_list_ties_by_id_descending(pg_store: PostgresStore, pg_ws: str) -> None:
    """Tasks created at the same instant list by id, descending (code point order, as in the file store)."""
    same = datetime(2026, 3, 1, tzinfo=UTC)
    for name in ("b-1", "B-2", "a-3", "b-10"):
        pg_store.create(pg_ws, sample_task(id=name, created_at=same))
    assert [t.id for t in pg_store.list(pg_ws)] == sorted(["b-1", "B-2", "a-3", "b-10"], reverse=True)


# -- documents ----------------------------------------------------------------------------------------------------


def test_go_style_task_round_trips(pg_store: PostgresStore, pg_ws: str) -> None:
    """A task read with the Go ATLAS's key names is stored and read back with them, byte for byte."""
    go_task = decode_task(encode_task(sample_task(id="go-1").with_key_style("go")))
    created = pg_store.create(pg_ws, go_task)
    got = pg_store.get(pg_ws, "go-1")
    assert got.key_style == "go" and b'"workspace_id"' in encode_task(got)
    assert encode_task(got) == encode_task(created)


def test_log_entries_keep_nul_and_unicode(pg_store: PostgresStore, pg_ws: str) -> None:
    """Log entries with NUL characters and non-ASCII text read back unchanged."""
    task = pg_store.create(pg_ws, sample_task())
    pg_store.append_log(pg_ws, task.id, {"event": "a\x00b", "text": "ünïcode ✓"})
    (line,) = pg_store.read_log(pg_ws, task.id)
    assert (line["event"], line["text"]) == ("a\x00b", "ünïcode ✓")


# -- artifacts ----------------------------------------------------------------------------------------------------


def test_versions_never_refill_a_gap(pg_store: PostgresStore, pg_ws: str) -> None:
    """With versions 1 and 3 present (2 missing), the next version is 4, never 2."""
    task = pg_store.create(pg_ws, sample_task())
    pg_store.delete(pg_ws, task.id)
    pg_store.import_task(pg_ws, task, artifacts={"validation.1.json": b"1", "validation.3.json": b"3"})
    assert pg_store.save_versioned_artifact(pg_ws, task.id, "validation.json", b"4") == "validation.4.json"


def test_versions_of_similar_names_are_counted_apart(pg_store: PostgresStore, pg_ws: str) -> None:
    """Versions of validation.json ignore validation.txt, validation.json.bak and validation.01.json."""
    task = pg_store.create(pg_ws, sample_task())
    pg_store.delete(pg_ws, task.id)
    others = {
        "validation.7.txt": b"",
        "validation.json.bak": b"",
        "validation.01.json": b"",
        "sub/validation.9.json": b"",
    }
    pg_store.import_task(pg_ws, task, artifacts=others)
    assert pg_store.save_versioned_artifact(pg_ws, task.id, "validation.json", b"x") == "validation.1.json"


# -- import_task --------------------------------------------------------------------------------------------------


def test_import_keeps_the_task_as_is(pg_store: PostgresStore, pg_ws: str) -> None:
    """import_task keeps id, revision, timestamps and extra keys, stores log mappings without adding keys."""
    task = sample_task(id="imported", revision=7, created_at=datetime(2025, 1, 2, tzinfo=UTC), zz_extra={"k": 1})
    task.updated_at = datetime(2025, 1, 3, tzinfo=UTC)
    ref = TaskRef(id="imported", status="pending")
    pg_store.import_task(
        pg_ws, task, log_lines=[{"event": "old"}, '{"event": "older"}'], ref=ref, artifacts={"a/b.md": "x"}
    )
    got = pg_store.get(pg_ws, "imported")
    assert encode_task(got) == encode_task(task) and got.model_extra == {"zz_extra": {"k": 1}}
    assert list(pg_store.read_log(pg_ws, "imported")) == [{"event": "old"}, {"event": "older"}]
    assert pg_store.list_artifacts(pg_ws, "imported") == ["a/b.md"]
    assert [str(r.status) for r in pg_store.get_workspace(pg_ws).tasks] == ["pending"]
    assert pg_store.update(pg_ws, got).revision == 8


def test_import_is_all_or_nothing(pg_store: PostgresStore, pg_ws: str) -> None:
    """A bad log line refuses the whole import: no task, no artifacts are left behind."""
    with pytest.raises(InvalidLogEntryError):
        pg_store.import_task(pg_ws, sample_task(id="half"), log_lines=["{}", "not json"], artifacts={"x.md": b"x"})
    assert [t.id for t in pg_store.list(pg_ws)] == []


def test_import_refuses_an_existing_task_unless_replacing(pg_store: PostgresStore, pg_ws: str) -> None:
    """Importing a taken id raises TaskExistsError; with replace=True the old task, log and artifacts go first."""
    first = pg_store.create(pg_ws, sample_task(id="dup"))
    pg_store.append_log(pg_ws, "dup", {"event": "old"})
    with pytest.raises(TaskExistsError):
        pg_store.import_task(pg_ws, first)
    pg_store.import_task(pg_ws, first.model_copy(update={"description": "new"}), replace=True)
    assert pg_store.get(pg_ws, "dup").description == "new"
    assert list(pg_store.read_log(pg_ws, "dup")) == []


def test_import_into_missing_workspace(pg_store: PostgresStore) -> None:
    """import_task into a workspace that does not exist raises WorkspaceNotFoundError."""
    with pytest.raises(WorkspaceNotFoundError):
        pg_store.import_task("ws-nowhere", sample_task(id="x"))


def test_import_workspace_keeps_fields(pg_store: PostgresStore) -> None:
    """import_workspace keeps created_at, status and metadata; a second import changes nothing unless replacing."""
    ws = Workspace(name="ws-imported", status=WorkspaceStatus.PAUSED, created_at=datetime(2024, 5, 1, tzinfo=UTC))
    assert pg_store.import_workspace(ws) is True
    assert pg_store.import_workspace(ws.model_copy(update={"branch": "other"})) is False
    got = pg_store.get_workspace("ws-imported")
    assert (got.status, got.created_at, got.branch) == (WorkspaceStatus.PAUSED, ws.created_at, "")
    pg_store.import_workspace(ws.model_copy(update={"branch": "other"}), replace=True)
    assert pg_store.get_workspace("ws-imported").branch == "other"


# -- workspaces and lifecycle -------------------------------------------------------------------------------------


def test_set_workspace_status(pg_store: PostgresStore, pg_ws: str) -> None:
    """set_workspace_status stores a known status and refuses an unknown one with ValueError."""
    assert str(pg_store.set_workspace_status(pg_ws, "paused").status) == "paused"
    assert str(pg_store.get_workspace(pg_ws).status) == "paused"
    with pytest.raises(ValueError, match="sleeping"):
        pg_store.set_workspace_status(pg_ws, "sleeping")


def test_closed_store_raises_a_typed_error(pg_url: str, pg_schema: str) -> None:
    """A store used after close() raises StoreUnavailableError, not a psycopg pool error."""
    with PostgresStore(pg_url, schema=pg_schema) as store:
        store.list_workspaces()
    with pytest.raises(StoreUnavailableError):
        store.list_workspaces()


def test_password_never_in_repr(pg_schema: str) -> None:
    """repr() and .where name the server without the password (nothing connects to build them)."""
    store = PostgresStore("postgresql://u:topsecret@db.invalid:5432/atlas", schema=pg_schema)
    assert "topsecret" not in repr(store) and store.where == "postgresql://u@db.invalid:5432/atlas"
    store.close()


# -- listing for dashboards: list(limit=), iter_tasks, list_summaries ---------------------------------------------


def _dated_tasks(store: Store, ws: str) -> None:
    store.create_workspace(ws)
    base = datetime(2026, 2, 1, tzinfo=UTC)
    for n in range(7):
        task = sample_task(id=f"t-{n}", created_at=base + timedelta(hours=n % 4), description=f"nul\x00{n}")
        store.create(ws, task)


def test_limit_and_summaries_match_the_file_store(pg_store: PostgresStore, tmp_path: Path) -> None:
    """list(limit=) and list_summaries give the file store's tasks and order (documents holding NUL included)."""
    ws, files = f"ws-dash-{secrets.token_hex(4)}", FileStore(tmp_path / "home")
    _dated_tasks(pg_store, ws)
    _dated_tasks(files, ws)
    assert [t.id for t in pg_store.list(ws, limit=3)] == [t.id for t in files.list(ws, limit=3)]
    assert pg_store.list(ws, limit=0) == [] and len(pg_store.list(ws, limit=100)) == 7

    def fields(s: Any) -> tuple[Any, ...]:
        return (s.id, s.workspace, s.status, s.template, s.description, s.current_step, s.total_steps, s.created_at)

    assert [fields(s) for s in pg_store.list_summaries(ws)] == [fields(s) for s in files.list_summaries(ws)]


def _spoil(pg_conn: psycopg.Connection[Any], schema: str, ws: str, task_id: str) -> None:
    pg_conn.execute(
        f'UPDATE "{schema}".tasks SET doc = (doc::jsonb || \'{{"schema_version": "9.0"}}\')::json '
        "WHERE workspace = %s AND id = %s",
        [ws, task_id],
    )


def test_limit_skips_unreadable_tasks(pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]) -> None:
    """With the newest task unreadable, list(limit=2) still returns two readable tasks and reports the other."""
    for n in range(4):
        pg_store.create(pg_ws, sample_task(id=f"t-{n}", created_at=datetime(2026, 1, 1 + n, tzinfo=UTC)))
    _spoil(pg_conn, pg_store.schema, pg_ws, "t-3")
    listed = pg_store.list(pg_ws, limit=2)
    assert [t.id for t in listed] == ["t-2", "t-1"] and [type(e) for e in listed.errors] == [SchemaVersionError]
    summaries = pg_store.list_summaries(pg_ws)
    assert [s.id for s in summaries] == ["t-2", "t-1", "t-0"] and len(summaries.errors) == 1


def test_iter_tasks_streams_every_page(pg_store: PostgresStore, pg_ws: str, pg_conn: psycopg.Connection[Any]) -> None:
    """iter_tasks yields every task across pages; an unreadable one is collected in errors, or raised without."""
    created = {pg_store.create(pg_ws, sample_task(id=f"t-{n:03d}")).id for n in range(230)}
    _spoil(pg_conn, pg_store.schema, pg_ws, "t-100")
    errors: list[AtlasTasksError] = []
    assert {t.id for t in pg_store.iter_tasks(pg_ws, errors=errors)} == created - {"t-100"}
    assert [type(e) for e in errors] == [SchemaVersionError]
    with pytest.raises(SchemaVersionError):
        list(pg_store.iter_tasks(pg_ws))


def test_iter_tasks_of_missing_workspace(pg_store: PostgresStore) -> None:
    """iter_tasks over a workspace that does not exist raises WorkspaceNotFoundError."""
    with pytest.raises(WorkspaceNotFoundError):
        next(pg_store.iter_tasks("ws-nowhere"))
