"""`new` refuses what cannot work and warns about what is missing; `set` fixes a task's configuration; `delete`
removes a task; `workspace create --worktree` checks the directory; `ls` is `list`."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import Step, Task, TaskNotFoundError, TaskStatus
from atlas_tasks.cli import app
from atlas_tasks.store import LocalFiles, Store
from store_kinds import cli_args

ATLAS = [sys.executable, "-m", "atlas_tasks"]

STORE_KINDS = ("memory", "file")


def cli(store: Store, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, [*cli_args(store), *args], env={"ATLAS_TASKS_AI_COMMAND": "", **(env or {})})


@pytest.fixture
def store(store: Store, home: Path, tmp_path: Path) -> Store:
    """The store with workspace `w`, and in the home a user template `mixed`.

    `mixed` has an AI step and a validation step without commands.
    """
    (tmp_path / "worktree").mkdir()  # steps run only in the workspace's worktree
    store.create_workspace("w", worktree_path=str(tmp_path / "worktree"))
    (home / "templates").mkdir(parents=True)
    steps = [{"name": "think", "type": "ai"}, {"name": "check", "type": "validation"}]
    (home / "templates" / "mixed.json").write_text(json.dumps({"description": "mixed", "steps": steps}))
    return store


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    return result.stderr.removeprefix("error: ").rstrip("\n")


def make(store: Store, *steps: Step) -> str:
    return store.create("w", Task(description="a task", steps=list(steps))).id


@pytest.fixture
def live_runner(store: Store, home: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real `atlas-tasks run` process holding a task whose step sleeps; killed (by its pid) afterwards."""
    task_id = make(store, Step(name="wait", type="validation", commands=["sleep 120"]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [*ATLAS, "--home", str(home), "run", "w", task_id],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while store.lease_holder("w", task_id) is None or store.get("w", task_id).steps[0].status != "running":
        assert proc.poll() is None and time.monotonic() < deadline, "the runner did not start"
        time.sleep(0.05)
    try:
        yield task_id, proc
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


# -- new ---------------------------------------------------------------------------------------------------------


def test_new_refuses_blank_description(store: Store) -> None:
    """`new -d '  '` is one error line and creates nothing."""
    message = one_error_line(cli(store, "new", "w", "-t", "mixed", "-d", "  ", "--ai-command", "cat"))
    assert message.startswith("invalid --description '  ': a task needs a description")
    assert store.list("w") == []


def test_new_refuses_unbalanced_quotes_in_ai_command(store: Store) -> None:
    """An --ai-command that cannot be split into words is one error line at `new`, not a traceback at `run`."""
    message = one_error_line(cli(store, "new", "w", "-t", "mixed", "-d", "x", "--ai-command", "claude -p 'oops"))
    assert message == (
        'invalid --ai-command "claude -p \'oops": no closing quotation: it is split into words like a shell '
        "would, so balance its quotes"
    )
    assert store.list("w") == []


def test_new_refuses_unbalanced_quotes_in_validate(store: Store) -> None:
    """A --validate command with an open quote is refused the same way."""
    message = one_error_line(cli(store, "new", "w", "-t", "mixed", "-d", "x", "--validate", 'make "test'))
    assert message.startswith("invalid --validate 'make \"test': no closing quotation")


def test_command_with_nul_byte_is_refused() -> None:
    """A command holding a NUL byte (possible from the library, not from argv) is refused before it is stored."""
    from atlas_tasks.cli._edit import check_command
    from atlas_tasks.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match="NUL byte"):
        check_command("--ai-command", "cat\x00x")


def test_new_warns_about_missing_ai_and_validation_commands(store: Store) -> None:
    """Without --ai-command and --validate, `new` creates the task and warns, naming the `set` command that fixes it."""
    result = cli(store, "new", "w", "-t", "mixed", "-d", "x")
    assert result.exit_code == 0, result.output
    (task,) = store.list("w")
    assert result.stderr.splitlines() == [
        f"warning: the run will fail: step 'think' needs an AI command and none is configured: "
        f"`atlas-tasks set w {task.id} --ai-command CMD` sets one (it gets the prompt on stdin, e.g. 'claude -p'), "
        "or set $ATLAS_TASKS_AI_COMMAND where the task runs",
        f"warning: the run will fail: step 'check' (validation) has no commands to run: "
        f"`atlas-tasks set w {task.id} --validate CMD` gives it some",
    ]


def test_new_is_quiet_when_the_environment_has_an_ai_command(store: Store, home: Path) -> None:
    """$ATLAS_TASKS_AI_COMMAND and --validate cover both steps: no warning."""
    result = cli(
        store, "new", "w", "-t", "mixed", "-d", "x", "--validate", "true", env={"ATLAS_TASKS_AI_COMMAND": "cat"}
    )
    assert result.exit_code == 0 and result.stderr == ""


def test_new_with_run_refuses_a_task_that_cannot_run(store: Store) -> None:
    """`new --run` without an AI command refuses before creating anything (no step runs, nothing is stored)."""
    message = one_error_line(cli(store, "new", "w", "-t", "mixed", "-d", "x", "--validate", "true", "--run"))
    assert message.startswith("a task from template 'mixed' cannot run as configured: step 'think' needs an AI command")
    assert "nothing was created" in message
    assert store.list("w") == []


def test_new_in_closed_workspace_warns(store: Store) -> None:
    """A task created in a closed workspace is created, with a warning that the workspace is closed."""
    store.set_workspace_status("w", "closed")
    result = cli(store, "new", "w", "-t", "mixed", "-d", "x", "--validate", "true", "--ai-command", "cat")
    assert result.exit_code == 0
    assert result.stderr == "warning: workspace 'w' is closed; the task was created in it all the same\n"


# -- set ---------------------------------------------------------------------------------------------------------


def test_set_fixes_a_task_that_failed_for_want_of_configuration(store: Store) -> None:
    """A task that failed for lack of an AI command and validation commands runs to the end after `set`."""
    result = cli(store, "new", "w", "-t", "mixed", "-d", "x")
    (task,) = store.list("w")
    assert cli(store, "run", "w", task.id).exit_code == 1
    result = cli(store, "set", "w", task.id, "--ai-command", "cat", "--validate", "true")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{task.id}: ai command 'cat' (was none)",
        f"{task.id}: validation commands 'true' (was none)",
    ]
    assert cli(store, "run", "w", task.id).exit_code == 0
    assert store.get("w", task.id).status == TaskStatus.COMPLETED


