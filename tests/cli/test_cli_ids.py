"""Task ids as people type them (`latest`, a unique start or end of an id) and shell completion of names and ids."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import Step, Task, TaskStatus
from atlas_tasks.cli import app
from atlas_tasks.store import Store
from store_kinds import cli_args

IDS = ["task-20261204-052646", "task-20261204-052952", "task-20261204-053001"]
STORE_KINDS = ("memory", "file")


def cli(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, [*cli_args(store), *args])


@pytest.fixture
def store(store: Store, home: Path, tmp_path: Path) -> Store:
    """The store with workspace `shop` holding three tasks with timestamp ids (the last one is the newest)."""
    store.create_workspace("shop")
    store.create_workspace("other")
    for task_id in IDS:
        store.create("shop", Task(id=task_id, description=task_id, steps=[Step(name="review", type="human")]))
    return store


def shown_id(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout.split()[1]  # `show` starts with "task  <id>"


def test_end_of_an_id_names_the_task(store: Store) -> None:
    """The time part alone (the end of a timestamp id) finds the task."""
    assert shown_id(cli(store, "show", "shop", "052952")) == "task-20261204-052952"


def test_start_of_an_id_without_the_task_prefix_names_the_task(store: Store) -> None:
    """The start of what follows `task-` finds the task."""
    assert shown_id(cli(store, "show", "shop", "20261204-0530")) == "task-20261204-053001"


def test_latest_is_the_newest_task(store: Store) -> None:
    """`latest` names the workspace's newest task."""
    assert shown_id(cli(store, "show", "shop", "latest")) == "task-20261204-053001"


def test_a_task_really_called_latest_wins(store: Store) -> None:
    """An exact id is taken as it is, before any shortcut: a task named `latest` is that task."""
    store.create("shop", Task(id="latest", description="named latest", steps=[]))
    assert shown_id(cli(store, "show", "shop", "latest")) == "latest"


def test_ambiguous_fragment_lists_the_candidates(store: Store) -> None:
    """A fragment that matches several tasks is one error line naming every match, and nothing is done."""
    result = cli(store, "abandon", "shop", "task-20261204-05")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "matches 3 tasks in workspace 'shop'" in result.stderr
    assert all(task_id in result.stderr for task_id in IDS)
    assert all(t.status == TaskStatus.PENDING for t in store.list("shop"))


def test_unknown_fragment_is_the_usual_not_found(store: Store) -> None:
    """A fragment that matches nothing gives the not-found message with the command that lists the tasks."""
    result = cli(store, "show", "shop", "999999")
    assert result.exit_code == 1
    assert "task '999999' in workspace 'shop' not found" in result.stderr and "atlas-tasks list shop" in result.stderr


def test_write_commands_take_fragments_too(store: Store) -> None:
    """`reject` acts on the task a unique fragment names, and reports its full id."""

    def wait(task: Task) -> None:
        for status in ("running", "validating", "awaiting_approval"):
            task.transition(status, "made to wait by the test")

    store.modify("shop", "task-20261204-052646", wait)
    result = cli(store, "reject", "shop", "052646")
    assert result.exit_code == 0, result.output
    assert "rejected task-20261204-052646" in result.stdout
    assert store.get("shop", "task-20261204-052646").status == TaskStatus.REJECTED


def test_latest_in_an_empty_workspace_is_not_found(store: Store) -> None:
    """`latest` in a workspace without tasks says the task is not found."""
    result = cli(store, "show", "other", "latest")
    assert result.exit_code == 1 and "task 'latest' in workspace 'other' not found" in result.stderr


def complete(home: Path, words: str) -> list[str]:
    """Ask the real `atlas-tasks` program (in a child process) for bash completions of the last word of ``words``."""
    script = "import sys; sys.argv[0] = 'atlas-tasks'; from atlas_tasks.cli import main; main()"
    line = f"atlas-tasks --home {home} {words}"
    env = {
        **os.environ,
        "_ATLAS_TASKS_COMPLETE": "complete_bash",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(line.split()) - (0 if line.endswith(" ") else 1)),
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.stores("file")  # completion runs in a child process, which cannot see a memory store
def test_workspace_names_complete(store: Store, home: Path) -> None:
    """The WS argument completes to the workspaces of the store given by --home."""
    assert complete(home, "show ") == ["other", "shop"]
    assert complete(home, "approve sh") == ["shop"]


@pytest.mark.stores("file")  # completion runs in a child process, which cannot see a memory store
def test_task_ids_complete(store: Store, home: Path) -> None:
    """The TASK argument completes to the ids of the workspace on the command line, newest first."""
    assert complete(home, "show shop ") == list(reversed(IDS))
    assert complete(home, "reject shop task-20261204-0529") == ["task-20261204-052952"]


@pytest.mark.stores("file")  # completion runs in a child process, which cannot see a memory store
def test_workspace_names_complete_for_workspace_commands(store: Store, home: Path) -> None:
    """`workspace show NAME` and `doctor [WS]` complete workspace names too."""
    assert complete(home, "workspace show o") == ["other"]
    assert complete(home, "doctor s") == ["shop"]
