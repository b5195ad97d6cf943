"""Continuing a run after an approval in the dashboard, as ``atlas-tasks approve`` does: in a runner process.

The server never runs steps itself (a step can take hours, and the runner must survive the server stopping): it
starts ``python -m atlas_tasks run WS TASK`` in its own session with the store's URL (``store.url``) in
``$ATLAS_STORE_URL`` (never on a command line other users can read: a database URL may hold a password), which
takes the run lease like any runner, and reaps it when it ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from atlas_tasks.store.urls import STORE_URL_ENV, file_url


class RunnerLauncher:
    """Starts ``atlas-tasks run`` for a task in a detached process; its output goes to the task's log anyway."""

    def __init__(self, home: Path | None = None, *, store_url: str | None = None) -> None:
        if (home is None) == (store_url is None):
            raise ValueError("give the runner a file store home or a store URL, one of them")
        self.home = home
        #: The store the runners open (``store.url``; a home is its ``file://`` URL).
        self.store_url = store_url or file_url(home or "")
        self.started: list[subprocess.Popen[bytes]] = []

    def __call__(self, workspace: str, task_id: str) -> None:
        """Start the runner and return at once; a thread waits for it so it leaves no zombie."""
        env = dict(os.environ)
        env[STORE_URL_ENV] = self.store_url
        process = subprocess.Popen(
            [sys.executable, "-m", "atlas_tasks", "run", workspace, task_id],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C on the server must not kill a run it started
            close_fds=True,
        )
        self.started.append(process)
        threading.Thread(target=process.wait, name=f"reap-{task_id}", daemon=True).start()


def runner_for(home: Path | None = None, *, store_url: str | None = None) -> RunnerLauncher:
    """A launcher of runner processes for the store at ``store_url`` (``store.url``), or the file store at ``home``."""
    return RunnerLauncher(home, store_url=store_url)


__all__ = ["RunnerLauncher", "runner_for"]