def test_set_records_the_change_in_the_log_not_the_trail(store: Store) -> None:
    """`set` logs what changed from what, and adds no transition (the status did not change)."""
    task_id = make(store, Step(name="think", type="ai"))
    assert cli(store, "set", "w", task_id, "-d", "better words", "--ai-command", "cat").exit_code == 0
    task = store.get("w", task_id)
    assert (task.description, task.config.variables["ai_command"], task.transitions) == ("better words", "cat", [])
    (line,) = [entry for entry in store.read_log("w", task_id) if entry["event"] == "configuration changed"]
    assert line["changed"] == {
        "ai_command": {"from": "", "to": "cat"},
        "description": {"from": "a task", "to": "better words"},
    }


def test_set_refuses_a_finished_task(store: Store) -> None:
    """A finished task keeps the configuration it ran with."""
    task_id = make(store, Step(name="one", type="validation", commands=["true"]))
    assert cli(store, "run", "w", task_id).exit_code == 0
    message = one_error_line(cli(store, "set", "w", task_id, "--ai-command", "cat"))
    assert message.endswith(
        "is completed: a finished task keeps the configuration it ran with; nothing was changed "
        "(create a new task instead)"
    )


@pytest.mark.stores("file")  # the runner is a real process
def test_set_refuses_while_a_runner_holds_the_task(
    store: Store, live_runner: tuple[str, subprocess.Popen[bytes]]
) -> None:
    """`set` on a task a live runner holds names the runner and changes nothing."""
    task_id, proc = live_runner
    message = one_error_line(cli(store, "set", "w", task_id, "--validate", "true"))
    assert f"is already running (pid {proc.pid} " in message
    assert store.get("w", task_id).config.validation_commands == []


def test_set_needs_something_to_change(store: Store) -> None:
    """`set` with no option is a usage error."""
    task_id = make(store)
    result = cli(store, "set", "w", task_id)
    assert result.exit_code == 2 and "nothing to change" in result.stderr


