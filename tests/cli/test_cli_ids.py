"""Task ids as people type them (`latest`, a unique start or end of an id) and shell completion of names and ids."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import FileStore, Step, Task, TaskStatus
from atlas_tasks.cli import app

IDS = ["task-20261204-052646", "task-20261204-052952", "task-20261204-053001"]


def cli(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--home", str(home), *args])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with workspace `shop` holding three tasks with timestamp ids (the last one is the newest)."""
    home = tmp_path / "home"
    store = FileStore(home)
    store.create_workspace("shop")
    store.create_workspace("other")
    for task_id in IDS:
        store.create("shop", Task(id=task_id, description=task_id, steps=[Step(name="review", type="human")]))
    return home


def shown_id(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout.split()[1]  # `show` starts with "task  <id>"


def test_end_of_an_id_names_the_task(home: Path) -> None:
    """The time part alone (the end of a timestamp id) finds the task."""
    assert shown_id(cli(home, "show", "shop", "052952")) == "task-20261204-052952"


def test_start_of_an_id_without_the_task_prefix_names_the_task(home: Path) -> None:
    """The start of what follows `task-` finds the task."""
    assert shown_id(cli(home, "show", "shop", "20261204-0530")) == "task-20261204-053001"


def test_latest_is_the_newest_task(home: Path) -> None:
    """`latest` names the workspace's newest task."""
    assert shown_id(cli(home, "show", "shop", "latest")) == "task-20261204-053001"


def test_a_task_really_called_latest_wins(home: Path) -> None:
    """An exact id is taken as it is, before any shortcut: a task named `latest` is that task."""
    FileStore(home).create("shop", Task(id="latest", description="named latest", steps=[]))
    assert shown_id(cli(home, "show", "shop", "latest")) == "latest"


def test_ambiguous_fragment_lists_the_candidates(home: Path) -> None:
    """A fragment that matches several tasks is one error line naming every match, and nothing is done."""
    result = cli(home, "abandon", "shop", "task-20261204-05")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "matches 3 tasks in workspace 'shop'" in result.stderr
    assert all(task_id in result.stderr for task_id in IDS)
    assert all(t.status == TaskStatus.PENDING for t in FileStore(home).list("shop"))


def test_unknown_fragment_is_the_usual_not_found(home: Path) -> None:
    """A fragment that matches nothing gives the not-found message with the command that lists the tasks."""
    result = cli(home, "show", "shop", "999999")
    assert result.exit_code == 1
    assert "task '999999' in workspace 'shop' not found" in result.stderr and "atlas-tasks list shop" in result.stderr


def test_write_commands_take_fragments_too(home: Path) -> None:
    """`reject` acts on the task a unique fragment names, and reports its full id."""

    def wait(task: Task) -> None:
        for status in ("running", "validating", "awaiting_approval"):
            task.transition(status, "made to wait by the test")

    FileStore(home).modify("shop", "task-20261204-052646", wait)
    result = cli(home, "reject", "shop", "052646")
    assert result.exit_code == 0, result.output
    assert "rejected task-20261204-052646" in result.stdout
    assert FileStore(home).get("shop", "task-20261204-052646").status == TaskStatus.REJECTED


def test_latest_in_an_empty_workspace_is_not_found(home: Path) -> None:
    """`latest` in a workspace without tasks says the task is not found."""
    result = cli(home, "show", "other", "latest")
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


def test_workspace_names_complete(home: Path) -> None:
    """The WS argument completes to the workspaces of the store given by --home."""
    assert complete(home, "show ") == ["other", "shop"]
    assert complete(home, "approve sh") == ["shop"]


def test_task_ids_complete(home: Path) -> None:
    """The TASK argument completes to the ids of the workspace on the command line, newest first."""
    assert complete(home, "show shop ") == list(reversed(IDS))
    assert complete(home, "reject shop task-20261204-0529") == ["task-20261204-052952"]


def test_workspace_names_complete_for_workspace_commands(home: Path) -> None:
    """`workspace show NAME` and `doctor [WS]` complete workspace names too."""
    assert complete(home, "workspace show o") == ["other"]
    assert complete(home, "doctor s") == ["shop"]
