"""What one request may cost the dashboard: bodies refused before they are read, measured on a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from serve_process import raw_request, serving, status_of
from web_data import awaiting

from atlas_tasks import FileStore

STORE_KINDS = ("memory", "file")

MB = 1024 * 1024
BODY = 50 * MB
#: How much the server's peak memory may grow while refusing a 50 MB body: far below the body's size.
ALLOWED_GROWTH = 8 * MB


def _chunks(total: int, size: int = MB) -> Iterator[bytes]:
    block = b"a" * size
    for _ in range(total // size):
        yield block


def _chunked(total: int) -> Iterator[bytes]:
    for block in _chunks(total):
        yield f"{len(block):x}\r\n".encode() + block + b"\r\n"
    yield b"0\r\n\r\n"


def _post(port: int, path: str, *headers: str, length: int | None = BODY) -> bytes:
    """POST a body of ``BODY`` bytes: with a Content-Length, or chunked when ``length`` is None."""
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/x-www-form-urlencoded"]
    if length is None:
        head.append("Transfer-Encoding: chunked")
        body = _chunked(BODY)
    else:
        head.append(f"Content-Length: {length}")
        body = _chunks(BODY)
    return raw_request(port, "\r\n".join([*head, *headers]), body)


def _small_post(port: int, path: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 8\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded"
    )
    return raw_request(port, head, iter([b"reason=x"]))


def _waiting_home(home: Path) -> str:
    store = FileStore(home)
    store.create_workspace("ws")
    return awaiting(store)


def test_read_only_server_refuses_a_big_body_without_reading_it(home: Path) -> None:
    """A 50 MB approve to a read-only server is a 403, and the server's peak memory does not grow with the body."""
    task_id = _waiting_home(home)
    path = f"/workspaces/ws/tasks/{task_id}/approve"
    with serving("--home", str(home), "serve") as server:
        assert status_of(_small_post(server.port, path)) == 403
        before = server.peak_rss()
        response = _post(server.port, path, length=None)
        growth = server.peak_rss() - before
    assert growth < ALLOWED_GROWTH, f"peak memory grew by {growth / MB:.1f} MB for a {BODY // MB} MB body"
    assert status_of(response) == 403


def test_big_body_without_token_is_refused_by_its_declared_length(home: Path) -> None:
    """With actions on, a 50 MB body without a token is a 413 from its Content-Length, before it is read."""
    task_id = _waiting_home(home)
    path = f"/api/workspaces/ws/tasks/{task_id}/reject"
    with serving("--home", str(home), "serve", "--allow-actions") as server:
        assert status_of(_small_post(server.port, path)) == 403
        before = server.peak_rss()
        response = _post(server.port, path)
        growth = server.peak_rss() - before
    assert growth < ALLOWED_GROWTH, f"peak memory grew by {growth / MB:.1f} MB for a {BODY // MB} MB body"
    assert status_of(response) == 413


def test_big_chunked_body_is_cut_off_at_the_form_limit(home: Path) -> None:
    """With actions on, a 50 MB chunked body (no Content-Length) is a 413 once past the limit, never held whole."""
    task_id = _waiting_home(home)
    path = f"/workspaces/ws/tasks/{task_id}/approve"
    with serving("--home", str(home), "serve", "--allow-actions") as server:
        assert status_of(_small_post(server.port, path)) == 403
        before = server.peak_rss()
        response = _post(server.port, path, length=None)
        growth = server.peak_rss() - before
    assert growth < ALLOWED_GROWTH, f"peak memory grew by {growth / MB:.1f} MB for a {BODY // MB} MB body"
    assert status_of(response) == 413


def test_wrong_bearer_token_is_refused_before_the_body(home: Path) -> None:
    """A wrong ``Authorization`` token is a 403 even with a 50 MB body, which is not read."""
    task_id = _waiting_home(home)
    path = f"/api/workspaces/ws/tasks/{task_id}/approve"
    with serving("--home", str(home), "serve", "--allow-actions") as server:
        assert status_of(_small_post(server.port, path)) == 403
        before = server.peak_rss()
        response = _post(server.port, path, "Authorization: Bearer wrong", length=None)
        growth = server.peak_rss() - before
    assert growth < ALLOWED_GROWTH, f"peak memory grew by {growth / MB:.1f} MB for a {BODY // MB} MB body"
    assert status_of(response) == 403
