"""`logs --follow` reads through the store: a planted FIFO or symlink as task.log is refused, never waited on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from atlas_tasks import FileStore
from atlas_tasks.testing.conformance import sample_task


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_follow_refuses_an_odd_task_log(tmp_path: Path, kind: str) -> None:
    """A FIFO (which a plain open would block on forever) or a symlink as task.log is one error line, exit 1."""
    store = FileStore(tmp_path / "home")
    store.create_workspace("ws")
    task = store.create("ws", sample_task())
    log = store.task_path("ws", task.id) / "task.log"
    log.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(log)
    else:
        (tmp_path / "elsewhere.log").write_text('{"event": "not ours"}\n')
        log.symlink_to(tmp_path / "elsewhere.log")
    env = {k: v for k, v in os.environ.items() if k not in ("ATLAS_HOME", "ATLAS_STORE_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "atlas_tasks", "--home", str(tmp_path / "home"), "logs", "ws", task.id, "--follow"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    # A warning may come first (the sample task is "running" with no live runner); the failure is one error line.
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "task.log" in last, done.stderr
    assert "not ours" not in done.stdout
