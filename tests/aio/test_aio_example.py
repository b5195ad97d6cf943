"""examples/async_orchestrator.py survives SIGKILL: rerun, it completes every task, no checkpointed step run again."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from atlas_tasks import FileStore
from atlas_tasks.models import TaskStatus

EXAMPLE = Path(__file__).parents[2] / "examples" / "async_orchestrator.py"
TASKS, STEPS = 8, 3


def _start(home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    args = [sys.executable, str(EXAMPLE), "--home", str(home), "--tasks", str(TASKS), "--steps", str(STEPS)]
    return subprocess.Popen(
        [*args, "--step-seconds", "0.4"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def _marks(home: Path) -> collections.Counter[tuple[str, str]]:
    path = home / "worktree" / "marks.log"
    lines = path.read_text().split("\n") if path.exists() else []
    return collections.Counter(tuple(line.split()) for line in lines if line.strip())  # type: ignore[misc]


def test_orchestrator_killed_midway_resumes_every_task(tmp_path: Path) -> None:
    """Killed with SIGKILL after some steps are done, the rerun completes all tasks; each step is recorded done
    once, and a step recorded done before the kill never runs again."""
    home = tmp_path / "home"
    first = _start(home)
    deadline = time.monotonic() + 60
    while sum(_marks(home).values()) < TASKS + TASKS // 2:  # every first step started, some second ones too
        assert first.poll() is None, first.communicate()[0]
        assert time.monotonic() < deadline, "the orchestrator did not get going"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate()

    store = FileStore(home)
    at_kill = {t.id: t for t in store.list("orchestra")}
    assert len(at_kill) == TASKS
    assert any(t.status != TaskStatus.COMPLETED for t in at_kill.values()), "killed too late to test a resume"
    done_before = {(t.id, s.name) for t in at_kill.values() for s in t.steps if s.status == "success"}
    assert done_before, "killed too early: no step was checkpointed as done"
    time.sleep(0.5)  # the killed runner's supervisors kill their commands when they see it gone
    marks_before = _marks(home)

    second = _start(home)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    assert "all tasks completed" in out

    marks = _marks(home)
    for task in store.list("orchestra"):
        assert task.status == TaskStatus.COMPLETED
        for index, step in enumerate(task.steps):
            key = (task.id, step.name)
            successes = [r for r in task.step_results if r.step_index == index and r.status == "success"]
            assert len(successes) == 1, (key, task.step_results)
            assert 1 <= marks[key] <= step.attempts, (key, marks[key], step.attempts)
            if key in done_before:
                assert marks[key] == marks_before[key], f"{key} was done before the kill and ran again"
