"""The server-rendered pages: workspaces, task listings, a task, artifacts; read with Starlette's TestClient."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient
from web_data import HOSTILE, HOSTILE_IMG, awaiting

from atlas_tasks import Task
from atlas_tasks.store import Store
from atlas_tasks.web._security import CSP

STORE_KINDS = ("memory", "file")
#: For the tests where the backend matters (what the dashboard reads, crash detection): PostgreSQL too.
ALL_KINDS = ("memory", "file", "postgres")


def _rows(html: str) -> list[str]:
    """The task ids of a listing page, in order."""
    return re.findall(r'<tr data-key="[^/"]+/([^"]+)"', html)


@pytest.mark.stores(*ALL_KINDS)
def test_workspaces_page_lists_workspaces_with_counts(client: TestClient, filled: dict[str, str]) -> None:
    """The front page lists every workspace with its task count and its crashed runs as a link."""
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<a href="/workspaces/ws">ws</a>' in page.text and '<a href="/workspaces/other">other</a>' in page.text
    assert 'href="/workspaces/ws?status=crashed">1</a>' in page.text
    assert "fix/rounding" in page.text


def test_workspaces_page_empty_store_says_how_to_start(client: TestClient) -> None:
    """An empty (even missing) home shows how to create a workspace instead of an error."""
    page = client.get("/")
    assert page.status_code == 200 and "atlas-tasks workspace create" in page.text


@pytest.mark.stores("file")  # damages a file of the layout behind the store's back
def test_workspaces_page_reports_an_unreadable_workspace(client: TestClient, store: Store) -> None:
    """A workspace.json that cannot be read is listed as unreadable, not hidden, and the rest still shows."""
    store.create_workspace("good")
    store.create_workspace("bad")
    (store.workspace_path("bad") / "workspace.json").write_text("{not json")
    page = client.get("/")
    assert page.status_code == 200
    assert "Unreadable (1)" in page.text and "CorruptWorkspaceError" in page.text
    assert '<a href="/workspaces/good">good</a>' in page.text


def test_workspace_listing_newest_first_with_counts(client: TestClient, filled: dict[str, str]) -> None:
    """A workspace's tasks come newest first, with a count per status and the crashed run marked."""
    page = client.get("/workspaces/ws")
    assert page.status_code == 200
    assert _rows(page.text) == [filled["pending"], filled["crashed"], filled["done"]]
    assert "3 of 3 tasks, newest first" in page.text
    assert re.search(r'status=validation_failed"[^>]*>validation_failed <span class="count">1</span>', page.text)
    assert re.search(r'status=crashed"[^>]*>interrupted \(crashed\) <span class="count">1</span>', page.text)
    assert f'<tr data-key="ws/{filled["crashed"]}" class="crashed">' in page.text
    assert '<span class="badge st-crashed">interrupted (crashed)</span>' in page.text


@pytest.mark.stores(*ALL_KINDS)
def test_listing_filters_by_status(client: TestClient, filled: dict[str, str]) -> None:
    """``status`` keeps the tasks in that status; repeated, in any of them; ``crashed`` the dead runs."""
    assert _rows(client.get("/workspaces/ws?status=pending").text) == [filled["pending"]]
    both = client.get("/workspaces/ws?status=pending&status=validation_failed").text
    assert _rows(both) == [filled["pending"], filled["done"]]
    assert _rows(client.get("/workspaces/ws?status=crashed").text) == [filled["crashed"]]
    assert _rows(client.get("/workspaces/ws?status=completed").text) == []


def test_listing_text_search(client: TestClient, filled: dict[str, str]) -> None:
    """``q`` searches ids, descriptions and templates, case-insensitively; the counts follow the search."""
    page = client.get("/workspaces/ws", params={"q": "REFUNDS"})
    assert _rows(page.text) == [filled["pending"]]
    assert "1 of 3 tasks" in page.text
    assert _rows(client.get("/workspaces/ws", params={"q": "commit"}).text) == [filled["crashed"]]
    assert _rows(client.get("/workspaces/ws", params={"q": "no such thing"}).text) == []


def test_listing_pages(client: TestClient, store: Store) -> None:
    """``per_page`` and ``page`` cut the newest-first list; links keep the filters; a page past the end clamps."""
    store.create_workspace("many")
    ids = [store.create("many", Task(id=f"task-{i:03d}", description=f"task {i}")).id for i in range(7)]
    newest_first = list(reversed(ids))  # created one after the other: later ones are newer
    first = client.get("/workspaces/many?per_page=3&q=task")
    assert _rows(first.text) == newest_first[:3]
    assert "page 1 of 3" in first.text
    assert 'href="/workspaces/many?q=task&amp;page=2&amp;per_page=3"' in first.text
    assert _rows(client.get("/workspaces/many?per_page=3&page=3").text) == newest_first[6:]
    assert _rows(client.get("/workspaces/many?per_page=3&page=99").text) == newest_first[6:]


def test_all_tasks_page_spans_workspaces(client: TestClient, filled: dict[str, str]) -> None:
    """/tasks lists every workspace's tasks newest first, with a workspace column."""
    page = client.get("/tasks")
    assert page.status_code == 200
    assert _rows(page.text) == [filled["other"], filled["pending"], filled["crashed"], filled["done"]]
    assert "<th>Workspace</th>" in page.text


