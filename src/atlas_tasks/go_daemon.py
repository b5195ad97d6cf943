"""Asking a running Go ATLAS daemon whether it is running a task, so two runners never share one.

The Go daemon (``atlas daemon start``) runs queued tasks itself and marks them in Redis, which our flock leases cannot
see. It listens on a Unix socket, ``<home>/daemon.sock``, speaking JSON-RPC 2.0 with one JSON object per line each
way; ``task.status`` with ``{"task_id": ...}`` answers ``{task_id, status, current_step, total_steps, ...}``.

Without a daemon nothing changes and nothing waits: a missing socket, a refused connection or a socket nobody
answers within :data:`TIMEOUT` seconds all mean "no daemon".
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

#: The file name of the daemon's socket in its home.
SOCKET_NAME = "daemon.sock"
#: Overrides where the daemon's socket is looked for (the Go config's ``daemon.socket_path``).
SOCKET_ENV = "ATLAS_GO_DAEMON_SOCKET"
#: Seconds to wait for the daemon's answer before treating it as absent.
TIMEOUT = 0.5
#: The statuses in which the daemon is at work on a task.
ACTIVE = frozenset({"running", "validating"})
_MAX_ANSWER = 1 << 20


def socket_path(home: str | os.PathLike[str]) -> Path:
    """Where the Go daemon of ``home`` (the directory above ``workspaces/`` and ``repos/``) listens."""
    override = os.environ.get(SOCKET_ENV)
    return Path(override) if override else Path(home) / SOCKET_NAME


def task_status(path: str | os.PathLike[str], task_id: str, *, timeout: float = TIMEOUT) -> dict[str, Any] | None:
    """The daemon's ``task.status`` answer for ``task_id``, or None when no daemon answers (or it has no such task)."""
    if not Path(path).exists():  # the common case: no daemon, no system call beyond this stat
        return None
    request = {"jsonrpc": "2.0", "id": 1, "method": "task.status", "params": {"task_id": task_id}}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(os.fspath(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            answer = _read_line(sock)
    except OSError:
        return None
    with contextlib.suppress(ValueError, RecursionError):
        reply = json.loads(answer)
        result = reply.get("result") if isinstance(reply, dict) else None
        if isinstance(result, dict):
            return result
    return None


def running_holder(home: str | os.PathLike[str], task_id: str) -> dict[str, Any] | None:
    """A lease-holder record when the Go daemon of ``home`` reports ``task_id`` as running, else None.

    The record reads like one of our run leases' holders (``pid``/``host`` absent: the daemon is the holder), so
    ``run``, ``resume``, ``recover`` and ``delete`` refuse the task and name the daemon.
    """
    path = socket_path(home)
    status = task_status(path, task_id)
    if status is None or str(status.get("status", "")) not in ACTIVE:
        return None
    return {
        "daemon": str(path),
        "status": status.get("status"),
        "current_step": status.get("current_step"),
        "holder": f"the Go ATLAS daemon at {path}",
    }


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= _MAX_ANSWER:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if b"\n" in chunk:
            break
    return b"".join(chunks).split(b"\n", 1)[0]


__all__ = ["ACTIVE", "SOCKET_ENV", "SOCKET_NAME", "TIMEOUT", "running_holder", "socket_path", "task_status"]
