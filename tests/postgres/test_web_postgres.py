"""The dashboard over a real PostgreSQL server where it differs from the others: the summary index and the
notification-driven live source, a live run in a real runner process pushed over LISTEN/NOTIFY, and ``atlas-tasks
serve --store postgresql://``. Pages, /api/ documents and crash detection run on PostgreSQL with tests/web's
parameterised suites (``[postgres]`` ids).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from atlas_tasks import Step, Task
from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.web import create_app
from atlas_tasks.web._index import SummaryTaskIndex
from atlas_tasks.web._live import FollowingLiveSource, LiveSettings

HOSTILE = "<script>alert('xss')</script>"
BASE_URL = "http://127.0.0.1"
FAST = LiveSettings(poll=0.1, lifetime=60.0, keepalive=5.0)


@pytest.fixture
def url(pg_url: str, fresh_schema: str) -> str:
    """A store URL of its own (a fresh schema) for each test."""
    return f"{pg_url}{'&' if '?' in pg_url else '?'}schema={fresh_schema}"


@pytest.fixture
def store(pg_url: str, fresh_schema: str, tmp_path: Path) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=fresh_schema) as opened:
        opened.create_workspace("ws", branch="fix/rounding", worktree_path=str(tmp_path))  # where commands run
        yield opened


@pytest.fixture
def client(store: PostgresStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, live=FAST), base_url=BASE_URL) as test_client:
        yield test_client


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    name, data = "message", ""
    for line in lines:
        if line == "":
            if data:
                yield name, json.loads(data)
            name, data = "message", ""
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data += line[6:]


@contextmanager
def stream(client: TestClient, path: str) -> Iterator[Iterator[tuple[str, Any]]]:
    with client.stream("GET", path) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        yield sse_events(response.iter_lines())


def _filled(store: PostgresStore) -> str:
    task = store.create(
        "ws",
        Task(
            template="bugfix",
            description=f"Fix {HOSTILE} rounding",
            steps=[Step(name="analyze", type="ai"), Step(name="validate", type="validation", commands=["true"])],
        ),
    )
    store.append_log("ws", task.id, {"level": "error", "event": f"failed {HOSTILE}", "step_name": "analyze"})
    store.save_artifact("ws", task.id, "report.json", '{"success": false, "html": "<b>x</b>"}')
    store.save_artifact("ws", task.id, "spec.md", f"# Spec\n\n{HOSTILE}\n")
    return task.id


def test_dashboard_on_postgres_uses_the_database_index_and_names_the_schema(
    client: TestClient, store: PostgresStore
) -> None:
    """Over PostgreSQL the dashboard lists through summaries and follows by notification, and its header names the
    database store (schema, no password). Pages and /api/ documents on PostgreSQL: tests/web's ``[postgres]`` ids."""
    app_state = client.app.state.dashboard  # type: ignore[attr-defined]
    assert isinstance(app_state.index, SummaryTaskIndex) and isinstance(app_state.source, FollowingLiveSource)
    task_id = _filled(store)
    home = client.get("/")
    assert home.status_code == 200 and '<a href="/workspaces/ws">ws</a>' in home.text
    assert f"schema {store.schema}" in home.text
    assert task_id in client.get("/workspaces/ws").text


def test_index_rereads_only_changed_tasks(store: PostgresStore) -> None:
    """A second listing decodes nothing; after one update, only that task is read again."""
    ids = [store.create("ws", Task(description=f"t{i}")).id for i in range(3)]
    reads: list[str] = []
    real_get = store.get

    def counting_get(workspace: str, task_id: str) -> Task:
        reads.append(task_id)
        return real_get(workspace, task_id)

    store.get = counting_get  # type: ignore[method-assign]
    index = SummaryTaskIndex(store)
    assert [t.id for t in index.tasks("ws")] == [t.id for t in store.list("ws")]
    reads.clear()
    assert len(index.tasks("ws")) == 3 and reads == []
    store.modify("ws", ids[1], lambda t: t.metadata.update(seen=True))
    listing = index.tasks("ws")
    assert reads == [ids[1]] and listing[[t.id for t in listing].index(ids[1])].metadata == {"seen": True}


def test_live_run_in_a_runner_process_over_postgres(
    client: TestClient, store: PostgresStore, url: str, tmp_path: Path
) -> None:
    """A real runner process moves a task along; the page's event stream shows the step running (the step waits
    for the test to see that), its log lines (pushed by NOTIFY), and the task's completion, then ends."""
    gate = tmp_path / "gate"
    wait_for_gate = f"sh -c 'while [ ! -e {gate} ]; do sleep 0.02; done; echo gate passed'"
    steps = [
        Step(name="first", type="validation", commands=["echo first ok"]),
        Step(name="build", type="validation", commands=[wait_for_gate]),
    ]
    task_id = store.create("ws", Task(template="bugfix", description="live", steps=steps)).id
    source = client.app.state.dashboard.source  # type: ignore[attr-defined]
    runner = subprocess.Popen(
        [sys.executable, "-m", "atlas_tasks", "run", "ws", task_id],
        env={**os.environ, "ATLAS_STORE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        seen: list[str] = []
        with stream(client, f"/workspaces/ws/tasks/{task_id}/events") as received:
            for kind, data in received:
                if kind == "task":
                    steps_now = [s["status"] for s in data["steps"]]
                    seen.append(f"task {data['status']} {'/'.join(steps_now)}")
                    assert not data["crashed"], data  # a live runner holds the lease
                    if steps_now[1] == "running" and not gate.exists():
                        assert source.following() == 1  # the log is followed over LISTEN/NOTIFY
                        gate.touch()
                elif kind == "log":
                    seen.append("log " + "".join(text for text, _ in data["pieces"]))
                elif kind == "end":
                    seen.append("end")
                    break
        output, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        if runner.stdout is not None:
            runner.stdout.close()
    assert runner.returncode == 0, output
    assert gate.exists(), seen
    build_running = seen.index("task running success/running")
    build_started = next((i for i, s in enumerate(seen) if s.startswith("log") and "build step started" in s), -1)
    assert build_started >= 0, seen
    build_done = next(i for i, s in enumerate(seen) if s.startswith("log") and "build step success" in s)
    completed = next(i for i, s in enumerate(seen) if s.startswith("task completed"))
    # A task event and the log lines of one poll can come in either order; each kind keeps its own order.
    assert build_running < completed and build_started < build_done, "\n".join(seen)
    assert seen[-1] == "end" and seen[completed] == "task completed success/success"


def test_serve_process_over_postgres(store: PostgresStore, url: str) -> None:
    """``atlas-tasks serve --store postgresql://…`` starts, names the database without its password, serves
    pages and the API, and stops on Ctrl-C."""
    import urllib.request

    process = subprocess.Popen(
        [sys.executable, "-m", "atlas_tasks", "serve", "--store", url, "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert process.stderr is not None
    try:
        banner = ""
        deadline = time.monotonic() + 60
        while "Ctrl-C stops it." not in banner and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            banner += line
        match = re.search(r"http://127\.0\.0\.1:\d+/", banner)
        assert match and f"schema {store.schema}" in banner, banner
        with urllib.request.urlopen(match.group(0) + "api/workspaces", timeout=10) as api:
            assert [w["name"] for w in json.load(api)["workspaces"]] == ["ws"]
        with urllib.request.urlopen(match.group(0) + "workspaces/ws", timeout=10) as page:
            assert page.status == 200 and b"<h1>ws</h1>" in page.read()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) in (0, 130)
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
