"""The CLI of the run guards: `new --deadline/--crash-limit/--retries/--retry-delay`, `run --reset-crash-count`,
and the `deadline` command."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import Step, Task
from atlas_tasks.cli import app
from atlas_tasks.lifecycle import deadlines
from atlas_tasks.models import TaskStatus, utcnow
from atlas_tasks.store import Store
from store_kinds import cli_args


@pytest.fixture
def store(store: Store, home: Path) -> Store:
    home.mkdir(exist_ok=True)
    store.create_workspace("ws", worktree_path=str(home))
    return store


def run(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, [*cli_args(store), *args])


def _created(store: Store, result: Result) -> Task:
    assert result.exit_code == 0, result.output
    return store.get("ws", json.loads(result.stdout)["id"])


@pytest.mark.stores("memory", "file", "postgres")
def test_new_stores_the_guard_options(store: Store) -> None:
    """`new` keeps --deadline, --crash-limit and the retry default in the task's metadata."""
    result = run(
        store, "new", "ws", "-t", "bugfix", "-d", "x", "--deadline", "2h", "--crash-limit", "3",
        "--retries", "2", "--retry-delay", "5s", "--json",
    )  # fmt: skip
    task = _created(store, result)
    when = deadlines.deadline_of(task)
    assert when is not None and timedelta(minutes=119) < when - utcnow() <= timedelta(hours=2)
    assert task.metadata["recovery"]["limit"] == 3
    assert task.metadata["retry_policy"]["max_attempts"] == 3 and task.metadata["retry_policy"]["initial"] == 5.0


@pytest.mark.stores("memory", "file")
@pytest.mark.parametrize(
    ("option", "value"), [("--deadline", "soon"), ("--crash-limit", "0"), ("--retry-delay", "-1s")]
)
def test_new_refuses_bad_guard_values_and_stores_nothing(store: Store, option: str, value: str) -> None:
    """A bad guard option is a usage error naming the option; no task is created."""
    result = run(store, "new", "ws", "-t", "bugfix", "-d", "x", option, value)
    assert result.exit_code == 2 and option in result.output
    assert store.list("ws") == []


@pytest.mark.stores("memory", "file", "postgres")
def test_the_deadline_command_extends_and_clears(store: Store) -> None:
    """`deadline --extend` moves a passed deadline into the future and is recorded; `--clear` removes it."""
    task = store.create("ws", Task(description="d", steps=[Step(name="s", type="validation", commands=["true"])]))
    deadlines.set_deadline(store, "ws", task.id, utcnow() - timedelta(minutes=1), "past")
    assert run(store, "run", "ws", task.id).exit_code == 1
    result = run(store, "deadline", "ws", task.id, "--extend", "1h", "--reason", "need more")
    assert result.exit_code == 0, result.output
    when = deadlines.deadline_of(store.get("ws", task.id))
    assert when is not None and when > utcnow() + timedelta(minutes=59)
    assert store.get("ws", task.id).metadata["deadline_changes"][-1]["reason"] == "need more"
    assert run(store, "deadline", "ws", task.id, "--clear").exit_code == 0
    assert deadlines.deadline_of(store.get("ws", task.id)) is None


@pytest.mark.stores("memory", "file")
def test_a_refused_run_is_one_error_line_naming_the_override(store: Store) -> None:
    """A run past its deadline fails with one `error:` line saying how to extend it."""
    task = store.create("ws", Task(description="d", steps=[Step(name="s", type="validation", commands=["true"])]))
    deadlines.set_deadline(store, "ws", task.id, utcnow() - timedelta(minutes=1), "past")
    result = run(store, "run", "ws", task.id)
    lines = result.stderr.splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: ")
    assert "atlas-tasks deadline ws" in lines[0] and "Traceback" not in result.output


@pytest.mark.stores("memory", "file")
def test_run_reset_crash_count_lets_an_exhausted_task_run(store: Store) -> None:
    """An exhausted crash-looping task runs again with --reset-crash-count, and the reset is logged."""
    task = store.create(
        "ws",
        Task(
            description="d",
            steps=[Step(name="s", type="validation", commands=["true"])],
            metadata={"recovery": {"crash_resumes": 2, "limit": 2, "exhausted": True}},
        ),
    )

    def crashed(t: Task) -> None:
        t.transition(TaskStatus.RUNNING, "run started")
        t.transition(TaskStatus.INTERRUPTED, "the previous runner died (its run lease was free)")

    store.modify("ws", task.id, crashed)
    assert run(store, "run", "ws", task.id).exit_code == 1
    result = run(store, "run", "ws", task.id, "--reset-crash-count")
    assert result.exit_code == 0, result.output
    assert store.get("ws", task.id).status == TaskStatus.COMPLETED
    assert any(e.get("event") == "crash count reset" for e in store.read_log("ws", task.id))


@pytest.mark.stores("memory", "file")
def test_recover_says_what_each_crashed_task_needs_next(store: Store) -> None:
    """A plain crashed run is resumed with `run`; one past its deadline or its crash-loop limit needs more first,
    and `recover` names that command instead of a `run` that would be refused."""

    def crashed(**metadata: object) -> str:
        task = store.create("ws", Task(description="x", steps=[Step(name="s", type="validation", commands=["true"])]))

        def start(t: Task) -> None:
            t.transition(TaskStatus.RUNNING, "started")
            t.metadata.update(metadata)

        store.modify("ws", task.id, start)
        return task.id

    plain = crashed()
    looped = crashed(recovery={"crash_resumes": 5, "limit": 5, "at_step": 0})
    late = crashed(deadline=(utcnow() - timedelta(minutes=1)).isoformat())
    result = run(store, "recover", "ws", "--json")
    assert result.exit_code == 0, result.output
    hints = {row["task_id"]: row["next"] for row in json.loads(result.stdout)["recovered"]}
    assert hints[plain] == f"resume with `atlas-tasks run ws {plain}`"
    assert f"`atlas-tasks run ws {looped} --reset-crash-count`" in hints[looped]
    assert f"`atlas-tasks deadline ws {late} --extend 1h`" in hints[late]
    for task_id in (plain, looped, late):
        assert store.get("ws", task_id).status == TaskStatus.INTERRUPTED
