"""The dashboard's Cancel button: shown for running tasks with --allow-actions; token and CSRF like approve/reject."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from test_web_actions import TOKEN, _csrf, actions  # the same client, token and CSRF as approve/reject

from atlas_tasks import Step, Task, TaskStatus
from atlas_tasks.store import Store

__all__ = ["actions"]
STORE_KINDS = ("memory", "file")


@pytest.fixture
def running(store: Store, filled: dict[str, str]) -> str:
    """A task whose run crashed (running, no live runner)."""
    task = store.create("ws", Task(description="long", steps=[Step(name="s", type="validation", commands=["true"])]))
    return store.modify("ws", task.id, lambda t: t.transition(TaskStatus.RUNNING, "run started")).id


def test_cancel_button_shows_for_a_running_task_with_actions_on(actions: TestClient, running: str) -> None:
    """The task page of a running task carries the cancel form."""
    page = actions.get(f"/workspaces/ws/tasks/{running}")
    assert f'action="/workspaces/ws/tasks/{running}/cancel"' in page.text


def test_no_cancel_button_without_actions_or_when_not_running(
    client: TestClient, actions: TestClient, running: str, store: Store
) -> None:
    """Without --allow-actions, or once the task is no longer running, there is no cancel form."""
    assert "/cancel" not in client.get(f"/workspaces/ws/tasks/{running}").text
    store.modify("ws", running, lambda t: t.transition(TaskStatus.INTERRUPTED, "stopped"))
    assert "/cancel" not in actions.get(f"/workspaces/ws/tasks/{running}").text


def test_cancel_is_off_by_default(client: TestClient, store: Store, running: str) -> None:
    """Without --allow-actions the POST is refused with 403 and nothing changes."""
    csrf = _csrf(client)
    response = client.post(f"/workspaces/ws/tasks/{running}/cancel", data={"token": TOKEN, "csrf": csrf})
    assert response.status_code == 403
    assert store.get("ws", running).status == TaskStatus.RUNNING


@pytest.mark.parametrize("fields", [{}, {"token": "wrong"}, {"token": TOKEN}, {"token": TOKEN, "csrf": "forged"}])
def test_cancel_needs_the_token_and_csrf(
    actions: TestClient, store: Store, running: str, fields: dict[str, str]
) -> None:
    """A missing or wrong token, or a failed CSRF check, is refused and nothing changes."""
    _csrf(actions)
    response = actions.post(f"/workspaces/ws/tasks/{running}/cancel", data=fields)
    assert response.status_code == 403
    assert store.get("ws", running).status == TaskStatus.RUNNING


def test_cancel_of_a_crashed_run_records_it(actions: TestClient, store: Store, running: str) -> None:
    """With the token and CSRF, a run with no live runner is recorded interrupted with the reason at once."""
    csrf = _csrf(actions)
    response = actions.post(
        f"/workspaces/ws/tasks/{running}/cancel",
        data={"token": TOKEN, "csrf": csrf, "reason": "wrong input"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    task = store.get("ws", running)
    assert task.status == TaskStatus.INTERRUPTED and "cancelled by dashboard" in task.transitions[-1].reason


def test_cancel_of_a_live_run_leaves_the_request_for_its_runner(
    actions: TestClient, store: Store, running: str
) -> None:
    """With a live runner holding the task, the button records the request the runner obeys."""
    with store.run("ws", running):  # type: ignore[attr-defined]
        csrf = _csrf(actions)
        actions.post(f"/workspaces/ws/tasks/{running}/cancel", data={"token": TOKEN, "csrf": csrf})
        task = store.get("ws", running)
        assert task.status == TaskStatus.RUNNING and task.metadata["cancel_request"]["by"]["user"] == "dashboard"
