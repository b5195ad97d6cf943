"""`atlas-tasks pin`, `unpin` and `gc`: the commands, their --json documents and their refusals."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import TaskStatus, Transition
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
