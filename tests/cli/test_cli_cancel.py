"""`atlas-tasks cancel` and `abandon --force`: from another process, against a real runner process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import Step, Task, TaskStatus
from atlas_tasks.cli import app
from atlas_tasks.store import Store
from store_kinds import cli_args

ATLAS = [sys.executable, "-m", "atlas_tasks"]
WAIT = 60.0
#: Processes share the store through a file tree or a server; the memory store lives in one process.
SHARED = ("file", "postgres")


def cli(store: Store, *args: str) -> Result:
    return CliRunner().invoke(app, [*cli_args(store), *args])


def atlas(store: Store, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ATLAS, *cli_args(store), *args], capture_output=True, text=True, timeout=WAIT)


@pytest.fixture
def worktree(store: Store, tmp_path: Path) -> Path:
    path = tmp_path / "worktree"
    path.mkdir()
    store.create_workspace("w", worktree_path=str(path))
    return path


def _wait(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _task(store: Store, command: str) -> Task:
    steps = [
        Step(name="first", type="validation", commands=["true"]),
        Step(name="long", type="validation", commands=[command], shell=True),  # type: ignore[call-arg]
    ]
    return store.create("w", Task(description="cancel me", steps=steps))


@pytest.fixture
def running(store: Store, worktree: Path) -> Iterator[Callable[[], Task]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> Task:
        task = _task(store, "trap 'exit 3' TERM; touch started; sleep 60 & wait")
        procs.append(
            subprocess.Popen(
                [*ATLAS, *cli_args(store), "run", "w", task.id], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        _wait("the runner's command", (worktree / "started").exists)
        return task

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.stores(*SHARED)
def test_cancel_waits_for_the_runner_and_reports_the_final_status(store: Store, running: Callable[[], Task]) -> None:
    """`cancel` from another process returns once the runner has stopped, saying the task is interrupted."""
    task = running()
    done = atlas(store, "cancel", "w", task.id, "--grace", "5s", "--reason", "enough", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "interrupted" and doc["outcome"] == "stopped" and doc["waited"] is True
    stored = store.get("w", task.id)
    assert "enough" in stored.transitions[-1].reason and stored.current_step == 1


@pytest.mark.stores(*SHARED)
def test_abandon_force_cancels_a_live_run(store: Store, running: Callable[[], Task]) -> None:
    """`abandon --force` of a task a live runner holds stops the run and ends it abandoned."""
    task = running()
    done = atlas(store, "abandon", "--force", "--grace", "2s", "w", task.id)
    assert done.returncode == 0, done.stderr
    assert "now abandoned" in done.stdout
    assert store.get("w", task.id).status == TaskStatus.ABANDONED


@pytest.mark.stores(*SHARED)
def test_abandon_without_force_still_refuses_a_live_run(store: Store, running: Callable[[], Task]) -> None:
    """Without --force a live run is left alone and the error names the runner."""
    task = running()
    done = atlas(store, "abandon", "w", task.id)
    assert done.returncode != 0 and "already running" in done.stderr
    assert store.get("w", task.id).status == TaskStatus.RUNNING


def _crashed(store: Store, pids: list[int]) -> Task:
    task = _task(store, "true")

    def crash(t: Task) -> None:
        t.transition(TaskStatus.RUNNING, "run started")
        t.running_processes = pids

    return store.modify("w", task.id, crash)


@pytest.mark.stores("memory", *SHARED)
def test_abandon_force_kills_a_dead_runners_leftover_processes(store: Store, worktree: Path) -> None:
    """With the runner dead, the pids in running_processes that still exist are terminated, then it is abandoned."""
    leftover = subprocess.Popen(["sleep", "60"])
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer exists is skipped, not an error
    try:
        task = _crashed(store, [leftover.pid, gone.pid])
        done = cli(store, "abandon", "--force", "--grace", "5s", "w", task.id)
        assert done.exit_code == 0, done.output
        assert leftover.wait(timeout=WAIT) == -signal.SIGTERM
        assert store.get("w", task.id).status == TaskStatus.ABANDONED
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()


@pytest.mark.stores("memory", *SHARED)
def test_cancel_of_a_crashed_run_records_it_at_once(store: Store, worktree: Path) -> None:
    """With no live runner, `cancel --no-wait` moves the task to interrupted and says so."""
    task = _crashed(store, [])
    done = cli(store, "cancel", "w", task.id, "--no-wait", "-r", "gone")
    assert done.exit_code == 0, done.output
    assert "now interrupted" in done.stdout
    assert store.get("w", task.id).status == TaskStatus.INTERRUPTED


@pytest.mark.stores("memory", *SHARED)
def test_cancel_of_a_stopped_task_is_a_note_not_an_error(store: Store, worktree: Path) -> None:
    """Cancelling an interrupted task exits 0 with a note and writes nothing."""
    task = _crashed(store, [])
    first = cli(store, "cancel", "w", task.id)
    assert first.exit_code == 0, first.output
    revision = store.get("w", task.id).revision
    again = cli(store, "cancel", "w", task.id)
    assert again.exit_code == 0 and "already stopped" in again.stderr
    assert store.get("w", task.id).revision == revision


@pytest.mark.stores("memory", *SHARED)
def test_cancel_of_a_pending_task_is_one_error_line_suggesting_delete(store: Store, worktree: Path) -> None:
    """A pending task cannot be cancelled: one `error:` line naming `delete`, exit 1, no traceback."""
    task = _task(store, "true")
    done = cli(store, "cancel", "w", task.id)
    assert done.exit_code == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "atlas-tasks delete w" in lines[0]
    assert store.get("w", task.id).status == TaskStatus.PENDING


@pytest.mark.stores("memory")
@pytest.mark.parametrize("grace", ["soon", "5x", "", "-3s"])
def test_a_bad_grace_is_refused_before_anything_is_written(store: Store, worktree: Path, grace: str) -> None:
    """`--grace` takes 30s/2m/1h/500ms or seconds; anything else is a usage error and nothing changes."""
    task = _crashed(store, [])
    done = cli(store, "cancel", "w", task.id, "--grace", grace)
    assert done.exit_code == 2, done.output
    assert store.get("w", task.id).status == TaskStatus.RUNNING


def test_durations_parse_like_go() -> None:
    """30s, 2m, 1h30m, 500ms and bare seconds are all understood."""
    from atlas_tasks.cli._cancel import parse_seconds

    assert [parse_seconds(t) for t in ("30s", "2m", "1h30m", "500ms", "7", "1.5s")] == [30, 120, 5400, 0.5, 7, 1.5]
