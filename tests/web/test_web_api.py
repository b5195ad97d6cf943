"""The JSON API under /api/: the very documents the CLI prints with --json, and JSON errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner
from web_data import BINARY

from atlas_tasks.cli import app as cli_app
from atlas_tasks.store import Store
from store_kinds import cli_args

STORE_KINDS = ("memory", "file")
#: For the tests where the backend matters (what the dashboard reads, crash detection): PostgreSQL too.
ALL_KINDS = ("memory", "file", "postgres")


def cli_json(store: Store, *args: str) -> Any:
    """What ``atlas-tasks --store URL ARGS --json`` prints for ``store``, parsed."""
    result = CliRunner().invoke(cli_app, [*cli_args(store), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.stores(*ALL_KINDS)
@pytest.mark.parametrize(
    ("path", "args"),
    [
        ("/api/workspaces", ["workspace", "list"]),
        ("/api/workspaces/ws", ["workspace", "show", "ws"]),
        ("/api/tasks", ["list"]),
        ("/api/workspaces/ws/tasks", ["list", "ws"]),
        ("/api/workspaces/ws/tasks?status=pending&status=running", ["list", "ws", "-s", "pending", "-s", "running"]),
    ],
)
def test_api_documents_equal_cli_json(
    client: TestClient, store: Store, filled: dict[str, str], path: str, args: list[str]
) -> None:
    """Each listing endpoint returns exactly the CLI's --json document (keys, order, values)."""
    response = client.get(path)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == cli_json(store, *args)
    assert list(response.json()) == list(cli_json(store, *args))


@pytest.mark.stores(*ALL_KINDS)
def test_api_task_equals_show_json(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """/api/workspaces/WS/tasks/ID is ``show WS ID --json``: task document, artifacts with sizes, log summary."""
    document = client.get(f"/api/workspaces/ws/tasks/{filled['done']}").json()
    assert document == cli_json(store, "show", "ws", filled["done"])
    assert (
        document["log"]["lines"] == 2
        and {"name": "blob.bin", "size": len(BINARY), "step": None} in document["artifacts"]
    )


@pytest.mark.stores(*ALL_KINDS)
def test_api_artifacts_equals_cli(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """/artifacts is ``artifacts WS ID --json``."""
    response = client.get(f"/api/workspaces/ws/tasks/{filled['done']}/artifacts")
    assert response.json() == cli_json(store, "artifacts", "ws", filled["done"])


@pytest.mark.stores(*ALL_KINDS)
def test_api_log_equals_logs_json_bytes(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """/log is ``logs WS ID --json`` byte for byte: JSON Lines, one compact entry per line."""
    response = client.get(f"/api/workspaces/ws/tasks/{filled['done']}/log")
    result = CliRunner().invoke(cli_app, [*cli_args(store), "logs", "ws", filled["done"], "--json"])
    assert response.content == result.stdout_bytes
    assert response.headers["content-type"] == "application/x-ndjson"


@pytest.mark.stores(*ALL_KINDS)
def test_api_artifact_bytes_equal_get(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """An artifact under /api/ is ``artifacts --get``'s bytes, with a safe content type."""
    response = client.get(f"/api/workspaces/ws/tasks/{filled['done']}/artifacts/blob.bin")
    result = CliRunner().invoke(cli_app, [*cli_args(store), "artifacts", "ws", filled["done"], "--get", "blob.bin"])
    assert response.content == result.stdout_bytes == BINARY
    assert response.headers["content-type"] == "application/octet-stream"


@pytest.mark.stores("file")  # damages a file of the layout behind the store's back
def test_api_list_reports_interrupted_and_errors(client: TestClient, store: Any, filled: dict[str, str]) -> None:
    """The list document names the crashed run under "interrupted" and an unreadable task under "errors"."""
    (store.task_path("ws", filled["pending"]) / "task.json").write_text("[]")
    document = client.get("/api/workspaces/ws/tasks").json()
    assert document["interrupted"] == [{"workspace": "ws", "task_id": filled["crashed"]}]
    assert [e["task_id"] for e in document["errors"]] == [filled["pending"]]
    assert document["errors"][0]["error"] == "CorruptTaskError"


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/api/workspaces/nope", 404, "WorkspaceNotFoundError"),
        ("/api/workspaces/nope/tasks", 404, "WorkspaceNotFoundError"),
        ("/api/workspaces/ws/tasks/task-nope", 404, "TaskNotFoundError"),
        ("/api/workspaces/ws/tasks/task-nope/log", 404, "TaskNotFoundError"),
        ("/api/workspaces/..%2e/tasks", 400, "InvalidNameError"),
        ("/api/workspaces/ws/tasks/bad%20id", 400, "InvalidNameError"),
        ("/api/tasks?status=sleeping", 400, "BadRequest"),
        ("/api/nothing-here", 404, "HTTPException"),
    ],
)
def test_api_errors_are_json(client: TestClient, filled: dict[str, str], path: str, status: int, error: str) -> None:
    """API errors are JSON documents with the error class and message, and the right status code."""
    response = client.get(path)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error and body["status"] == status and body["message"]
