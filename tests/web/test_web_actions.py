"""Approve and reject from the dashboard: off by default; with --allow-actions they need the token and CSRF."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient
from web_data import awaiting

from atlas_tasks import TaskStatus
from atlas_tasks.store import Store

STORE_KINDS = ("memory", "file")

TOKEN = "test-token-0123456789"


@pytest.fixture
def waiting(store: Store, filled: dict[str, str]) -> str:
    """A task at awaiting_approval with no step left after the review."""
    return awaiting(store)


@pytest.fixture
def actions(make_client: Callable[..., TestClient]) -> TestClient:
    """A dashboard client with actions on and a known token."""
    return make_client(allow_actions=True, token=TOKEN)


def _csrf(client: TestClient, path: str = "/") -> str:
    """Visit a page so the CSRF cookie is set; return its value."""
    client.get(path)
    return next(value for name, value in client.cookies.items() if name.startswith("atlas_tasks_csrf_"))


def _form(**fields: str) -> dict[str, str]:
    return fields


def test_actions_are_off_by_default(client: TestClient, store: Store, waiting: str) -> None:
    """Without --allow-actions a POST is refused with 403 whatever it carries, and the task is untouched."""
    csrf = _csrf(client)
    response = client.post(f"/workspaces/ws/tasks/{waiting}/approve", data=_form(token=TOKEN, csrf=csrf))
    assert response.status_code == 403 and "--allow-actions" in response.text
    assert store.get("ws", waiting).status == TaskStatus.AWAITING_APPROVAL


def test_approve_with_token_and_csrf(actions: TestClient, store: Store, waiting: str) -> None:
    """The form's token and CSRF value approve the task; the answer redirects back to the task page."""
    csrf = _csrf(actions)
    response = actions.post(
        f"/workspaces/ws/tasks/{waiting}/approve",
        data=_form(token=TOKEN, csrf=csrf, reason="looks good"),
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == f"/workspaces/ws/tasks/{waiting}"
    task = store.get("ws", waiting)
    assert task.status == TaskStatus.COMPLETED and task.transitions[-1].reason == "looks good"


def test_reject_with_token_and_csrf(actions: TestClient, store: Store, waiting: str) -> None:
    """Reject works the same way and ends the task as rejected."""
    csrf = _csrf(actions)
    actions.post(f"/workspaces/ws/tasks/{waiting}/reject", data=_form(token=TOKEN, csrf=csrf))
    assert store.get("ws", waiting).status == TaskStatus.REJECTED


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({}, "needs the token"),
        ({"token": "wrong"}, "needs the token"),
        ({"token": TOKEN}, "CSRF check failed"),
        ({"token": TOKEN, "csrf": "forged"}, "CSRF check failed"),
    ],
)
def test_action_without_token_or_csrf_is_refused(
    actions: TestClient, store: Store, waiting: str, fields: dict[str, str], says: str
) -> None:
    """A missing or wrong token, or a CSRF value that is not the cookie's, gets 403 and changes nothing."""
    _csrf(actions)
    response = actions.post(f"/workspaces/ws/tasks/{waiting}/approve", data=fields)
    assert response.status_code == 403 and says in response.text
    assert store.get("ws", waiting).status == TaskStatus.AWAITING_APPROVAL


