"""Cancel a run (atlas_tasks.lifecycle.cancel): a durable request that a live runner obeys, applied at once when the
runner is dead, refused where Go has no edge; the runner's revision-checked checkpoints keep the request."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from atlas_tasks import Step, Task, executors, lifecycle
from atlas_tasks.errors import CannotCancelError, ConflictError
from atlas_tasks.lifecycle import cancel as C
from atlas_tasks.models import TaskStatus
from atlas_tasks.store import Store
from store_kinds import cli_args

ALL_KINDS = ("file", "memory", "postgres")
WAIT = 60.0


def _wait(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _task(store: Store, ws: str, long: str, worktree: Path) -> Task:
    """A quick first step, then the long command (skipped once `release` exists), then one more quick step."""
    counter = worktree / "first-ran"
    steps = [
        Step(name="first", type="validation", commands=[f"echo x >> {counter}"], shell=True),  # type: ignore[call-arg]
        Step(  # type: ignore[call-arg]
            name="long",
            type="validation",
            commands=[f"if [ -f {worktree / 'release'} ]; then exit 0; fi; {long}"],
            shell=True,
        ),
        Step(name="last", type="validation", commands=["true"]),
    ]
    return store.create(ws, Task(description="cancel me", steps=steps))


class Runner:
    """`run` in another process (file, postgres) or, for the in-process memory store, another thread."""

    def __init__(self, store: Store, ws: str, task_id: str) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.thread: threading.Thread | None = None
        if store.url.startswith("memory"):

            def go() -> None:
                with store.run(ws, task_id) as live:  # type: ignore[attr-defined]
                    executors.run_task(live)

            self.thread = threading.Thread(target=go, daemon=True)
            self.thread.start()
        else:
            cmd = [sys.executable, "-m", "atlas_tasks", *cli_args(store), "run", ws, task_id]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def join(self) -> None:
        if self.proc is not None:
            self.proc.wait(timeout=WAIT)
        if self.thread is not None:
            self.thread.join(timeout=WAIT)
            assert not self.thread.is_alive(), "the runner did not stop"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has died already
    except FileNotFoundError:
        return False


@pytest.fixture
def started(store: Store, ws: str, worktree: Path) -> Iterator[Callable[[str], tuple[Task, Runner]]]:
    runners: list[Runner] = []

    def start(long: str) -> tuple[Task, Runner]:
        task = _task(store, ws, long, worktree)
        runner = Runner(store, ws, task.id)
        runners.append(runner)
        _wait("the long command to start", (worktree / "started").exists)
        return task, runner

    yield start
    for runner in runners:
        if runner.proc is not None and runner.proc.poll() is None:
            runner.proc.kill()
            runner.proc.wait()


TRAPPING = "trap 'echo term > got-term; exit 3' TERM; touch started; sleep 60 & wait"


@pytest.mark.stores(*ALL_KINDS)
def test_cancel_stops_a_live_run_with_sigterm_and_it_resumes_at_the_stopped_step(
    store: Store, ws: str, worktree: Path, started: Callable[[str], tuple[Task, Runner]]
) -> None:
    """The runner obeys the request: SIGTERM to the command, interrupted with the reason, earlier steps kept, the
    request consumed; the next `run` resumes at the stopped step."""
    task, runner = started(TRAPPING)
    asked = C.cancel(store, ws, task.id, reason="wrong branch", grace=20, by={"user": "ann", "host": "h", "pid": 1})
    assert asked.metadata["cancel_request"]["reason"] == "wrong branch"
    runner.join()
    stored = store.get(ws, task.id)
    assert stored.status == TaskStatus.INTERRUPTED
    assert stored.transitions[-1].reason == "cancelled by ann@h: wrong branch (during step 'long')"
    assert (worktree / "got-term").read_text().strip() == "term", "the command heard SIGTERM"
    assert "cancel_request" not in stored.metadata, "the request was consumed with the stop"
    assert stored.metadata["stop_reason"]["kind"] == "cancelled"
    assert stored.steps[0].status == "success" and stored.current_step == 1
    (worktree / "release").touch()
    with store.run(ws, task.id) as live:  # type: ignore[attr-defined]
        done = executors.run_task(live)
    assert done.status == TaskStatus.COMPLETED
    assert (worktree / "first-ran").read_text().count("x") == 1, "the done step did not run again"


@pytest.mark.stores("file", "memory")
def test_a_command_ignoring_sigterm_is_killed_after_the_grace(
    store: Store, ws: str, worktree: Path, started: Callable[[str], tuple[Task, Runner]]
) -> None:
    """A command that ignores SIGTERM gets SIGKILL once the grace is over, and the run ends interrupted."""
    task, runner = started("trap '' TERM; echo $$ > cmd.pid; touch started; sleep 60")
    C.cancel(store, ws, task.id, reason="stuck", grace=1)
    runner.join()
    assert store.get(ws, task.id).status == TaskStatus.INTERRUPTED
    assert not _alive(int((worktree / "cmd.pid").read_text()))


@pytest.mark.stores("file", "memory")
def test_cancel_kills_the_whole_command_tree(
    store: Store, ws: str, worktree: Path, started: Callable[[str], tuple[Task, Runner]]
) -> None:
    """A grandchild the command forked dies with it."""
    task, runner = started("sh -c 'sleep 60 & echo $! > grandchild.pid; wait' & touch started; wait")
    _wait("the grandchild", (worktree / "grandchild.pid").exists)
    grandchild = int((worktree / "grandchild.pid").read_text())
    assert _alive(grandchild)
    C.cancel(store, ws, task.id, reason="tree", grace=2)
    runner.join()
    _wait("the grandchild to die", lambda: not _alive(grandchild))


@pytest.mark.stores(*ALL_KINDS)
def test_cancel_with_abandon_ends_the_live_run_abandoned(
    store: Store, ws: str, worktree: Path, started: Callable[[str], tuple[Task, Runner]]
) -> None:
    """abandon=True stops the run and ends the task abandoned (running -> abandoned is a Go edge)."""
    task, runner = started(TRAPPING)
    C.cancel(store, ws, task.id, reason="give up", grace=5, abandon=True)
    runner.join()
    stored = store.get(ws, task.id)
    assert stored.status == TaskStatus.ABANDONED
    assert "give up" in stored.transitions[-1].reason


def _crashed(store: Store, ws: str, worktree: Path) -> Task:
    """A task left running by a runner that died (no lease held)."""
    task = _task(store, ws, "true", worktree)

    def crash(t: Task) -> None:
        t.transition(TaskStatus.RUNNING, "run started")
        t.steps[0].status = "running"

    return store.modify(ws, task.id, crash)


@pytest.mark.stores(*ALL_KINDS)
@pytest.mark.parametrize(("abandon", "status"), [(False, TaskStatus.INTERRUPTED), (True, TaskStatus.ABANDONED)])
def test_cancelling_a_crashed_run_applies_at_once(
    store: Store, ws: str, worktree: Path, abandon: bool, status: TaskStatus
) -> None:
    """With no live runner the cancel is recorded at once, with the reason, and leaves no request behind."""
    task = _crashed(store, ws, worktree)
    done = C.cancel(store, ws, task.id, reason="runner gone", abandon=abandon)
    assert done.status == status
    assert "runner gone" in done.transitions[-1].reason
    assert "cancel_request" not in done.metadata


@pytest.mark.stores(*ALL_KINDS)
def test_cancelling_an_interrupted_task_records_nothing_unless_abandoning(
    store: Store, ws: str, worktree: Path
) -> None:
    """An interrupted task is left exactly as it is; with abandon it is abandoned."""
    task = C.cancel(store, ws, _crashed(store, ws, worktree).id, reason="first")
    again = C.cancel(store, ws, task.id, reason="second")
    assert again.revision == task.revision and again.status == TaskStatus.INTERRUPTED
    assert C.cancel(store, ws, task.id, reason="drop", abandon=True).status == TaskStatus.ABANDONED


@pytest.mark.stores(*ALL_KINDS)
def test_cancel_refuses_pending_awaiting_and_finished_tasks(store: Store, ws: str, worktree: Path) -> None:
    """Pending (suggest delete), awaiting approval (suggest reject) and finished tasks are refused, unchanged."""
    task = _task(store, ws, "true", worktree)
    with pytest.raises(CannotCancelError, match="delete"):
        C.cancel(store, ws, task.id, reason="x")

    def to(*statuses: TaskStatus) -> Callable[[Task], None]:
        def change(t: Task) -> None:
            for s in statuses:
                t.transition(s, "test")

        return change

    waiting = store.modify(ws, task.id, to(TaskStatus.RUNNING, TaskStatus.VALIDATING, TaskStatus.AWAITING_APPROVAL))
    with pytest.raises(CannotCancelError, match="reject"):
        C.cancel(store, ws, task.id, reason="x")
    store.modify(ws, task.id, to(TaskStatus.COMPLETED))
    with pytest.raises(CannotCancelError, match="already finished"):
        C.cancel(store, ws, task.id, reason="x")
    assert store.get(ws, task.id).revision == waiting.revision + 1


@pytest.mark.stores(*ALL_KINDS)
def test_checkpoints_racing_a_cancel_keep_the_request(store: Store, ws: str, worktree: Path) -> None:
    """A run checkpointing over and over while cancel writes neither fails nor loses the request."""
    task = _task(store, ws, "true", worktree)
    errors: list[BaseException] = []
    with store.run(ws, task.id) as live:  # type: ignore[attr-defined]

        def cancel_soon() -> None:
            try:
                time.sleep(0.05)
                C.cancel(store, ws, task.id, reason="race")
            except BaseException as exc:
                errors.append(exc)

        other = threading.Thread(target=cancel_soon)
        other.start()
        for _ in range(2000):
            live.task.metadata["tick"] = live.task.metadata.get("tick", 0) + 1
            live.checkpoint()
            if "cancel_request" in live.task.metadata:
                break
        other.join(timeout=WAIT)
        assert not errors, errors
        assert live.task.metadata["cancel_request"]["reason"] == "race", "the run's copy carries the request"
        live.checkpoint()
        assert store.get(ws, task.id).metadata["cancel_request"]["reason"] == "race"
        stop = lifecycle.at_boundary(live)
        assert stop is not None and stop.kind == "cancelled"
        live.halt(stop)
    stored = store.get(ws, task.id)
    assert stored.status == TaskStatus.INTERRUPTED and "cancel_request" not in stored.metadata


@pytest.mark.stores(*ALL_KINDS)
def test_a_checkpoint_still_conflicts_on_any_other_change(store: Store, ws: str, worktree: Path) -> None:
    """Only a cancel request is merged: another writer's change still fails the run's checkpoint."""
    task = _task(store, ws, "true", worktree)
    with store.run(ws, task.id) as live:  # type: ignore[attr-defined]
        C.cancel(store, ws, task.id, reason="merge me")
        store.modify(ws, task.id, lambda t: t.metadata.__setitem__("other", 1))
        with pytest.raises(ConflictError):
            live.checkpoint()


@pytest.mark.stores("memory")
def test_describe_and_document_show_a_pending_request(store: Store, ws: str, worktree: Path) -> None:
    """A request not yet obeyed shows in `show` and in the --json "lifecycle" object."""
    task = _task(store, ws, "true", worktree)
    with store.run(ws, task.id) as live:  # type: ignore[attr-defined]
        C.cancel(store, ws, task.id, reason="later", by={"user": "bo", "host": "m", "pid": 2})
        stored = store.get(ws, task.id)
        lines = dict(lifecycle.describe(stored))
        assert lines["cancel"].startswith("cancel requested by bo@m at ") and "later" in lines["cancel"]
        assert lifecycle.document(stored)["cancel_request"]["reason"] == "later"
        del live


@pytest.mark.stores(*ALL_KINDS)
def test_a_cancel_racing_a_step_keeps_the_step_and_applies_at_the_boundary(
    store: Store, ws: str, worktree: Path
) -> None:
    """A cancel written while a step finishes: the step's success is kept, the run halts before the next step."""
    task = _task(store, ws, "true", worktree)
    with store.run(ws, task.id) as live:  # type: ignore[attr-defined]
        steps = live.remaining_steps()
        step = next(steps)
        with live.step(step):
            C.cancel(store, ws, task.id, reason="mid-step")  # lands after the step's start checkpoint
        assert next(steps, None) is None, "the boundary halted the run"
    stored = store.get(ws, task.id)
    assert stored.steps[0].status == "success" and stored.current_step == 1
    assert stored.status == TaskStatus.INTERRUPTED and "mid-step" in stored.transitions[-1].reason
    assert "cancel_request" not in stored.metadata
