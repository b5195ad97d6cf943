"""Continuing a run after an approval in the dashboard, as ``atlas-tasks approve`` does: in a runner process.

The server never runs steps itself (a step can take hours, and the runner must survive the server stopping): it
starts ``python -m atlas_tasks --home HOME run WS TASK`` in its own session, which takes the run lease like any
runner, and reaps it when it ends.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path


class RunnerLauncher:
    """Starts ``atlas-tasks run`` for a task in a detached process; its output goes to the task's log anyway."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.started: list[subprocess.Popen[bytes]] = []

    def __call__(self, workspace: str, task_id: str) -> None:
        """Start the runner and return at once; a thread waits for it so it leaves no zombie."""
        process = subprocess.Popen(
            [sys.executable, "-m", "atlas_tasks", "--home", str(self.home), "run", workspace, task_id],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C on the server must not kill a run it started
            close_fds=True,
        )
        self.started.append(process)
        threading.Thread(target=process.wait, name=f"reap-{task_id}", daemon=True).start()


def runner_for(home: Path) -> RunnerLauncher:
    """A launcher of runner processes for the file store at ``home``."""
    return RunnerLauncher(home)


__all__ = ["RunnerLauncher", "runner_for"]
