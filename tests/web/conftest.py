"""Fixtures of the dashboard tests: a store with a realistic, partly hostile set of tasks, and clients.

``store`` is tests/conftest.py's: the file store, or each backend a module lists in ``STORE_KINDS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient
from web_data import BASE_URL, BINARY, FAST, HOSTILE, HOSTILE_IMG, T0, finished_task

from atlas_tasks import Step, Task
from atlas_tasks.store import Store
from atlas_tasks.web import create_app


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so these tests run under --strict-markers before pyproject.toml lists the marker.
    config.addinivalue_line("markers", "browser: drives a real headless Chromium (needs chromium + chromium-driver)")


@pytest.fixture
def filled(store: Store) -> dict[str, str]:
    """Workspace ``ws`` with a half-done task (log, artifacts, a failed attempt), a pending one and a crashed one.

    The half-done task carries hostile text everywhere a person could see it. Returns the ids by role.
    """
    store.create_workspace("ws", branch="fix/rounding")
    store.create_workspace("other")
    done = store.create("ws", finished_task(f"Fix {HOSTILE} rounding\nsecond line {HOSTILE_IMG}"))

    def advance(task: Task) -> None:
        task.transition("running", f"started {HOSTILE}", now=T0 + timedelta(seconds=1))
        step = task.steps[0]
        step.status, step.attempts = "success", 2
        step.started_at, step.completed_at = T0 + timedelta(seconds=1), T0 + timedelta(minutes=2, seconds=13)
        task.steps[1].status, task.steps[1].attempts = "failed", 1
        task.steps[1].started_at = T0 + timedelta(minutes=3)
        task.steps[1].completed_at = T0 + timedelta(minutes=3, seconds=4)
        task.steps[1].error = f"lint failed: {HOSTILE_IMG}"
        task.steps[1].name = f"validate {HOSTILE}"
        task.current_step = 1
        task.transition("validating", "checks", now=T0 + timedelta(minutes=3))
        task.transition("validation_failed", "lint failed", now=T0 + timedelta(minutes=4))

    store.modify("ws", done.id, advance)
    store.append_log("ws", done.id, {"level": "info", "event": "step started", "step_name": "analyze"})
    store.append_log("ws", done.id, {"level": "error", "event": f"failed {HOSTILE}", "step_name": "validate"})
    store.save_artifact("ws", done.id, "report.json", '{"success": false, "html": "<b>bold</b>"}')
    store.save_artifact("ws", done.id, "sdd/spec.md", f"# Spec\n\n{HOSTILE}\n\n[click](javascript:alert(1))\n")
    store.save_artifact("ws", done.id, "page.html", f"<html>{HOSTILE}</html>")
    store.save_artifact("ws", done.id, "blob.bin", BINARY)
    store.save_versioned_artifact("ws", done.id, "validation.json", b'{"success": true}')
    pending = store.create(
        "ws", Task(id="task-new", template="feature", description="Add refunds", created_at=T0 + timedelta(days=1))
    )
    crashed = store.create(
        "ws",
        Task(
            id="task-crashed",
            template="commit",
            description="Commit the changes",
            status="running",
            steps=[Step(name="commit", type="git", status="running", attempts=1, started_at=T0)],
            created_at=T0 + timedelta(hours=1),
        ),
    )
    other = store.create(
        "other",
        Task(id="task-elsewhere", template="bugfix", description="Elsewhere", created_at=T0 + timedelta(days=2)),
    )
    return {"done": done.id, "pending": pending.id, "crashed": crashed.id, "other": other.id}


@pytest.fixture
def make_client(store: Store) -> Iterator[Callable[..., TestClient]]:
    """Build a TestClient on a dashboard of ``store`` (keyword arguments go to ``create_app``)."""
    clients: list[TestClient] = []

    def make(raise_server_exceptions: bool = True, **options: Any) -> TestClient:
        options.setdefault("live", FAST)
        client = TestClient(
            create_app(store, **options), base_url=BASE_URL, raise_server_exceptions=raise_server_exceptions
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """A read-only dashboard client."""
    return make_client()
