"""The commands that run and change tasks: new, run/resume, approve, reject, abandon, recover, doctor, templates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import TaskStatus
from atlas_tasks.cli import app
from atlas_tasks.store import Store
from store_kinds import cli_args

ATLAS = [sys.executable, "-m", "atlas_tasks"]
STORE_KINDS = ("memory", "file")
#: For the tests where the backend matters (what the CLI reads and writes): PostgreSQL too.
ALL_KINDS = ("memory", "file", "postgres")


def cli(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, [*cli_args(store), *args])


@pytest.fixture
def store(store: Store, home: Path, tmp_path: Path) -> Store:
    """The store, with workspace `w` and a user template `checks` in the home.

    `checks` has two command steps, a review and one more step.
    """
    (tmp_path / "worktree").mkdir()  # where its commands run (never the current directory by default)
    store.create_workspace("w", worktree_path=str(tmp_path / "worktree"))
    (home / "templates").mkdir(parents=True)
    steps = [
        {"name": "lint", "type": "validation", "commands": ["echo lint ok"]},
        {"name": "test", "type": "validation", "commands": ["echo tests ok"]},
        {"name": "review", "type": "human", "prompt": "look at it"},
        {"name": "ship", "type": "git", "commands": ["true"]},
    ]
    (home / "templates" / "checks.json").write_text(json.dumps({"description": "checks", "steps": steps}))
    return store


def new_task(store: Store, template: str = "checks", *extra: str) -> str:
    result = cli(store, "new", "w", "-t", template, "-d", "a task", "--json", *extra)
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["id"])


@pytest.mark.stores(*ALL_KINDS)
def test_new_creates_task_from_template(store: Store) -> None:
    """`new` creates a pending task with the template's steps and prints its id."""
    result = cli(store, "new", "w", "-t", "checks", "-d", "fix it")
    assert result.exit_code == 0, result.output
    (task,) = store.list("w")
    assert task.status == TaskStatus.PENDING and [s.name for s in task.steps] == ["lint", "test", "review", "ship"]
    assert task.id in result.stdout


def test_new_with_builtin_template_and_validation_commands(store: Store) -> None:
    """A built-in template takes --validate commands into the task's config."""
    task_id = new_task(store, "bugfix", "--validate", "make lint", "--validate", "make test")
    task = store.get("w", task_id)
    assert task.config.validation_commands == ["make lint", "make test"]
    assert [s.name for s in task.steps][-1] == "review"


def test_new_unknown_template_is_one_error_line(store: Store) -> None:
    """An unknown template gives one error line naming the known ones, and exit 1."""
    result = cli(store, "new", "w", "-t", "nope", "-d", "x")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "bugfix" in result.stderr and "checks" in result.stderr


@pytest.mark.parametrize("store_kind", ["memory", "file"])
def test_new_uuid_id_style(store: Store) -> None:
    """--id-style uuid gives a task-<uuid4> id."""
    assert len(new_task(store, "checks", "--id-style", "uuid")) == 41


@pytest.mark.stores(*ALL_KINDS)
def test_run_stops_at_review_then_approve_finishes(store: Store) -> None:
    """`run` executes steps until the review; `approve` continues the remaining steps to completion."""
    task_id = new_task(store)
    result = cli(store, "run", "w", task_id)
    assert result.exit_code == 0, result.output
    assert "awaiting_approval" in result.stdout and f"atlas-tasks approve w {task_id}" in result.stdout
    approved = cli(store, "approve", "w", task_id, "--reason", "fine")
    assert approved.exit_code == 0, approved.output
    task = store.get("w", task_id)
    assert task.status == TaskStatus.COMPLETED
    assert [s.status for s in task.steps] == ["success"] * 4


def test_approve_no_run_leaves_task_ready(store: Store) -> None:
    """`approve --no-run` records the approval and leaves the remaining steps for a later `resume`."""
    task_id = new_task(store)
    cli(store, "run", "w", task_id)
    assert cli(store, "approve", "w", task_id, "--no-run").exit_code == 0
    assert store.get("w", task_id).status == TaskStatus.RUNNING
    assert "interrupted" not in cli(store, "list", "w").stdout
    assert cli(store, "resume", "w", task_id).exit_code == 0
    assert store.get("w", task_id).status == TaskStatus.COMPLETED


def test_reject_ends_task(store: Store) -> None:
    """`reject` ends a waiting task as rejected; running it again is refused with exit 1."""
    task_id = new_task(store)
    cli(store, "run", "w", task_id)
    assert cli(store, "reject", "w", task_id, "-r", "wrong approach").exit_code == 0
    assert store.get("w", task_id).status == TaskStatus.REJECTED
    again = cli(store, "run", "w", task_id)
    assert again.exit_code == 1 and "finished" in again.stderr


def test_failing_step_exits_1_and_records_failure(store: Store, home: Path) -> None:
    """A failing command step makes `run` exit 1 with one error line, the task validation_failed."""
    (home / "templates" / "bad.json").write_text(
        json.dumps({"steps": [{"name": "test", "type": "validation", "commands": ["false"]}]})
    )
    task_id = new_task(store, "bad")
    result = cli(store, "run", "w", task_id)
    assert result.exit_code == 1
    assert "error: step 'test'" in result.stderr and "Traceback" not in result.stderr
    assert store.get("w", task_id).status == TaskStatus.VALIDATION_FAILED
    assert store.list_artifacts("w", task_id) == ["validation.1.json"]


@pytest.mark.stores(*ALL_KINDS)
def test_abandon(store: Store) -> None:
    """`abandon` ends a task that nobody runs."""
    task_id = new_task(store)
    store.modify("w", task_id, lambda t: t.transition("running"))
    assert cli(store, "abandon", "w", task_id).exit_code == 0
    assert store.get("w", task_id).status == TaskStatus.ABANDONED


