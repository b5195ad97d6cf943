"""`retry`, `fork` and `list --forked-from`: thin commands over atlas_tasks.lifecycle.rewind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import Step, Task, TaskStatus
from atlas_tasks.cli import app
from atlas_tasks.store import Store
from store_kinds import cli_args

STORE_KINDS = ("memory", "file")


def cli(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, [*cli_args(store), *args])


def _step(name: str) -> Step:
    return Step(name=name, type="validation", commands=[f"echo {name} >> counter"], shell=True)  # type: ignore[call-arg]


@pytest.fixture
def task_id(store: Store, tmp_path: Path) -> str:
    """A three-step task in workspace `w`, run to completion once (its worktree's counter says one two three)."""
    (tmp_path / "worktree").mkdir()
    store.create_workspace("w", worktree_path=str(tmp_path / "worktree"))
    task = store.create("w", Task(description="rewind", steps=[_step("one"), _step("two"), _step("three")]))
    result = cli(store, "run", "w", task.id)
    assert result.exit_code == 0, result.output
    store.save_artifact("w", task.id, "notes.md", b"notes")
    return task.id


def _counter(tmp_path: Path) -> list[str]:
    return (tmp_path / "worktree" / "counter").read_text().split()


@pytest.mark.stores("memory", "file", "postgres")
def test_fork_prints_the_new_id_and_run_executes_only_the_later_steps(
    store: Store, task_id: str, tmp_path: Path
) -> None:
    """`fork --from-step two --run` prints the fork's id and runs steps two and three in it."""
    result = cli(store, "fork", "w", task_id, "--from-step", "two", "--reason", "again", "--run")
    assert result.exit_code == 0, result.output
    new_id = result.stdout.splitlines()[0]
    assert store.get("w", new_id).status == TaskStatus.COMPLETED
    assert _counter(tmp_path) == ["one", "two", "three", "two", "three"]


def test_fork_json_and_list_forked_from(store: Store, task_id: str) -> None:
    """`fork --json` gives the new id and lineage; `list --forked-from` lists exactly the forks."""
    result = cli(store, "fork", "w", task_id, "--from-step", "2", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["lifecycle"]["forked_from"]["task_id"] == task_id and doc["status"] == "pending"
    listed = cli(store, "list", "w", "--forked-from", task_id, "--json")
    assert listed.exit_code == 0, listed.output
    assert [t["id"] for t in json.loads(listed.stdout)["tasks"]] == [doc["task_id"]]
    shown = cli(store, "show", "w", task_id)
    assert doc["task_id"] in shown.stdout


def test_dry_run_changes_nothing(store: Store, task_id: str) -> None:
    """`fork --dry-run` and `retry --dry-run` print the plan and leave the store as it was."""
    before = store.get("w", task_id)
    fork = cli(store, "fork", "w", task_id, "--from-step", "2", "--dry-run", "--json")
    assert fork.exit_code == 0, fork.output
    assert json.loads(fork.stdout)["artifacts"] == sorted(store.list_artifacts("w", task_id))
    retry = cli(store, "retry", "w", task_id, "--from-step", "last", "--dry-run")
    assert retry.exit_code != 0 and "fork" in retry.output, "a completed task is refused even as a dry run"
    assert [t.id for t in store.list("w")] == [task_id]
    assert store.get("w", task_id).revision == before.revision


def test_retry_of_a_finished_task_is_one_error_line_saying_fork(store: Store, task_id: str) -> None:
    """Retrying a completed task fails with one `error:` line that names `fork`, no traceback."""
    result = cli(store, "retry", "w", task_id, "--from-step", "2")
    assert result.exit_code != 0
    assert result.output.startswith("error:") and "atlas-tasks fork" in result.output
    assert "Traceback" not in result.output


def test_a_bad_step_lists_the_choices(store: Store, task_id: str) -> None:
    """An unknown step name fails with the valid steps listed."""
    result = cli(store, "fork", "w", task_id, "--from-step", "deploy")
    assert result.exit_code != 0 and "1 (one), 2 (two), 3 (three)" in result.output


@pytest.mark.stores("memory", "file", "postgres")
def test_retry_run_reruns_from_the_step(store: Store, task_id: str, tmp_path: Path) -> None:
    """On a task whose last step failed, `retry --from-step 2 --run` re-executes steps two and three only."""
    flaky = _step("three")
    flaky.commands = ["test -e again || { touch again; exit 1; }; echo three >> counter"]  # fails the first time
    fresh = store.create("w", Task(description="r", steps=[_step("one"), _step("two"), flaky]))
    assert cli(store, "run", "w", fresh.id).exit_code != 0
    result = cli(store, "retry", "w", fresh.id, "--from-step", "2", "--run")
    assert result.exit_code == 0, result.output
    assert store.get("w", fresh.id).status == TaskStatus.COMPLETED
    assert _counter(tmp_path)[3:] == ["one", "two", "two", "three"]


def test_show_says_when_a_listed_fork_is_gone(store: Store, task_id: str) -> None:
    """After a fork is deleted, `show` of the source still works and says the fork no longer exists."""
    new_id = cli(store, "fork", "w", task_id, "--from-step", "2").stdout.strip()
    store.delete("w", new_id)
    shown = cli(store, "show", "w", task_id)
    assert shown.exit_code == 0, shown.output
    assert f"fork w/{new_id} no longer exists" in shown.output
