"""The dashboard's task page shows a task's pin (atlas_tasks.retention.pins)."""

from __future__ import annotations

from starlette.testclient import TestClient

from atlas_tasks.retention import pins
from atlas_tasks.store import Store
from atlas_tasks.testing.conformance import sample_task


def test_task_page_shows_the_pin_and_drops_it_after_unpin(client: TestClient, store: Store) -> None:
    """A pinned task's page has a Pinned row with the reason; after unpin the row is gone."""
    store.create_workspace("ws")
    task = store.create("ws", sample_task(status="completed"))
    pins.pin(store, "ws", task.id, "legal <hold>")
    page = client.get(f"/workspaces/ws/tasks/{task.id}").text
    assert "<dt>Pinned</dt>" in page and "legal &lt;hold&gt;" in page
    pins.unpin(store, "ws", task.id)
    assert "<dt>Pinned</dt>" not in client.get(f"/workspaces/ws/tasks/{task.id}").text
