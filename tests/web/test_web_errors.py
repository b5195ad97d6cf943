"""Bad input gets a proper 400/404 page (never a traceback), and artifacts are served so they cannot run."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient
from web_data import BINARY, HOSTILE

from atlas_tasks.store import Store
from atlas_tasks.web._security import RAW_CSP

STORE_KINDS = ("memory", "file")

TASK = "/workspaces/ws/tasks/{done}"


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/workspaces/nope", 404, "workspace &#39;nope&#39; does not exist"),
        ("/workspaces/ws/tasks/task-nope", 404, "task &#39;task-nope&#39; in workspace &#39;ws&#39; not found"),
        ("/workspaces/nope/tasks/task-nope", 404, "does not exist"),
        (TASK + "/artifacts/missing.txt", 404, "missing.txt"),
        (TASK + "/raw/missing.txt", 404, "missing.txt"),
        ("/workspaces/bad%20name", 400, "invalid workspace name"),
        ("/workspaces/.hidden", 400, "invalid workspace name"),
        ("/workspaces/ws/tasks/.task", 400, "invalid task id"),
        ("/workspaces/ws/tasks/..%2F..%2Fetc", 404, "no such page"),  # a slash in an id matches no route
        (TASK + "/raw/..%2F..%2Ftask.json", 400, "invalid artifact name"),
        (TASK + "/raw/%2e%2e/task.json", 400, "invalid artifact name"),
        (TASK + "/artifacts/%2Fetc%2Fpasswd", 400, "invalid artifact name"),
        (TASK + "/raw/sdd%5C..%5Cx", 400, "invalid artifact name"),
        ("/workspaces/ws?page=two", 400, "page must be a whole number"),
        ("/workspaces/ws?status=sleeping", 400, "unknown status"),
        ("/workspaces/ws?q=" + "x" * 201, 400, "longer than 200"),
        (TASK + "/events?log_from=-1", 400, "log_from must be a whole number"),
        ("/events/tasks?t=no-slash", 400, "workspace/task-id"),
        ("/events/tasks?t=ws/..", 400, "invalid task id"),
        ("/no/such/page", 404, "no such page"),
    ],
)
def test_bad_input_gets_an_error_page(
    client: TestClient, filled: dict[str, str], path: str, status: int, says: str
) -> None:
    """Unknown names are 404, invalid names and traversal 400: an HTML page saying why, with no traceback."""
    response = client.get(path.format(done=filled["done"]))
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert says in response.text
    assert "Traceback" not in response.text and 'File "' not in response.text


def test_error_page_escapes_the_name_it_repeats(client: TestClient, filled: dict[str, str]) -> None:
    """A hostile name in the URL comes back escaped on the 400 page."""
    response = client.get("/workspaces/%3Cscript%3Ealert(1)%3C%5Cscript%3E")
    assert response.status_code == 400
    assert "<script>alert(1)" not in response.text and "&lt;script&gt;alert(1)" in response.text


def test_wrong_method_is_405(client: TestClient, filled: dict[str, str]) -> None:
    """A GET route answers a POST with 405, an error page."""
    response = client.post("/workspaces/ws")
    assert response.status_code == 405 and "Method not allowed" in response.text


def test_unexpected_error_is_a_500_page_without_traceback(
    make_client: Callable[..., TestClient], store: Store, filled: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (any exception) becomes a plain 500 page that gives nothing away."""

    def broken(*args: object) -> None:
        raise RuntimeError("secret internal detail")

    client = make_client(raise_server_exceptions=False)
    monkeypatch.setattr(store, "get", broken)
    response = client.get(f"/workspaces/ws/tasks/{filled['done']}")
    assert response.status_code == 500 and "Internal error" in response.text
    assert "secret internal detail" not in response.text and "Traceback" not in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'self'")


@pytest.mark.stores("file")  # damages a file of the layout behind the store's back
def test_corrupt_task_page_is_an_error_page(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """A task whose task.json cannot be read gets a page that says so (not a crash)."""
    (store.task_path("ws", filled["pending"]) / "task.json").write_text("{oops")
    response = client.get(f"/workspaces/ws/tasks/{filled['pending']}")
    assert response.status_code == 500 and "Unreadable task" in response.text and "invalid JSON" in response.text


# -- artifacts -----------------------------------------------------------------------------------------------------


def test_json_artifact_is_pretty_printed(client: TestClient, filled: dict[str, str]) -> None:
    """A JSON artifact is shown indented, its HTML-looking strings escaped."""
    text = client.get(f"/workspaces/ws/tasks/{filled['done']}/artifacts/report.json").text
    assert '<pre class="artifact">{\n  &#34;success&#34;: false,\n  &#34;html&#34;: &#34;&lt;b&gt;bold' in text


def test_markdown_artifact_is_rendered_without_raw_html(client: TestClient, filled: dict[str, str]) -> None:
    """Markdown becomes HTML, but raw HTML in it stays text and javascript: links are not links."""
    text = client.get(f"/workspaces/ws/tasks/{filled['done']}/artifacts/sdd/spec.md").text
    assert "<h1>Spec</h1>" in text
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in text or "&lt;script&gt;alert('xss')" in text
    assert 'href="javascript:' not in text and HOSTILE not in text


def test_binary_artifact_is_offered_for_download(client: TestClient, filled: dict[str, str]) -> None:
    """A binary artifact is not shown; the page links to a download."""
    text = client.get(f"/workspaces/ws/tasks/{filled['done']}/artifacts/blob.bin").text
    assert "Binary content" in text and "/raw/blob.bin?download=1" in text


def test_large_artifact_is_download_only(client: TestClient, store: Store, filled: dict[str, str]) -> None:
    """An artifact over the preview limit is offered for download instead of being inlined."""
    store.save_artifact("ws", filled["done"], "huge.txt", "x" * (2 * 1024 * 1024 + 1))
    text = client.get(f"/workspaces/ws/tasks/{filled['done']}/artifacts/huge.txt").text
    assert "Too large to show here" in text and "xxxxxxxxxx" not in text


@pytest.mark.parametrize(
    ("name", "content_type", "attachment"),
    [
        ("page.html", "text/plain; charset=utf-8", False),
        ("sdd/spec.md", "text/plain; charset=utf-8", False),
        ("blob.bin", "application/octet-stream", True),
    ],
)
def test_raw_artifacts_have_a_safe_content_type(
    client: TestClient, filled: dict[str, str], name: str, content_type: str, attachment: bool
) -> None:
    """Raw bytes are text/plain or octet-stream (never HTML), nosniff, sandboxed; binaries are attachments."""
    response = client.get(f"/workspaces/ws/tasks/{filled['done']}/raw/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == RAW_CSP
    assert ("content-disposition" in response.headers) is attachment


def test_raw_download_sets_attachment(client: TestClient, filled: dict[str, str]) -> None:
    """``?download=1`` makes even text an attachment named after the artifact."""
    response = client.get(f"/workspaces/ws/tasks/{filled['done']}/raw/sdd/spec.md?download=1")
    assert response.headers["content-disposition"] == "attachment; filename=\"spec.md\"; filename*=UTF-8''spec.md"
    assert response.content.startswith(b"# Spec")


def test_raw_binary_bytes_are_unchanged(client: TestClient, filled: dict[str, str]) -> None:
    """Downloads are byte for byte what the store holds."""
    assert client.get(f"/workspaces/ws/tasks/{filled['done']}/raw/blob.bin").content == BINARY
