"""What the file store does with damaged state: corrupt task.json, incomplete creations, newer schemas, torn logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from atlas_tasks import (
    AtlasTasksError,
    CorruptTaskError,
    FileStore,
    IncompleteTaskError,
    SchemaVersionError,
    Task,
    TaskExistsError,
)
from atlas_tasks.testing.conformance import sample_task


def task_file(home: Path, ws: str, task_id: str) -> Path:
    return home / "workspaces" / ws / "tasks" / task_id / "task.json"


@pytest.mark.parametrize(
    "garbage",
    [b"", b"{", b"\x00\x00\x00\x00", b"[1, 2]", b'{"status": "no-such-status"}', b'{"current_step": "x"}'],
)
def test_corrupt_task_json_gives_typed_error(store: FileStore, ws: str, task: Task, home: Path, garbage: bytes) -> None:
    """A damaged task.json raises CorruptTaskError naming the file, and the file is left untouched."""
    path = task_file(home, ws, task.id)
    path.write_bytes(garbage)
    with pytest.raises(CorruptTaskError) as info:
        store.get(ws, task.id)
    assert info.value.path == str(path)
    assert info.value.task_id == task.id
    assert path.read_bytes() == garbage


def test_list_reports_corrupt_tasks_instead_of_dropping(store: FileStore, ws: str, home: Path) -> None:
    """list returns the readable tasks and names every unreadable one in .errors (AC 6, never silent)."""
    good = store.create(ws, sample_task(id="good"))
    bad = store.create(ws, sample_task(id="bad"))
    task_file(home, ws, bad.id).write_text("{not json")
    listed = store.list(ws)
    assert [t.id for t in listed] == [good.id]
    assert [e.task_id for e in listed.errors] == ["bad"]
    assert isinstance(listed.errors[0], CorruptTaskError)


def test_strict_list_raises(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """list(strict=True) raises the first unreadable task's error."""
    task_file(home, ws, task.id).write_text("{")
    with pytest.raises(CorruptTaskError):
        store.list(ws, strict=True)


