"""`atlas-tasks pin`, `unpin` and `gc`: the commands, their --json documents and their refusals."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import FileStore, TaskStatus, Transition
from atlas_tasks.cli import app
from atlas_tasks.errors import TaskNotFoundError
from atlas_tasks.models import Task, utcnow
from atlas_tasks.store import Store
from atlas_tasks.testing.conformance import sample_task
from store_kinds import cli_args

ALL_KINDS = ("file", "memory", "postgres")


def cli(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, [*cli_args(store), *args])


def done(store: Store, ws: str, days: int) -> Task:
    when = utcnow() - timedelta(days=days)
    transitions = [Transition(from_status="running", to_status="completed", timestamp=when)]
    return store.create(ws, sample_task(status=TaskStatus.COMPLETED, completed_at=when, transitions=transitions))


@pytest.mark.stores(*ALL_KINDS)
def test_gc_without_a_filter_is_refused(store: Store, ws: str) -> None:
    """gc with neither --older-than nor --keep-last exits 2 and deletes nothing."""
    task = done(store, ws, 400)
    result = cli(store, "gc", "--yes")
    assert result.exit_code == 2 and "gc needs --older-than or --keep-last" in result.output
    assert store.get(ws, task.id).id == task.id


@pytest.mark.stores(*ALL_KINDS)
def test_gc_json_dry_run_then_real_run(store: Store, ws: str) -> None:
    """--dry-run --json lists what a real run then deletes, with the same bytes; the pinned task is kept."""
    old, young, kept = done(store, ws, 40), done(store, ws, 2), done(store, ws, 50)
    assert cli(store, "pin", ws, kept.id, "--reason", "audit").exit_code == 0
    dry = cli(store, "gc", "--dry-run", "--older-than", "30d", "--json")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)
    assert [d["id"] for d in planned["deleted"]] == [old.id] and planned["dry_run"] is True
    assert {s["id"]: s["reason"] for s in planned["skipped"]} == {young.id: "recent", kept.id: "pinned"}
    real = json.loads(cli(store, "gc", "--older-than", "30d", "--json", "--yes").output)
    assert real["bytes_freed"] == planned["bytes_freed"] > 0 and real["deleted"] == planned["deleted"]
    with pytest.raises(TaskNotFoundError):
        store.get(ws, old.id)


@pytest.mark.stores("file")
def test_gc_without_yes_and_no_terminal_deletes_nothing(store: Store, ws: str) -> None:
    """A real gc with nobody to confirm it (stdin not a terminal) and no --yes exits 1 and deletes nothing."""
    task = done(store, ws, 40)
    result = cli(store, "gc", "--older-than", "30d")
    assert result.exit_code == 1 and "add --yes" in result.output
    assert store.get(ws, task.id).id == task.id


@pytest.mark.stores("file")
def test_gc_rejects_a_status_it_never_collects(store: Store, ws: str) -> None:
    """--status running is one error line, no traceback, and nothing is deleted."""
    result = cli(store, "gc", "--keep-last", "0", "--status", "running", "--yes")
    assert result.exit_code != 0 and result.output.startswith("error:") and "Traceback" not in result.output


@pytest.mark.stores(*ALL_KINDS)
def test_pin_shows_in_show_and_list_json_and_unpin_removes_it(store: Store, ws: str) -> None:
    """A pin is in `show`, in the `list --json` document, and gone after unpin."""
    task = done(store, ws, 1)
    assert cli(store, "pin", ws, task.id, "-r", "legal hold").exit_code == 0
    shown = cli(store, "show", ws, task.id)
    assert "pinned" in shown.output and "legal hold" in shown.output
    listed = json.loads(cli(store, "list", ws, "--json").output)
    assert [(p["task_id"], p["pin"]["reason"]) for p in listed["pinned"]] == [(task.id, "legal hold")]
    assert cli(store, "unpin", ws, task.id).exit_code == 0
    assert "pinned" not in cli(store, "show", ws, task.id).output
    assert json.loads(cli(store, "list", ws, "--json").output)["pinned"] == []


@pytest.mark.stores("file", "memory")
def test_gc_while_another_collects_is_one_error_line(store: Store, ws: str) -> None:
    """A second gc exits 1 with one `error:` line naming the collector that runs, and deletes nothing."""
    task = done(store, ws, 40)
    lock = store.collector_lock({"pid": 777, "host": "gc-host", "since": "earlier"})  # type: ignore[attr-defined]
    try:
        result = cli(store, "gc", "--older-than", "30d", "--yes")
    finally:
        lock.release()
    assert result.exit_code == 1 and result.output.startswith("error: another gc is collecting")
    assert "pid 777 on gc-host" in result.output and "Traceback" not in result.output
    assert store.get(ws, task.id).id == task.id


@pytest.mark.stores("file")
@pytest.mark.parametrize("value", ["0s", "soon", "-3d"])
def test_gc_with_a_bad_age_is_a_usage_error_naming_the_option(store: Store, ws: str, value: str) -> None:
    """An --older-than that is not a positive duration exits 2 naming --older-than, and deletes nothing."""
    task = done(store, ws, 400)
    result = cli(store, "gc", "--older-than", value, "--yes")
    assert result.exit_code == 2 and "--older-than" in result.stderr, result.output
    assert store.get(ws, task.id).id == task.id


def ended(store: Store, ws: str, status: str, days: int) -> Task:
    """A task that ended in ``status`` ``days`` ago (its last transition's time: no completed_at)."""
    when = utcnow() - timedelta(days=days)
    transitions = [Transition(from_status="running", to_status=status, timestamp=when)]
    return store.create(ws, sample_task(status=TaskStatus(status), transitions=transitions))


@pytest.mark.stores("file")
def test_go_retention_keys_in_the_home_config_select_exactly_their_tasks(store: FileStore, ws: str) -> None:
    """With the Go tool's hooks.retention keys in <home>/config.yaml, gc needs no option and picks by status age."""
    (store.go_home / "config.yaml").write_text("hooks:\n  retention:\n    completed: 720h\n    failed: 168h\n")
    old, young = done(store, ws, 40), done(store, ws, 10)
    failed_old, failed_young = ended(store, ws, "validation_failed", 10), ended(store, ws, "ci_failed", 3)
    abandoned = ended(store, ws, "abandoned", 400)  # no key for abandoned: not collected
    dry = cli(store, "gc", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    doc = json.loads(dry.output)
    assert sorted(d["id"] for d in doc["deleted"]) == sorted([old.id, failed_old.id])
    assert {s["id"] for s in doc["skipped"]} == {young.id, failed_young.id}
    assert doc["settings"]["sources"]["completed"].endswith("hooks.retention.completed")
    assert cli(store, "gc", "--yes").exit_code == 0
    assert sorted(t.id for t in store.list(ws)) == sorted([young.id, failed_young.id, abandoned.id])


@pytest.mark.stores("file")
def test_options_win_over_the_settings_and_no_config_ignores_them(store: FileStore, ws: str) -> None:
    """--older-than replaces the configured ages; --no-config leaves gc with no filter, which it refuses."""
    (store.go_home / "config.yaml").write_text("retention:\n  completed: 100d\n")
    old = done(store, ws, 40)
    assert json.loads(cli(store, "gc", "--dry-run", "--json").output)["deleted"] == []
    by_option = json.loads(cli(store, "gc", "--dry-run", "--json", "--older-than", "30d").output)
    assert [d["id"] for d in by_option["deleted"]] == [old.id]
    refused = cli(store, "gc", "--dry-run", "--no-config")
    assert refused.exit_code == 2 and "gc needs --older-than" in refused.output


@pytest.mark.stores("file")
def test_a_bad_config_file_is_one_error_line(store: FileStore, ws: str) -> None:
    """A retention key with a bad value: exit 1, one error line naming the file and key, nothing deleted."""
    (store.go_home / "config.yaml").write_text("hooks:\n  retention:\n    completed: soon\n")
    task = done(store, ws, 400)
    result = cli(store, "gc", "--yes")
    assert result.exit_code == 1
    assert "hooks.retention.completed" in result.output and "Traceback" not in result.output
    assert store.get(ws, task.id).id == task.id


@pytest.mark.stores("postgres")
def test_config_option_names_the_settings_file(store: Store, ws: str, tmp_path: Path) -> None:
    """--config FILE applies its settings to any store (here PostgreSQL)."""
    path = tmp_path / "retention.yaml"
    path.write_text("retention:\n  completed: 30d\n")
    old, young = done(store, ws, 40), done(store, ws, 2)
    doc = json.loads(cli(store, "gc", "--dry-run", "--json", "--workspace", ws, "--config", str(path)).output)
    assert [d["id"] for d in doc["deleted"]] == [old.id] and [s["id"] for s in doc["skipped"]] == [young.id]


@pytest.mark.stores("file", "postgres")
def test_archive_then_import_restores_the_deleted_task(store: Store, ws: str, tmp_path: Path) -> None:
    """gc --archive writes each task's bundle before deleting it; importing the bundle brings the task back whole."""
    task = done(store, ws, 40)
    store.append_log(ws, task.id, {"event": "step done"})
    store.save_artifact(ws, task.id, "out/report.md", b"report")
    before = store.get(ws, task.id)
    dry = json.loads(
        cli(store, "gc", "--dry-run", "--json", "--older-than", "30d", "--archive", str(tmp_path / "a")).output
    )
    assert dry["deleted"][0]["archive"] == str(tmp_path / "a" / f"{ws}--{task.id}.tar.gz")
    assert not (tmp_path / "a").exists()  # a dry run writes nothing
    real = json.loads(
        cli(store, "gc", "--json", "--yes", "--older-than", "30d", "--archive", str(tmp_path / "a")).output
    )
    bundle = real["deleted"][0]["archive"]
    assert bundle == dry["deleted"][0]["archive"] and Path(bundle).is_file()
    with pytest.raises(TaskNotFoundError):
        store.get(ws, task.id)
    assert cli(store, "import", bundle).exit_code == 0
    back = store.get(ws, task.id)
    back.metadata.pop("imported_from")
    assert back.model_dump() == before.model_dump()
    assert store.get_artifact(ws, task.id, "out/report.md") == b"report"
    assert [line["event"] for line in store.read_log(ws, task.id)] == ["step done"]


@pytest.mark.stores("file")
def test_a_task_whose_archive_cannot_be_written_is_kept(store: FileStore, ws: str, tmp_path: Path) -> None:
    """An archive directory nothing can be written to (immutable): each task is kept as archive_failed."""
    task = done(store, ws, 40)
    folder = tmp_path / "archive"
    folder.mkdir()
    subprocess.run(["chattr", "+i", str(folder)], check=True)  # refuses new files, even to root
    try:
        result = cli(store, "gc", "--json", "--yes", "--older-than", "30d", "--archive", str(folder))
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    doc = json.loads(result.output)
    assert doc["deleted"] == [] and [(s["id"], s["reason"]) for s in doc["skipped"]] == [(task.id, "archive_failed")]
    assert store.get(ws, task.id).id == task.id
    assert list(folder.iterdir()) == []
