"""The dashboard and the API agree with the CLI about a crashed run: counted and filtered as crashed, never running.

``filled``'s ``task-crashed`` is stored as running, with its step in flight, and no runner ever held its lease.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from atlas_tasks import Step, StepResult, Task
from atlas_tasks.cli import app as cli_app
from atlas_tasks.store import Store
from atlas_tasks.web import _views
from store_kinds import cli_args

STORE_KINDS = ("memory", "file")
#: For the tests where the backend matters (what the dashboard reads, crash detection): PostgreSQL too.
ALL_KINDS = ("memory", "file", "postgres")


def _rows(html: str) -> list[str]:
    """The task ids of a listing page, in order."""
    return re.findall(r'<tr data-key="[^/"]+/([^"]+)"', html)


def _workspace_counts(html: str, name: str) -> list[str]:
    """The numbers of one workspace's row on the front page: tasks, running, crashed, waiting."""
    row = re.search(rf'<tr[^>]*>\s*<td><a href="/workspaces/{name}">{name}</a>.*?</tr>', html, re.S)
    assert row is not None
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r'<td class="num">(.*?)</td>', row.group(0))]


def cli_json(store: Store, *args: str) -> Any:
    """What ``atlas-tasks --store URL ARGS --json`` prints for ``store``, parsed."""
    result = CliRunner().invoke(cli_app, [*cli_args(store), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.stores(*ALL_KINDS)
def test_front_page_counts_a_crashed_run_as_crashed_not_running(client: TestClient, filled: dict[str, str]) -> None:
    """The workspace's row says 0 running and 1 crashed: the dead run is not counted twice."""
    assert _workspace_counts(client.get("/").text, "ws") == ["3", "0", "1", "0"]


def test_status_running_leaves_a_crashed_run_out(client: TestClient, filled: dict[str, str]) -> None:
    """`?status=running` lists no crashed run (nothing of ws is running)."""
    assert _rows(client.get("/workspaces/ws?status=running").text) == []


def test_status_interrupted_includes_a_crashed_run(client: TestClient, filled: dict[str, str]) -> None:
    """`?status=interrupted` lists the crashed run, as `list -s interrupted` does."""
    assert _rows(client.get("/workspaces/ws?status=interrupted").text) == [filled["crashed"]]


def test_live_runner_keeps_a_task_running(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """With its lease held the same task counts and filters as running, not crashed."""
    lease = store.acquire_lease("ws", filled["crashed"], {"pid": 4242, "host": "build-1", "started_at": "T"})
    try:
        assert _workspace_counts(client.get("/").text, "ws") == ["3", "1", "0", "0"]
        assert _rows(client.get("/workspaces/ws?status=running").text) == [filled["crashed"]]
    finally:
        lease.release()


def test_task_page_stops_the_step_timer_of_a_crashed_run(client: TestClient, filled: dict[str, str]) -> None:
    """The in-flight step of a crashed run carries no running-since clock and says its runner died."""
    text = client.get(f"/workspaces/ws/tasks/{filled['crashed']}").text
    assert "data-running-since" not in text
    assert re.search(r'data-field="duration">stopped \(runner died\)</span>', text)


def test_live_task_event_of_a_crashed_run_has_no_running_step(store: Store, filled: dict[str, str]) -> None:
    """The live page's ``task`` event for a crashed run gives no step a running-since time to count from."""
    state = _views.task_state(store, "ws", store.get("ws", filled["crashed"]))
    assert state["crashed"] is True
    assert [s["running_since"] for s in state["steps"]] == [None]


@pytest.mark.stores(*ALL_KINDS)
def test_api_status_crashed_lists_only_crashed_runs(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """`/api/workspaces/ws/tasks?status=crashed` is `list ws -s crashed --json`: just the crashed run."""
    document = client.get("/api/workspaces/ws/tasks?status=crashed").json()
    assert [t["id"] for t in document["tasks"]] == [filled["crashed"]]
    assert document == cli_json(store, "list", "ws", "-s", "crashed")


@pytest.mark.stores(*ALL_KINDS)
@pytest.mark.parametrize("status", ["running", "interrupted"])
def test_api_status_filters_match_the_cli(
    client: TestClient, store: Store, filled: dict[str, str], status: str
) -> None:
    """The API's running and interrupted filters treat the crashed run as the CLI's do."""
    document = client.get(f"/api/workspaces/ws/tasks?status={status}").json()
    assert document == cli_json(store, "list", "ws", "-s", status)
    expected = [filled["crashed"]] if status == "interrupted" else []
    assert [t["id"] for t in document["tasks"]] == expected


def test_api_task_of_a_crashed_run_says_so(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """`/api/.../tasks/ID` of a crashed run is `show --json`, with crashed true and no runner."""
    document = client.get(f"/api/workspaces/ws/tasks/{filled['crashed']}").json()
    assert document == cli_json(store, "show", "ws", filled["crashed"])
    assert document["crashed"] is True and document["runner"] is None


def test_task_page_names_the_step_of_each_artifact(client: TestClient, store: Store) -> None:
    """The artifacts table says which step produced each file, from the step result that recorded it."""
    store.create_workspace("w")
    task = store.create("w", Task(steps=[Step(name="lint", type="validation"), Step(name="test", type="validation")]))
    saved = store.save_versioned_artifact("w", task.id, "validation.json", b"{}")
    store.save_versioned_artifact("w", task.id, "validation.json", b"{}")

    def record(t: Task) -> None:
        t.step_results.append(
            StepResult(step_index=1, step_name="test", status="success", artifact_path=f"artifacts/{saved}")
        )

    store.modify("w", task.id, record)
    text = client.get(f"/workspaces/w/tasks/{task.id}").text
    cells = re.findall(
        r'>([^<>]+)</a></td>\s*<td class="num">[^<]*</td>\s*<td data-field="artifact-step">([^<]*)</td>', text
    )
    assert cells == [("validation.1.json", "test"), ("validation.2.json", "-")]