def test_update_refuses_to_overwrite_corrupt_task(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """update on a corrupt task raises CorruptTaskError rather than silently replacing the damaged file."""
    task_file(home, ws, task.id).write_text("{")
    with pytest.raises(CorruptTaskError):
        store.update(ws, task)
    assert task_file(home, ws, task.id).read_text() == "{"


def test_incomplete_creation_reported(store: FileStore, ws: str, home: Path) -> None:
    """A task directory without task.json (a crashed create) is reported, never adopted, and its id stays taken."""
    (home / "workspaces" / ws / "tasks" / "task-20250101-000000").mkdir(parents=True)
    listed = store.list(ws)
    assert list(listed) == []
    assert [type(e) for e in listed.errors] == [IncompleteTaskError]
    with pytest.raises(IncompleteTaskError):
        store.get(ws, "task-20250101-000000")
    with pytest.raises(TaskExistsError):
        store.create(ws, sample_task(id="task-20250101-000000"))


def test_task_json_naming_another_task_is_corrupt(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """A task.json whose id differs from its directory is reported as corrupt instead of being trusted."""
    path = task_file(home, ws, task.id)
    doc = json.loads(path.read_text())
    doc["id"] = "someone-else"
    path.write_text(json.dumps(doc))
    with pytest.raises(CorruptTaskError, match="someone-else"):
        store.get(ws, task.id)


@pytest.mark.parametrize("version", ["2.0", "10.1", 2])
def test_newer_schema_refused_and_untouched(store: FileStore, ws: str, task: Task, home: Path, version: object) -> None:
    """A task.json from a newer major format raises SchemaVersionError and is never rewritten."""
    path = task_file(home, ws, task.id)
    doc = json.loads(path.read_text())
    doc["schema_version"] = version
    doc["field_from_the_future"] = {"keep": True}
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    with pytest.raises(SchemaVersionError):
        store.get(ws, task.id)
    with pytest.raises(SchemaVersionError):
        store.modify(ws, task.id, lambda t: None)
    listed = store.list(ws)
    assert isinstance(listed.errors[0], SchemaVersionError)
    assert path.read_bytes() == before


# -- task.log ------------------------------------------------------------------------------------------------------
def log_file(home: Path, ws: str, task_id: str) -> Path:
    return home / "workspaces" / ws / "tasks" / task_id / "task.log"


def test_torn_tail_skipped_and_counted(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """A final line cut short by a crash is skipped and counted, and the intact lines are returned."""
    store.append_log(ws, task.id, {"event": "a"})
    store.append_log(ws, task.id, {"event": "b"})
    with log_file(home, ws, task.id).open("ab") as f:
        f.write(b'{"event": "c", "pa')
    lines = store.read_log(ws, task.id)
    assert [line["event"] for line in lines] == ["a", "b"]
    assert (lines.skipped, lines.torn_tail, lines.errors) == (1, True, [])


def test_nul_filled_tail_skipped(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """A NUL-filled tail (what ext4 leaves after a power cut mid-append) is a torn tail, not data."""
    store.append_log(ws, task.id, {"event": "a"})
    with log_file(home, ws, task.id).open("ab") as f:
        f.write(b"\x00" * 4096)
    lines = store.read_log(ws, task.id)
    assert [line["event"] for line in lines] == ["a"]
    assert lines.torn_tail


def test_next_append_cuts_torn_tail(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """The next append removes a torn tail first, so the new line never fuses with the remains."""
    store.append_log(ws, task.id, {"event": "a"})
    path = log_file(home, ws, task.id)
    with path.open("ab") as f:
        f.write(b'{"event": "tor' + b"\x00" * 100)
    store.append_log(ws, task.id, {"event": "b"})
    lines = store.read_log(ws, task.id)
    assert [line["event"] for line in lines] == ["a", "b"]
    assert (lines.skipped, lines.torn_tail) == (0, False)
    assert path.read_bytes().count(b"\n") == 2


def test_damaged_middle_line_reported(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """A bad line followed by good lines is damage: kept lines returned, the bad one reported with its number."""
    path = log_file(home, ws, task.id)
    path.write_bytes(b'{"event": "a"}\nGARBAGE\n{"event": "c"}\n')
    lines = store.read_log(ws, task.id)
    assert [line["event"] for line in lines] == ["a", "c"]
    assert [e.line_number for e in lines.errors] == [2]
    assert lines.skipped == 1 and not lines.torn_tail


def test_go_written_log_reads(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """zerolog lines as the Go ATLAS writes them read back as dicts."""
    log_file(home, ws, task.id).write_bytes(
        b'{"level":"info","workspace_name":"w","task_id":"t","step_name":"implement","duration_ms":12,'
        b'"ts":"2025-12-28T10:00:01.5Z","event":"step completed"}\n'
    )
    (line,) = store.read_log(ws, task.id)
    assert line["event"] == "step completed" and line["duration_ms"] == 12


def test_summaries_and_iteration_report_like_list(store: FileStore, ws: str, home: Path) -> None:
    """list_summaries and iter_tasks see the same tasks as list, and report the same unreadable ones."""
    good = store.create(ws, sample_task(id="good", description="readable"))
    store.create(ws, sample_task(id="bad"))
    task_file(home, ws, "bad").write_text("{")
    summaries = store.list_summaries(ws)
    assert [(s.id, s.description, s.total_steps, s.revision) for s in summaries] == [("good", "readable", 3, 1)]
    assert summaries[0].created_at == good.created_at
    assert [e.task_id for e in summaries.errors] == ["bad"]
    errors: list[object] = []
    assert [t.id for t in store.iter_tasks(ws, errors=errors)] == ["good"]  # type: ignore[arg-type]
    assert len(errors) == 1
    with pytest.raises(CorruptTaskError):
        list(store.iter_tasks(ws))


def test_list_limit_keeps_newest(store: FileStore, ws: str) -> None:
    """list(limit=n) returns the n newest tasks."""
    for i in range(5):
        store.create(ws, sample_task(id=f"t{i}", created_at=datetime(2026, 1, 1 + i, tzinfo=UTC)))
    assert [t.id for t in store.list(ws, limit=2)] == ["t4", "t3"]


def test_listing_task_style_ids_reports_like_get(store: FileStore, ws: str, home: Path) -> None:
    """Ids of the usual `task-…` form take the listing's short path; every odd case still ends up exactly as
    `get` reports it: corrupt JSON, a document naming another task, a newer schema, no id at all (the directory
    names it), an incomplete creation, a symlinked task directory."""
    ids = [f"task-20250101-00000{i}" for i in range(7)]
    for task_id in ids[:6]:
        store.create(ws, sample_task(id=task_id))
    good, corrupt, other, newer, anonymous, incomplete = ids[:6]
    task_file(home, ws, corrupt).write_text("{not json")
    doc = json.loads(task_file(home, ws, other).read_text())
    doc["id"] = "someone-else"
    task_file(home, ws, other).write_text(json.dumps(doc))
    doc = json.loads(task_file(home, ws, newer).read_text())
    doc["schema_version"] = "2.0"
    task_file(home, ws, newer).write_text(json.dumps(doc))
    doc = json.loads(task_file(home, ws, anonymous).read_text())
    doc["id"] = ""
    task_file(home, ws, anonymous).write_text(json.dumps(doc))
    task_file(home, ws, incomplete).unlink()
    elsewhere = home / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "task.json").write_text(task_file(home, ws, good).read_text())
    (home / "workspaces" / ws / "tasks" / ids[6]).symlink_to(elsewhere)

    listed = store.list(ws)
    assert sorted(t.id for t in listed) == [good, anonymous]
    errors = {
        Path(e.path).parent.name if isinstance(e, SchemaVersionError) else e.task_id: type(e).__name__
        for e in listed.errors
    }
    assert errors == {
        corrupt: "CorruptTaskError",
        other: "CorruptTaskError",
        newer: "SchemaVersionError",
        incomplete: "IncompleteTaskError",
        ids[6]: "CorruptTaskError",
    }
    for task_id in (corrupt, other, newer, incomplete):
        with pytest.raises(AtlasTasksError) as info:
            store.get(ws, task_id)
        assert type(info.value).__name__ == errors[task_id]
