"""What a page costs on a real server: a huge log and a huge artifact do not become per-request memory, and an
event stream that a client drops ends quietly."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from serve_process import serving, status_of

from atlas_tasks import FileStore, Step, Task

MB = 1024 * 1024
LOG_LINES = 300_000
#: How much a task page of a 300,000-line (about 40 MB) log may raise the server's peak memory.
ALLOWED_PAGE_GROWTH = 24 * MB
ARTIFACT = 200 * MB
ALLOWED_DOWNLOAD_GROWTH = 16 * MB


def _big_log_task(home: Path) -> str:
    store = FileStore(home)
    store.create_workspace("ws")
    task = store.create("ws", Task(template="t", description="chatty"))
    line = b'{"ts":"2026-12-01T00:00:00Z","level":"info","event":"step output line","pad":"' + b"x" * 80 + b'"}\n'
    with open(store.log_path("ws", task.id), "wb") as log:
        for _ in range(LOG_LINES // 1000):
            log.write(line * 1000)
    return str(task.id)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        body: bytes = response.read()
        return body


def test_task_page_of_a_huge_log_reads_only_its_tail(home: Path) -> None:
    """The page of a task with a 300,000-line log shows its last lines without the log becoming server memory."""
    task_id = _big_log_task(home)
    with serving("--home", str(home), "serve") as server:
        _get(server.url)
        before = server.peak_rss()
        page = _get(f"{server.url}workspaces/ws/tasks/{task_id}")
        growth = server.peak_rss() - before
    assert growth < ALLOWED_PAGE_GROWTH, f"peak memory grew by {growth / MB:.0f} MB for one task page"
    assert page.count(b'class="log-line"') == 2000 and b"Earlier lines are not shown" in page


def test_raw_download_of_a_huge_artifact_is_streamed(home: Path) -> None:
    """Downloading a 200 MB artifact gives all its bytes, and the server's peak memory does not grow by its size."""
    store = FileStore(home)
    store.create_workspace("ws")
    task = store.create("ws", Task(template="t", description="big output"))
    store.save_artifact("ws", task.id, "small.txt", "x")
    path = store.task_path("ws", task.id) / "artifacts" / "huge.bin"
    with open(path, "wb") as f:  # written directly: save_artifact would need the 200 MB in this process
        for _ in range(ARTIFACT // MB):
            f.write(os.urandom(1024) * 1024)
    with serving("--home", str(home), "serve") as server:
        _get(f"{server.url}workspaces/ws/tasks/{task.id}/raw/small.txt")
        before = server.peak_rss()
        received = 0
        with urllib.request.urlopen(f"{server.url}workspaces/ws/tasks/{task.id}/raw/huge.bin", timeout=120) as r:
            assert r.headers["content-type"] == "application/octet-stream"
            while chunk := r.read(MB):
                received += len(chunk)
        growth = server.peak_rss() - before
        page = _get(f"{server.url}workspaces/ws/tasks/{task.id}/artifacts/huge.bin")
        after_page = server.peak_rss() - before
    assert received == ARTIFACT
    assert growth < ALLOWED_DOWNLOAD_GROWTH, f"peak memory grew by {growth / MB:.0f} MB for one download"
    assert after_page < ALLOWED_DOWNLOAD_GROWTH and b"download" in page


def test_dropped_event_streams_leave_no_socket_errors(home: Path) -> None:
    """Clients that read 1,500 bytes of a task's event stream and hang up make the server print nothing."""
    store = FileStore(home)
    store.create_workspace("ws")
    task = store.create(
        "ws",
        Task(template="t", description="live", status="running", steps=[Step(name="a", type="ai", status="running")]),
    )
    for i in range(3000):
        store.append_log("ws", task.id, {"level": "info", "event": f"line {i} " + "x" * 50})
    with serving("--home", str(home), "serve") as server:
        head = f"GET /workspaces/ws/tasks/{task.id}/events?log_from=0 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}"
        for _ in range(5):
            assert status_of(_read_then_hang_up(server.port, head, 1500)) == 200
        # A last request, answered only once the server has dealt with the dropped streams.
        assert _get(server.url)
        printed = server.stderr
    assert "socket.send() raised exception" not in printed, printed[-2000:]
    assert "Traceback" not in printed


def _read_then_hang_up(port: int, head: str, size: int) -> bytes:
    """Open a stream, read ``size`` bytes of it, close the socket (as ``curl -N … | head -c`` does)."""
    import socket

    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n")
        got = b""
        while len(got) < size:
            chunk = sock.recv(size - len(got))
            if not chunk:
                break
            got += chunk
        return got
    finally:
        sock.close()


def test_downloads_cut_short_leave_no_artifact_open(home: Path) -> None:
    """Ten clients that hang up early in a 200 MB download leave the server holding no descriptor of the artifact."""
    import socket
    import time

    store = FileStore(home)
    store.create_workspace("ws")
    task = store.create("ws", Task(template="t", description="big output"))
    path = store.task_path("ws", task.id) / "artifacts" / "big.bin"
    path.parent.mkdir()
    path.write_bytes(os.urandom(MB) * 200)
    with serving("--home", str(home), "serve") as server:
        head = f"GET /workspaces/ws/tasks/{task.id}/raw/big.bin HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n"
        for _ in range(10):
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
                sock.sendall(head.encode())
                assert sock.recv(12) == b"HTTP/1.1 200"
        fd_dir = Path(f"/proc/{server.process.pid}/fd")
        # Waiting without sending requests: a page would make the server allocate, and its garbage collector
        # could then close what the response failed to (which is what this checks).
        deadline = time.monotonic() + 15
        while True:
            held = [fd for fd in fd_dir.iterdir() if _target(fd) == str(path)]
            if not held or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert held == [], f"{len(held)} descriptors of {path} still open"


def _target(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:  # closed meanwhile
        return ""
