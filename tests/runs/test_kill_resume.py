"""Real runner processes killed with SIGKILL at every step boundary and mid-step, then resumed.

After each kill: the task is seen as interrupted; after resume it completes; no step recorded as done before the
kill runs again; no StepResult or log line acknowledged before the kill is missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from atlas_tasks import FileStore, Step, Task, TaskStatus
from atlas_tasks.runs import is_interrupted

STEPS = 4

# The runner: a real process running the task through the library. With KILL_AT=k it SIGKILLs itself right
# after its k-th checkpoint became durable (the directory fsync that follows a rename of task.json).
RUNNER = textwrap.dedent(
    """
    import os, signal, sys
    from atlas_tasks import FileStore
    from atlas_tasks._fs import ops
    from atlas_tasks.executors import run_task
    home, ws, task_id, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    state = {"renamed": False, "checkpoints": 0}
    def hook(op, path):
        if state["checkpoints"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if op == "rename" and path.endswith("/task.json"):
            state["renamed"] = True
        elif op == "fsync" and state["renamed"]:
            state["renamed"] = False
            state["checkpoints"] += 1
    if kill_at >= 0:
        ops.set_hook(hook)
    store = FileStore(home)
    with store.run(ws, task_id) as run:
        run_task(run)
    """
)


def make_task(store: FileStore, ws: str, counter: Path, *, slow_step: int = -1, marker: Path | None = None) -> Task:
    steps = []
    for i in range(STEPS):
        command = f"echo step{i} >> {counter}"
        if i == slow_step and marker is not None:
            command += f" && touch {marker} && exec sleep 60"
        steps.append(Step(name=f"step{i}", type="validation", commands=[command], shell=True))
    return store.create(ws, Task(description="kill me", steps=steps))


def run_runner(home: Path, ws: str, task_id: str, kill_at: int = -1) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(home), ws, task_id, str(kill_at)])


def executions(counter: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in counter.read_text().split() if counter.exists() else []:
        counts[line] = counts.get(line, 0) + 1
    return counts


def check_resume(store: FileStore, ws: str, task: Task, counter: Path) -> None:
    """Resume a killed run and check that nothing acknowledged was lost and nothing recorded re-ran."""
    before = store.get(ws, task.id)
    log_before = list(store.read_log(ws, task.id))
    done_before = [s.name for s in before.steps if s.status == "success"]
    assert before.status in (TaskStatus.RUNNING, TaskStatus.PENDING)
    if before.status == TaskStatus.RUNNING:
        assert is_interrupted(store, ws, before)
    child = run_runner(store.home, ws, task.id)
    assert child.wait(timeout=60) == 0
    after = store.get(ws, task.id)
    assert after.status == TaskStatus.COMPLETED
    assert after.step_results[: len(before.step_results)] == before.step_results  # nothing acknowledged lost
    assert list(store.read_log(ws, task.id))[: len(log_before)] == log_before
    counts = executions(counter)
    for name in done_before:
        assert counts[name] == 1, f"{name} was recorded as done before the kill but ran again: {counts}"
    assert all(counts.get(f"step{i}", 0) >= 1 for i in range(STEPS))


@pytest.mark.parametrize("kill_at", range(1, 2 * STEPS + 2))
def test_sigkill_at_every_checkpoint_then_resume(store: FileStore, ws: str, tmp_path: Path, kill_at: int) -> None:
    """SIGKILL right after each durable checkpoint of a run; the resumed run completes and repeats no done step."""
    counter = tmp_path / "executions"
    task = make_task(store, ws, counter)
    child = run_runner(store.home, ws, task.id, kill_at)
    # A run of 4 steps makes 10 checkpoints (start, 2 per step, finish): every kill point is reached.
    assert child.wait(timeout=60) == -signal.SIGKILL
    check_resume(store, ws, task, counter)


@pytest.mark.parametrize("slow_step", range(STEPS))
def test_sigkill_mid_step_then_resume(store: FileStore, ws: str, tmp_path: Path, slow_step: int) -> None:
    """SIGKILL while a step's command runs; the step runs again on resume (attempts 2), earlier steps do not."""
    counter, marker = tmp_path / "executions", tmp_path / "in-step"
    task = make_task(store, ws, counter, slow_step=slow_step, marker=marker)
    child = run_runner(store.home, ws, task.id)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL
    marker.unlink()
    # The killed step's command was killed with its runner (PDEATHSIG); make the retry fast.
    store.modify(ws, task.id, lambda t: setattr(t.steps[slow_step], "commands", [f"echo step{slow_step} >> {counter}"]))
    crashed = store.get(ws, task.id)
    assert crashed.steps[slow_step].status == "running" and crashed.steps[slow_step].attempts == 1
    check_resume(store, ws, task, counter)
    assert store.get(ws, task.id).steps[slow_step].attempts == 2


def test_two_runners_second_refused_every_time(store: FileStore, ws: str, tmp_path: Path) -> None:
    """While one runner process lives, every second runner exits with the 'already running' error."""
    marker = tmp_path / "in-step"
    task = make_task(store, ws, tmp_path / "executions", slow_step=0, marker=marker)
    first = run_runner(store.home, ws, task.id)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for _ in range(5):
            second = subprocess.run(
                [sys.executable, "-c", RUNNER, str(store.home), ws, task.id, "-1"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode != 0
            assert "already running" in second.stderr and f"pid {first.pid}" in second.stderr
    finally:
        first.kill()
        first.wait()