def test_action_from_another_origin_is_refused(actions: TestClient, store: Store, waiting: str) -> None:
    """Even with token and CSRF value, a request whose Origin is another site is refused."""
    csrf = _csrf(actions)
    response = actions.post(
        f"/workspaces/ws/tasks/{waiting}/approve",
        data=_form(token=TOKEN, csrf=csrf),
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403 and "another origin" in response.text
    same = actions.post(
        f"/workspaces/ws/tasks/{waiting}/approve",
        data=_form(token=TOKEN, csrf=csrf),
        headers={"origin": "http://127.0.0.1", "sec-fetch-site": "same-origin"},
    )
    assert same.status_code == 200  # followed the redirect to the task page
    assert store.get("ws", waiting).status == TaskStatus.COMPLETED


def test_cross_site_fetch_is_refused(actions: TestClient, waiting: str) -> None:
    """A browser's ``Sec-Fetch-Site: cross-site`` marks a request made by another site: refused."""
    csrf = _csrf(actions)
    response = actions.post(
        f"/workspaces/ws/tasks/{waiting}/approve",
        data=_form(token=TOKEN, csrf=csrf),
        headers={"sec-fetch-site": "cross-site"},
    )
    assert response.status_code == 403


def test_token_url_logs_in_and_strips_the_token(actions: TestClient, store: Store, waiting: str) -> None:
    """Opening ``?token=`` sets an HttpOnly cookie and redirects to the URL without it; forms then need only CSRF."""
    response = actions.get(f"/workspaces/ws?token={TOKEN}&q=x", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/workspaces/ws?q=x"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = actions.get(f"/workspaces/ws/tasks/{waiting}")
    assert 'name="token"' not in page.text  # logged in: the form does not ask for it
    csrf = _csrf(actions)
    actions.post(f"/workspaces/ws/tasks/{waiting}/approve", data=_form(csrf=csrf))
    assert store.get("ws", waiting).status == TaskStatus.COMPLETED


def test_wrong_token_url_is_refused(actions: TestClient) -> None:
    """A wrong ``?token=`` is a 403, and no cookie is set."""
    response = actions.get("/?token=nope", follow_redirects=False)
    assert response.status_code == 403 and "set-cookie" not in response.headers


def test_api_bearer_token_approves_without_csrf(actions: TestClient, store: Store, waiting: str) -> None:
    """API clients send ``Authorization: Bearer TOKEN`` (no cookies, so no CSRF) and get the task document."""
    response = actions.post(f"/api/workspaces/ws/tasks/{waiting}/approve", headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.json()["status"] == "completed"
    wrong = actions.post(f"/api/workspaces/ws/tasks/{waiting}/reject", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["error"] == "Forbidden"


def test_approve_with_steps_left_starts_a_runner(
    make_client: Callable[..., TestClient], store: Store, filled: dict[str, str]
) -> None:
    """When steps remain after the review, approving hands the task to the runner, as ``atlas-tasks approve`` does."""
    started: list[tuple[str, str]] = []
    client = make_client(allow_actions=True, token=TOKEN, runner=lambda ws, task_id: started.append((ws, task_id)))
    task_id = awaiting(store, steps_after=1)
    client.post(f"/workspaces/ws/tasks/{task_id}/approve", data=_form(token=TOKEN, csrf=_csrf(client)))
    assert started == [("ws", task_id)]
    assert store.get("ws", task_id).status == TaskStatus.RUNNING


def test_approve_a_task_not_waiting_is_409(actions: TestClient, filled: dict[str, str]) -> None:
    """Approving a task that does not wait for approval is a 409 that says why."""
    response = actions.post(
        f"/workspaces/ws/tasks/{filled['pending']}/approve", data=_form(token=TOKEN, csrf=_csrf(actions))
    )
    assert response.status_code == 409 and "is pending, not awaiting approval" in response.text


def test_approve_is_post_only(actions: TestClient, waiting: str) -> None:
    """A GET on an action URL is 405: links and prefetches can never change a task."""
    assert actions.get(f"/workspaces/ws/tasks/{waiting}/approve").status_code == 405


def test_form_must_be_urlencoded(actions: TestClient, waiting: str) -> None:
    """A form in another encoding is a 400, not a guess."""
    response = actions.post(
        f"/workspaces/ws/tasks/{waiting}/approve",
        content=b'{"token": "x"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8700", "127.0.0.1.evil.example"])
def test_foreign_host_header_is_refused(client: TestClient, host: str) -> None:
    """Bound to loopback, a Host header naming another site (DNS rebinding) is refused."""
    response = client.get("/", headers={"host": host})
    assert response.status_code == 400 and "unexpected Host" in response.text


@pytest.mark.parametrize("host", ["127.0.0.1:8700", "localhost", "[::1]:8700"])
def test_loopback_host_headers_are_accepted(client: TestClient, host: str) -> None:
    """The loopback names, with or without a port, are accepted."""
    assert client.get("/", headers={"host": host}).status_code == 200


def test_any_host_when_bound_to_all_interfaces(make_client: Callable[..., TestClient]) -> None:
    """Bound to 0.0.0.0 the server is reached by names it cannot know, so any Host is accepted."""
    client = make_client(bind_host="0.0.0.0")
    assert client.get("/", headers={"host": "buildbox.lan:8700"}).status_code == 200


def test_cookies_are_per_server(make_client: Callable[..., TestClient]) -> None:
    """Two dashboards use different cookie names (cookies ignore ports, so they would clash)."""
    first, second = make_client(), make_client()
    first.get("/")
    second.get("/")
    assert set(first.cookies.keys()).isdisjoint(second.cookies.keys())
