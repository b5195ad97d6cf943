"""store.check(): what a crash leaves behind is found, and with fix=True repaired where that is safe."""

from __future__ import annotations

import json
from pathlib import Path

from atlas_tasks import FileStore, Task
from atlas_tasks.testing.conformance import sample_task


def kinds(store: FileStore, **kwargs: object) -> list[str]:
    return sorted(f.kind for f in store.check(**kwargs).findings)  # type: ignore[arg-type]


def test_clean_store_is_ok(store: FileStore, ws: str, task: Task) -> None:
    """A store that only saw successful operations has no findings."""
    store.append_log(ws, task.id, {"event": "x"})
    report = store.check()
    assert report.findings == [] and report.ok and report.tasks_checked == 1


def test_temp_files_found_and_removed(store: FileStore, ws: str, task: Task) -> None:
    """Leftover temp files are reported and removed by fix, and the task still reads."""
    tdir = store.task_path(ws, task.id)
    (tdir / ".task.json.abc123.tmp").write_text("{partial")
    (tdir / "artifacts").mkdir()
    (tdir / "artifacts" / ".claim.ff00.tmp").write_text("x")
    assert kinds(store) == ["temp_file", "temp_file"]
    report = store.check(fix=True)
    assert report.ok
    assert kinds(store) == []
    assert store.get(ws, task.id).id == task.id


def test_empty_incomplete_task_removed(store: FileStore, ws: str) -> None:
    """An empty task directory (a crashed create) is reported and removed by fix."""
    orphan = store.workspace_path(ws) / "tasks" / "task-20250101-000000"
    orphan.mkdir(parents=True)
    assert kinds(store) == ["incomplete_task"]
    store.check(fix=True)
    assert not orphan.exists()


def test_incomplete_task_with_data_kept(store: FileStore, ws: str) -> None:
    """An incomplete task directory that holds a log is reported but never removed."""
    orphan = store.workspace_path(ws) / "tasks" / "task-20250101-000000"
    orphan.mkdir(parents=True)
    (orphan / "task.log").write_text('{"event": "x"}\n')
    report = store.check(fix=True)
    assert [f.kind for f in report.findings] == ["incomplete_task"] and not report.ok
    assert (orphan / "task.log").exists()


def test_corrupt_task_reported_not_touched(store: FileStore, ws: str, task: Task) -> None:
    """A corrupt task.json is reported and left exactly as it is, even with fix."""
    path = store.task_path(ws, task.id) / "task.json"
    path.write_text("{")
    report = store.check(fix=True)
    assert [f.kind for f in report.findings] == ["corrupt_task"] and not report.ok
    assert path.read_text() == "{"


def test_torn_log_cut(store: FileStore, ws: str, task: Task) -> None:
    """A torn log tail is reported and cut by fix, keeping every intact line."""
    store.append_log(ws, task.id, {"event": "a"})
    with store.log_path(ws, task.id).open("ab") as f:
        f.write(b'{"event": "b", "tor')
    assert kinds(store) == ["torn_log"]
    store.check(fix=True)
    assert store.log_path(ws, task.id).read_bytes().endswith(b"}\n")
    assert [line["event"] for line in store.read_log(ws, task.id)] == ["a"]
    assert kinds(store) == []


def test_refs_resynced(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """With task_refs="all", refs out of step with the tasks on disk are reported and resynced by fix."""
    store = FileStore(home, task_refs="all")
    path = home / "workspaces" / ws / "workspace.json"
    doc = json.loads(path.read_text())
    doc["tasks"] = [{"id": "task-gone", "status": "running"}]
    path.write_text(json.dumps(doc))
    assert kinds(store) == ["missing_ref", "stale_ref"]
    store.check(fix=True)
    assert [r.id for r in store.get_workspace(ws).tasks] == [task.id]


def test_stale_ref_dropped_and_no_ref_added_by_default(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """By default a task without a ref is no finding; a ref naming no task is, and fix drops it (adding none)."""
    path = home / "workspaces" / ws / "workspace.json"
    doc = json.loads(path.read_text())
    doc["tasks"] = [{"id": "task-gone", "status": "running"}]
    path.write_text(json.dumps(doc))
    assert kinds(store) == ["stale_ref"]
    store.check(fix=True)
    assert store.get_workspace(ws).tasks == []
    assert kinds(store) == []


def test_unfinished_delete_cleaned(store: FileStore, ws: str, task: Task, home: Path) -> None:
    """A task parked in the trash by a delete that crashed is reported and removed by fix."""
    trash = home / ".atlas-tasks" / "trash" / f"{ws}--{task.id}--dead"
    trash.mkdir(parents=True)
    (trash / "task.json").write_text("{}")
    assert "trash" in kinds(store)
    store.check(fix=True)
    assert not trash.exists()


def test_check_one_workspace(store: FileStore, ws: str) -> None:
    """check(workspace) looks only at that workspace."""
    other = "other-ws"
    store.create_workspace(other)
    (store.workspace_path(other) / "tasks" / "orphan").mkdir(parents=True)
    assert kinds(store, workspace=ws) == []
    assert kinds(store, workspace=other) == ["incomplete_task"]
    assert store.create(ws, sample_task()).revision == 1