@pytest.mark.stores("file")  # damages a file of the layout behind the store's back
def test_listing_reports_unreadable_tasks(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """A corrupt task.json is listed under Unreadable with its reason; the readable tasks are all there."""
    broken = store.task_path("ws", filled["pending"]) / "task.json"
    broken.write_text("{oops")
    page = client.get("/workspaces/ws")
    assert page.status_code == 200 and "CorruptTaskError" in page.text
    assert _rows(page.text) == [filled["crashed"], filled["done"]]


@pytest.mark.stores(*ALL_KINDS)
def test_task_page_shows_everything(client: TestClient, filled: dict[str, str]) -> None:
    """A task page has the header, the steps with attempts and durations, transitions, artifacts and the log."""
    page = client.get(f"/workspaces/ws/tasks/{filled['done']}")
    assert page.status_code == 200
    text = page.text
    assert '<span class="badge st-validation_failed">validation_failed</span>' in text
    assert "<dd>bugfix</dd>" in text and '<dd data-field="revision">2</dd>' in text
    assert '<span data-field="attempts">2</span>' in text and ">2m12s<" in text  # analyze: 2 attempts, 2m12s
    assert "running → validating" in text
    for name in ("report.json", "sdd/spec.md", "blob.bin", "validation.1.json"):
        assert f'/artifacts/{name}">{name}</a>' in text
    assert "step started" in text and 'data-log-count="2"' in text
    assert f'data-live-task="/workspaces/ws/tasks/{filled["done"]}/events"' in text


@pytest.mark.stores(*ALL_KINDS)
def test_task_page_marks_a_crashed_run(client: TestClient, filled: dict[str, str]) -> None:
    """A running task without a live runner shows the crashed banner and says how to resume."""
    text = client.get(f"/workspaces/ws/tasks/{filled['crashed']}").text
    assert '<div class="banner banner-crashed" data-when="crashed">' in text  # not hidden
    assert f"atlas-tasks run ws {filled['crashed']}" in text
    assert '<span class="badge st-crashed">interrupted (crashed)</span>' in text


@pytest.mark.stores(*ALL_KINDS)
def test_task_page_with_live_runner_is_not_crashed(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """While a runner holds the lease the task shows as running, with the runner's pid and host."""
    lease = store.acquire_lease("ws", filled["crashed"], {"pid": 4242, "host": "build-1", "started_at": "T"})
    try:
        text = client.get(f"/workspaces/ws/tasks/{filled['crashed']}").text
        listing = client.get("/workspaces/ws").text
    finally:
        lease.release()
    assert '<span class="badge st-running">running</span>' in text
    assert 'data-when="crashed" hidden' in text and "pid 4242 on build-1 since T" in text
    assert f'<tr data-key="ws/{filled["crashed"]}">' in listing


def test_awaiting_approval_read_only_shows_commands(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """A task waiting for approval says so; without --allow-actions there are no buttons, only the commands."""
    task_id = awaiting(store)
    text = client.get(f"/workspaces/ws/tasks/{task_id}").text
    assert '<div class="banner banner-approval" data-when="awaiting_approval">' in text
    assert f"atlas-tasks approve ws {task_id}" in text
    assert "<form" not in text


def test_awaiting_approval_with_actions_shows_buttons(
    make_client: Callable[..., TestClient], store: Store, filled: dict[str, str]
) -> None:
    """With actions on, the page has approve/reject buttons, a token field and the CSRF value."""
    task_id = awaiting(store)
    client = make_client(allow_actions=True, token="secret-token")
    page = client.get(f"/workspaces/ws/tasks/{task_id}")
    csrf = next(value for name, value in page.cookies.items() if name.startswith("atlas_tasks_csrf_"))
    assert f'action="/workspaces/ws/tasks/{task_id}/approve"' in page.text
    assert f'formaction="/workspaces/ws/tasks/{task_id}/reject"' in page.text
    assert f'name="csrf" value="{csrf}"' in page.text and 'name="token"' in page.text
    assert "secret-token" not in page.text


@pytest.mark.stores(*ALL_KINDS)
def test_hostile_text_is_escaped_everywhere(client: TestClient, filled: dict[str, str]) -> None:
    """Descriptions, step names, errors, reasons and log lines with HTML are shown as text, never as markup."""
    pages = [
        client.get("/").text,
        client.get("/tasks").text,
        client.get("/workspaces/ws").text,
        client.get(f"/workspaces/ws/tasks/{filled['done']}").text,
        client.get(f"/workspaces/ws/tasks/{filled['done']}/artifacts/sdd/spec.md").text,
        client.get(f"/workspaces/ws/tasks/{filled['done']}/artifacts/page.html").text,
    ]
    for html in pages:
        assert HOSTILE not in html and HOSTILE_IMG not in html
        assert "<script>alert" not in html and "<img src=x" not in html
    task_page = pages[3]
    assert "Fix &lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt; rounding" in task_page
    assert "lint failed: &lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in task_page
    assert "failed &lt;script&gt;" in task_page  # the log line
    assert "started &lt;script&gt;" in task_page  # the transition reason


def test_every_page_carries_security_headers(client: TestClient, filled: dict[str, str]) -> None:
    """Pages, errors and static files all carry the strict CSP, nosniff and no framing."""
    for path in ("/", "/workspaces/ws", "/workspaces/nope", "/static/style.css", "/api/workspaces"):
        response = client.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in CSP and "'unsafe-inline'" not in CSP


def test_pages_use_no_inline_script_or_external_asset(client: TestClient, filled: dict[str, str]) -> None:
    """No inline script or style and nothing from another host: the pages work offline under the CSP."""
    for path in ("/", "/workspaces/ws", f"/workspaces/ws/tasks/{filled['done']}"):
        html = client.get(path).text
        assert "<script>" not in html and "style=" not in html and "<style" not in html
        assert not re.search(r'(src|href)="(https?:)?//', html)


def test_static_assets_are_served(client: TestClient) -> None:
    """The stylesheet and the live script come from the package with proper content types."""
    css = client.get("/static/style.css")
    js = client.get("/static/live.js")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "EventSource" in js.text and "innerHTML" not in js.text