# -- delete ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["memory", "file"])
def test_delete_yes_removes_the_task_and_says_what(store: Store) -> None:
    """`delete --yes` removes the task with its log and artifacts and says what it removed."""
    task_id = make(store)
    store.save_artifact("w", task_id, "notes.md", "x")
    store.append_log("w", task_id, {"event": "hello"})
    result = cli(store, "delete", "w", task_id, "--yes")
    assert result.exit_code == 0, result.output
    said = f"deleted task {task_id} in w (pending, 'a task') with its log (1 line(s)) and 1 artifact(s)"
    assert result.stdout.startswith(said), result.stdout
    if isinstance(store, LocalFiles):  # a file store also says where the task was
        assert result.stdout == f"{said} ({store.task_path('w', task_id)})\n"
    with pytest.raises(TaskNotFoundError):
        store.get("w", task_id)


def test_delete_without_a_terminal_needs_yes(store: Store) -> None:
    """With nobody to ask (stdin not a terminal) and no --yes, nothing is deleted."""
    task_id = make(store)
    message = one_error_line(cli(store, "delete", "w", task_id))
    assert message == f"not deleting {task_id}: nobody to confirm it (stdin is not a terminal); add --yes"
    assert store.get("w", task_id).id == task_id


@pytest.mark.stores("file")  # a real process on a terminal: it cannot see a memory store
@pytest.mark.parametrize(("answer", "kept"), [("n", True), ("y", False)])
def test_delete_asks_on_a_terminal(store: Store, home: Path, answer: str, kept: bool) -> None:
    """On a terminal `delete` asks first; "n" keeps the task, "y" deletes it."""
    task_id = make(store)
    controller, terminal = pty.openpty()
    try:
        os.write(controller, f"{answer}\n".encode())
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run(
            [*ATLAS, "--home", str(home), "delete", "w", task_id],
            stdin=terminal,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        os.close(controller)
        os.close(terminal)
    assert f"delete task {task_id} in w (pending, 'a task')" in done.stderr
    assert done.returncode == (1 if kept else 0), done.stderr
    assert (task_id in {t.id for t in store.list("w")}) is kept


@pytest.mark.stores("file")  # the runner is a real process
def test_delete_refuses_while_a_runner_holds_the_task(
    store: Store, live_runner: tuple[str, subprocess.Popen[bytes]]
) -> None:
    """`delete` of a task a live runner holds names the runner and deletes nothing."""
    task_id, proc = live_runner
    message = one_error_line(cli(store, "delete", "w", task_id, "--yes"))
    assert f"is already running (pid {proc.pid} " in message
    assert store.get("w", task_id).status == TaskStatus.RUNNING


def test_ls_is_list(store: Store) -> None:
    """`ls` prints what `list` prints, and is not listed separately in --help."""
    make(store)
    assert cli(store, "ls", "w", "--json").stdout == cli(store, "list", "w", "--json").stdout
    assert " ls " not in cli(store, "--help").stdout


# -- workspace create --worktree --------------------------------------------------------------------------------


def test_missing_worktree_is_refused(store: Store, tmp_path: Path) -> None:
    """A --worktree that does not exist is refused, naming the path and the fix; no workspace is created."""
    missing = tmp_path / "does-not-exist"
    message = one_error_line(cli(store, "workspace", "create", "typo", "--worktree", str(missing)))
    assert message.startswith(f"invalid --worktree '{missing}': no such directory")
    assert "--create-worktree" in message
    assert [ws.name for ws in store.list_workspaces()] == ["w"]


def test_create_worktree_makes_the_directory(store: Store, tmp_path: Path) -> None:
    """--create-worktree creates the missing directory and says so."""
    missing = tmp_path / "new" / "tree"
    result = cli(store, "workspace", "create", "fresh", "--worktree", str(missing), "--create-worktree")
    assert result.exit_code == 0, result.output
    assert missing.is_dir() and f"created the worktree directory {missing}" in result.stdout
    assert store.get_workspace("fresh").worktree_path == str(missing)


def test_relative_worktree_is_stored_absolute(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative --worktree is made absolute against the current directory."""
    (tmp_path / "checkout").mkdir()
    monkeypatch.chdir(tmp_path)
    assert cli(store, "workspace", "create", "rel", "--worktree", "checkout").exit_code == 0
    assert store.get_workspace("rel").worktree_path == str(tmp_path / "checkout")


@pytest.mark.stores("file")  # a garbage task.json is a file-layout case
def test_delete_removes_an_unreadable_task(store: Store) -> None:
    """A task whose task.json is garbage can still be deleted (by its full id), and is called unreadable."""
    task_id = make(store)
    (store.task_path("w", task_id) / "task.json").write_text("{not json")
    result = cli(store, "delete", "w", task_id, "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"deleted task {task_id} in w (unreadable) with its log")
    assert not store.task_path("w", task_id).exists()
