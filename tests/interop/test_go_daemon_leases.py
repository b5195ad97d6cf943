"""A task the Go ATLAS daemon is running is held: atlas-tasks neither runs it nor calls it crashed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_go_daemon import FakeDaemon

from atlas_tasks import FileStore, TaskRunningError, TaskStatus
from atlas_tasks.runs import is_interrupted

FIXTURES = Path(__file__).parent.parent / "fixtures" / "go"


@pytest.fixture
def running_go_task(tmp_path: Path) -> tuple[Path, str]:
    """A Go home whose workspace 'api' has a task the Go engine left in `running` an hour ago."""
    home = tmp_path / "home"
    shutil.copytree(FIXTURES / "head-home" / "workspaces", home / "workspaces")
    store = FileStore(home)
    task = store.list("api")[0]
    path = store.task_path("api", task.id) / "task.json"
    doc = json.loads(path.read_text())
    doc["status"] = "running"
    doc["updated_at"] = "2020-01-01T00:00:00Z"
    path.write_text(json.dumps(doc))
    return home, task.id


@pytest.fixture
def daemon(running_go_task: tuple[Path, str]) -> Iterator[FakeDaemon]:
    home, task_id = running_go_task
    fake = FakeDaemon(home / "daemon.sock", {task_id: {"task_id": task_id, "status": "running", "current_step": 0}})
    yield fake
    fake.close()


def test_without_a_daemon_a_stale_go_run_is_interrupted(running_go_task: tuple[Path, str]) -> None:
    """The control: with no daemon, a Go task untouched for an hour in `running` counts as crashed."""
    home, task_id = running_go_task
    store = FileStore(home)
    task = store.get("api", task_id)
    assert task.status == TaskStatus.RUNNING
    assert store.lease_holder("api", task_id) is None
    assert is_interrupted(store, "api", task)


@pytest.mark.usefixtures("daemon")
def test_daemon_run_is_held_not_crashed(running_go_task: tuple[Path, str]) -> None:
    """With the daemon reporting the task running, it has a holder naming the daemon and is not interrupted."""
    home, task_id = running_go_task
    store = FileStore(home)
    holder = store.lease_holder("api", task_id)
    assert holder is not None and holder["daemon"] == str(home / "daemon.sock")
    assert not is_interrupted(store, "api", store.get("api", task_id))


@pytest.mark.usefixtures("daemon")
def test_daemon_run_refuses_our_runner(running_go_task: tuple[Path, str]) -> None:
    """store.run refuses a task the daemon runs, naming the daemon, and leaves the task as it was."""
    home, task_id = running_go_task
    store = FileStore(home)
    before = store.get("api", task_id)
    with pytest.raises(TaskRunningError, match="Go ATLAS daemon"), store.run("api", task_id):
        pytest.fail("the run must not start")
    assert store.get("api", task_id).revision == before.revision


@pytest.mark.usefixtures("daemon")
def test_cli_run_names_the_daemon(running_go_task: tuple[Path, str]) -> None:
    """`atlas-tasks run` on the daemon's task is one error line naming the daemon, exit code 1."""
    home, task_id = running_go_task
    env = {k: v for k, v in os.environ.items() if k not in ("ATLAS_HOME", "ATLAS_STORE_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "atlas_tasks", "--home", str(home), "run", "api", task_id],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Go ATLAS daemon" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.usefixtures("daemon")
def test_daemon_run_refuses_delete(running_go_task: tuple[Path, str]) -> None:
    """store.delete refuses a task the daemon is running and leaves it in place."""
    home, task_id = running_go_task
    store = FileStore(home)
    with pytest.raises(TaskRunningError, match="Go ATLAS daemon"):
        store.delete("api", task_id)
    assert store.get("api", task_id).id == task_id


@pytest.mark.usefixtures("daemon")
def test_show_names_the_daemon_as_the_runner(running_go_task: tuple[Path, str]) -> None:
    """`show` of the daemon's task says it runs under the daemon, not `pid ? on ?`, and not crashed."""
    home, task_id = running_go_task
    env = {k: v for k, v in os.environ.items() if k not in ("ATLAS_HOME", "ATLAS_STORE_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "atlas_tasks", "--home", str(home), "show", "api", task_id, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["crashed"] is False
    assert document["runner"]["daemon"] == str(home / "daemon.sock")