@pytest.mark.stores(*ALL_KINDS)
def test_recover_and_doctor_find_crashed_run(store: Store) -> None:
    """A task left running without a runner is found by doctor (exit 1) and marked interrupted by doctor --fix."""
    task_id = new_task(store)
    store.modify("w", task_id, lambda t: t.transition("running"))
    found = cli(store, "doctor")
    assert found.exit_code == 1 and "interrupted_run" in found.stdout
    assert "interrupted (crashed)" in cli(store, "list", "w").stdout
    fixed = cli(store, "doctor", "--fix", "--json")
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.stdout)["findings"][0]["fixed"] is True
    assert store.get("w", task_id).status == TaskStatus.INTERRUPTED
    assert cli(store, "doctor").exit_code == 0
    assert json.loads(cli(store, "recover", "--json").stdout) == {"recovered": []}


@pytest.mark.stores(*ALL_KINDS)
def test_recover_marks_interrupted(store: Store) -> None:
    """`recover` marks crashed runs interrupted and says how to resume them."""
    task_id = new_task(store)
    store.modify("w", task_id, lambda t: t.transition("running"))
    result = cli(store, "recover", "w")
    assert result.exit_code == 0 and f"atlas-tasks run w {task_id}" in result.stdout


def test_templates_lists_builtin_and_user(store: Store) -> None:
    """`templates` lists the built-in templates and the user's."""
    names = [t["name"] for t in json.loads(cli(store, "templates", "--json").stdout)["templates"]]
    assert names == ["bugfix", "checks", "commit", "feature"]


def test_list_all_workspaces(store: Store) -> None:
    """`list` without a workspace shows every workspace's tasks with a WORKSPACE column."""
    store.create_workspace("other")
    new_task(store)
    made = cli(store, "new", "other", "-t", "checks", "-d", "elsewhere")
    assert made.exit_code == 0, made.output
    result = cli(store, "list")
    assert result.stdout.splitlines()[0].split()[0] == "WORKSPACE"
    assert {line.split()[0] for line in result.stdout.splitlines()[1:]} == {"w", "other"}


@pytest.mark.stores(*ALL_KINDS)
def test_workspace_show_and_close(store: Store) -> None:
    """`workspace show` prints a workspace and its task refs; `workspace close` marks it closed."""
    task_id = new_task(store)
    assert task_id in cli(store, "workspace", "show", "w").stdout
    assert cli(store, "workspace", "close", "w").exit_code == 0
    assert json.loads(cli(store, "workspace", "show", "w", "--json").stdout)["status"] == "closed"


# -- real processes -------------------------------------------------------------------------------------------------
def slow_home(store: Store, home: Path, marker: Path) -> str:
    steps = [
        {"name": "first", "type": "validation", "commands": ["echo one"]},
        {
            "name": "slow",
            "type": "validation",
            "commands": [f"sh -c 'if [ ! -e {marker} ]; then touch {marker}; exec sleep 60; fi; echo retried'"],
        },
        {"name": "last", "type": "validation", "commands": ["echo done"]},
    ]
    (home / "templates" / "slow.json").write_text(json.dumps({"steps": steps}))
    return new_task(store, "slow")


def wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the runner never reached the slow step"
        time.sleep(0.02)


@pytest.mark.stores("file")  # the real runner process opens the store again: memory would not be shared
def test_kill_resume_through_the_cli(store: Store, home: Path, tmp_path: Path) -> None:
    """The real CLI runner killed with SIGKILL mid-step: list shows it crashed, `resume` completes it, a second
    runner meanwhile is refused with 'already running (pid ...)'."""
    marker = tmp_path / "slow-started"
    task_id = slow_home(store, home, marker)
    runner = subprocess.Popen([*ATLAS, "--home", str(home), "run", "w", task_id], text=True, stdout=subprocess.DEVNULL)
    wait_for(marker, runner)
    second = subprocess.run([*ATLAS, "--home", str(home), "run", "w", task_id], capture_output=True, text=True)
    assert second.returncode == 1
    assert f"already running (pid {runner.pid}" in second.stderr and second.stderr.count("\n") == 1
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    listed = subprocess.run([*ATLAS, "--home", str(home), "list", "w", "--json"], capture_output=True, text=True)
    assert json.loads(listed.stdout)["interrupted"] == [{"workspace": "w", "task_id": task_id}]
    resumed = subprocess.run([*ATLAS, "--home", str(home), "resume", "w", task_id], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "from step 2 of 3" in resumed.stdout
    task = store.get("w", task_id)
    assert task.status == TaskStatus.COMPLETED and [s.attempts for s in task.steps] == [1, 2, 1]


@pytest.mark.stores("file")  # two real processes
def test_logs_follow_tails_a_live_run(store: Store, home: Path, tmp_path: Path) -> None:
    """`logs --follow` prints lines as the run writes them and returns when the run is over."""
    marker = tmp_path / "slow-started"
    task_id = slow_home(store, home, marker)
    marker.touch()  # no sleeping: the run goes straight through
    follower = subprocess.Popen(
        [*ATLAS, "--home", str(home), "logs", "w", task_id, "--follow", "--json"], stdout=subprocess.PIPE, text=True
    )
    time.sleep(0.5)
    assert subprocess.run([*ATLAS, "--home", str(home), "run", "w", task_id], capture_output=True).returncode == 0
    out, _ = follower.communicate(timeout=30)
    events = [json.loads(line)["event"] for line in out.splitlines()]
    assert events[0] == "run started" and events[-1] == "step success"
    assert len(events) == len(store.read_log("w", task_id))
