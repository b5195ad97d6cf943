"""Messages of the write commands: they say what state a task is in and what would help, in CLI terms."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import Step, Task
from atlas_tasks.cli import app
from atlas_tasks.errors import InvalidTransitionError
from atlas_tasks.runs import approve
from atlas_tasks.store import Store
from atlas_tasks.transitions import check_transition
from store_kinds import cli_args

STORE_KINDS = ("memory", "file")


def cli(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, [*cli_args(store), *args])


@pytest.fixture
def store(store: Store, home: Path, tmp_path: Path) -> Store:
    """The store, with workspace `w` whose worktree is a real directory."""
    (tmp_path / "worktree").mkdir()  # steps run only in the workspace's worktree
    store.create_workspace("w", worktree_path=str(tmp_path / "worktree"))
    return store


def make(store: Store, *steps: Step) -> str:
    return store.create("w", Task(description="a task", steps=list(steps))).id


def run_cli(store: Store, task_id: str) -> Result:
    return cli(store, "run", "w", task_id)


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.removeprefix("error: ").rstrip("\n")


def test_approve_completed_task_says_nothing_to_approve(store: Store) -> None:
    """`approve` of a completed task says it is completed and there is nothing to approve."""
    task_id = make(store, Step(name="one", type="validation", commands=["true"]))
    assert run_cli(store, task_id).exit_code == 0
    message = one_error_line(cli(store, "approve", "w", task_id))
    assert message == f"task {task_id!r} in workspace 'w' is completed, not awaiting approval: nothing to approve"


def test_approve_failed_task_says_run_retries_it(store: Store) -> None:
    """`approve` of a gh_failed task names the command that retries it."""
    task_id = make(store, Step(name="push", type="git", commands=["false"]))
    assert run_cli(store, task_id).exit_code == 1
    message = one_error_line(cli(store, "approve", "w", task_id))
    assert message == (
        f"task {task_id!r} in workspace 'w' is gh_failed, not awaiting approval: step 'push' did not finish; "
        f"`atlas-tasks run w {task_id}` retries it, `atlas-tasks abandon w {task_id}` gives it up"
    )


def test_reject_twice_says_nothing_to_reject(store: Store) -> None:
    """A second `reject` says the task is rejected already, not which status it would need."""
    task_id = make(store, Step(name="review", type="human"))
    assert run_cli(store, task_id).exit_code == 0
    assert cli(store, "reject", "w", task_id).exit_code == 0
    message = one_error_line(cli(store, "reject", "w", task_id))
    assert message.endswith("is rejected, not awaiting approval: nothing to reject")


def test_approve_pending_task_says_run_starts_it(store: Store) -> None:
    """`approve` of a task that never ran says `run` starts it."""
    task_id = make(store, Step(name="review", type="human"))
    message = one_error_line(cli(store, "approve", "w", task_id))
    assert message.endswith(
        f"is pending, not awaiting approval: it has not run yet; `atlas-tasks run w {task_id}` starts it"
    )


def test_library_refusal_is_a_typed_transition_error(store: Store) -> None:
    """The library raises NotAwaitingApprovalError, an InvalidTransitionError, with the same text as the CLI."""
    from atlas_tasks.errors import NotAwaitingApprovalError

    task_id = make(store, Step(name="review", type="human"))
    with pytest.raises(NotAwaitingApprovalError) as info:
        approve(store, "w", task_id)
    assert isinstance(info.value, InvalidTransitionError)
    assert (info.value.from_status, info.value.action) == ("pending", "approve")
    assert info.value.cli_message == info.value.message and "not awaiting approval" in info.value.message


def test_awaiting_approval_hint_names_reject_in_full(store: Store) -> None:
    """The hint printed when a run stops for review gives the whole reject command, workspace and id included."""
    task_id = make(store, Step(name="review", type="human"))
    result = run_cli(store, task_id)
    assert f"`atlas-tasks reject w {task_id}`" in result.stdout


def test_transition_refusal_names_the_statuses_it_can_go_to() -> None:
    """The refusal of a disallowed edge lists where the task can go from its status, said as such."""
    with pytest.raises(InvalidTransitionError) as info:
        check_transition("t", "validating", "pending")
    assert str(info.value) == (
        "task 't' cannot go from 'validating' to 'pending'; "
        "from 'validating' it can only go to awaiting_approval, validation_failed, interrupted"
    )


def test_workspace_create_twice_mentions_exist_ok(store: Store) -> None:
    """Creating an existing workspace points at --exist-ok."""
    message = one_error_line(cli(store, "workspace", "create", "w"))
    assert "already exists" in message and "--exist-ok" in message


def test_cli_errors_suggest_no_python(store: Store) -> None:
    """An unknown workspace is explained with the CLI command that creates it, not with Python code."""
    message = one_error_line(cli(store, "list", "nope"))
    assert "`atlas-tasks workspace create nope`" in message
    assert "store." not in message and "(" not in message.split(";", 1)[1]


def test_template_path_is_an_invalid_template_name(store: Store) -> None:
    """`--template ../../etc/passwd` is refused as an invalid template name (not a workspace name)."""
    message = one_error_line(cli(store, "new", "w", "-t", "../../etc/passwd", "-d", "x"))
    assert message.startswith("invalid template name '../../etc/passwd'")
    assert store.list("w") == []


def test_abandon_pending_task_points_at_delete(store: Store) -> None:
    """`abandon` of a task that never ran says why it cannot and that `delete` removes it."""
    task_id = make(store, Step(name="review", type="human"))
    message = one_error_line(cli(store, "abandon", "w", task_id))
    assert message == (
        f"task {task_id!r} in workspace 'w' is pending and cannot be abandoned: it never ran; "
        f"`atlas-tasks delete w {task_id}` removes it"
    )


def test_abandon_waiting_task_points_at_reject(store: Store) -> None:
    """`abandon` of a task waiting for review names the reject command."""
    task_id = make(store, Step(name="review", type="human"))
    assert run_cli(store, task_id).exit_code == 0
    message = one_error_line(cli(store, "abandon", "w", task_id))
    assert message.endswith(f"it waits for a review; `atlas-tasks reject w {task_id}` ends it")


def test_approve_crashed_run_says_run_resumes_it(store: Store) -> None:
    """`approve` of a task left running by a dead runner says the run crashed and `run` resumes it."""
    task_id = make(store, Step(name="one", type="validation", commands=["true"]), Step(name="review", type="human"))
    store.modify("w", task_id, lambda t: t.transition("running", "driven by hand, then left"))
    message = one_error_line(cli(store, "approve", "w", task_id))
    assert message.endswith(
        f"is running, not awaiting approval: its runner died before reaching a review step; "
        f"`atlas-tasks run w {task_id}` resumes it"
    )
