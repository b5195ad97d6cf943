"""A stand-in for the Go ATLAS daemon: its Unix socket and line-delimited JSON-RPC 2.0 (atlas-go.md §7)."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any


class FakeDaemon:
    """A Unix-socket server speaking the Go daemon's line-delimited JSON-RPC 2.0, with canned task statuses."""

    def __init__(self, path: Path, statuses: dict[str, dict[str, Any]], *, silent: bool = False) -> None:
        self.path = path
        self.statuses = statuses
        self.silent = silent
        self.requests: list[dict[str, Any]] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                request = json.loads(conn.makefile("rb").readline())
                self.requests.append(request)
                if self.silent:
                    conn.recv(1)  # hold the connection open until the client gives up
                    continue
                result = self.statuses.get(request["params"]["task_id"])
                reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
                if result is None:
                    reply["error"] = {"code": -32000, "message": "task not found"}
                else:
                    reply["result"] = result
                conn.sendall(json.dumps(reply).encode() + b"\n")

    def close(self) -> None:
        self.server.close()
