"""The dashboard over PostgreSQL: big artifacts judged by size and downloaded in chunks; a big log's page shows
its tail, and its event stream continues from the page's last line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from atlas_tasks import Task
from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.web import create_app
from atlas_tasks.web._content import PREVIEW_LIMIT
from atlas_tasks.web._live import LiveSettings

FAST = LiveSettings(poll=0.05, lifetime=10.0, keepalive=5.0)


@pytest.fixture
def store(pg_url: str, fresh_schema: str) -> Iterator[PostgresStore]:
    store = PostgresStore(pg_url, schema=fresh_schema)
    store.create_workspace("ws")
    yield store
    store.close()


@pytest.fixture
def client(store: PostgresStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, live=FAST), base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_big_artifact_is_too_large_to_show_and_downloads_whole(store: PostgresStore, client: TestClient) -> None:
    """A text artifact over the preview limit is offered as a download, and the download has every byte."""
    task = store.create("ws", Task(template="t", description="big"))
    data = b"line of text\n" * (PREVIEW_LIMIT // 13 + 10)
    store.save_artifact("ws", task.id, "big.log", data)
    page = client.get(f"/workspaces/ws/tasks/{task.id}/artifacts/big.log")
    assert page.status_code == 200 and "too large" in page.text.lower()
    raw = client.get(f"/workspaces/ws/tasks/{task.id}/raw/big.log")
    assert raw.headers["content-type"] == "application/octet-stream" and raw.content == data


def test_task_page_shows_the_tail_and_the_stream_continues_after_it(store: PostgresStore, client: TestClient) -> None:
    """With 2,100 lines the page shows the last 2,000 and its stream starts after line 2,100 (its position)."""
    task = store.create("ws", Task(template="t", description="chatty", status="abandoned"))  # the stream ends
    for i in range(2100):
        store.append_log("ws", task.id, {"event": f"line {i}"})
    page = client.get(f"/workspaces/ws/tasks/{task.id}").text
    assert page.count('class="log-line"') == 2000 and "Earlier lines are not shown" in page
    position = re.search(r'data-log-from="(\d+)"', page)
    assert position is not None and position.group(1) == "2100"
    store.append_log("ws", task.id, {"event": "the last"})
    with client.stream("GET", f"/workspaces/ws/tasks/{task.id}/events?log_from=2100") as response:
        lines = [line for line in response.iter_lines() if line.startswith(("id:", "data:"))]
    logged = [json.loads(d[6:]) for d in lines if d.startswith("data:") and '"pieces"' in d]
    assert len(logged) == 1 and "the last" in "".join(text for text, _ in logged[0]["pieces"])
    assert "id: 2101" in lines
