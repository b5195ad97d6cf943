"""A fork server: one ``python -m reliability.worker serve`` process that has imported the store once and forks a
fresh child per job, so hundreds of real processes can be killed at chosen moments without paying an interpreter
start each. The children are ordinary processes (their own pid, real ``os._exit`` and real SIGKILL)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent


class ForkServer:
    """Client of the fork server; use as a context manager."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "reliability.worker", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the fork server died")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run ``job`` in a fresh child and wait: ``{"exit": code}`` or ``{"signal": number}``."""
        return self._ask({"cmd": "run", "job": job})

    def start(self, job: dict[str, Any]) -> int:
        """Start ``job`` in a fresh child and return its pid at once (``wait`` reaps it)."""
        return int(self._ask({"cmd": "start", "job": job})["pid"])

    def wait(self, pid: int) -> dict[str, Any]:
        return self._ask({"cmd": "wait", "pid": pid})

    def kill(self, pid: int) -> None:
        """SIGKILL a child started with ``start`` (it stays a zombie until ``wait``)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def died_by_signal(status: dict[str, Any], sig: int) -> bool:
    return status.get("signal") == sig
