"""A real ``atlas-tasks serve`` process for tests that measure what a request costs the server (memory, output).

The process runs ``serve_cli.py`` (the CLI with ``serve``) on a free port; its stderr is collected by a thread,
so a test can assert on what the server printed while it ran. ``peak_rss`` reads ``VmHWM`` (the resident-set
high-water mark) from ``/proc``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SERVE_CLI = str(Path(__file__).with_name("serve_cli.py"))


@dataclass
class Server:
    """A running serve process: its URL, port, action token (if any) and what it has printed so far."""

    process: subprocess.Popen[str]
    url: str
    port: int
    token: str | None
    _err: list[str] = field(default_factory=list)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def peak_rss(self) -> int:
        """The process's resident-set high-water mark in bytes (VmHWM)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
        assert match, status
        return int(match.group(1)) * 1024


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start ``atlas-tasks serve --port 0 ARGS...``, wait for its banner, stop it with Ctrl-C at the end."""
    process = subprocess.Popen(
        [sys.executable, SERVE_CLI, *args, "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if "Ctrl-C stops it." in line or not line:
            break
    banner = "".join(lines)
    match = re.search(r"(http://127\.0\.0\.1:(\d+)/)", banner)
    if match is None:
        process.kill()
        process.wait()
        raise AssertionError(f"serve did not start: {banner!r}")
    token = re.search(r"\?token=([\w-]+)", banner)
    server = Server(process, match.group(1), int(match.group(2)), token.group(1) if token else None, lines)
    stream = process.stderr

    def collect() -> None:
        for line in stream:
            lines.append(line)

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    try:
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=10)
        stream.close()


def raw_request(port: int, head: str, body_chunks: Iterator[bytes] | None = None, timeout: float = 60) -> bytes:
    """Send ``head`` (request line and headers, without the blank line) and stream ``body_chunks``; the response.

    The response is read by a thread of its own while the body is still being sent: a server that answers
    early and closes must not lose its answer to a reset caused by the bytes it did not read.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    received: list[bytes] = []

    def read() -> None:
        try:
            while chunk := sock.recv(65536):
                received.append(chunk)
        except OSError:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n")
        for chunk in body_chunks or iter(()):
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server answered and closed before the body was all sent: what a refusal should do
    reader.join(timeout)
    sock.close()
    return b"".join(received)


def status_of(response: bytes) -> int:
    """The status code of a raw HTTP/1.1 response."""
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", response)
    assert match, response[:200]
    return int(match.group(1))
