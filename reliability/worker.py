"""Child-process side of the campaigns: ``python -m reliability.worker serve`` (the fork server, see forkserver.py).

Requests are JSON lines on stdin, one reply line each on stdout:
``{"cmd": "run", "job": {...}}`` forks, runs the job and waits; ``"start"`` forks and replies with the pid at
once; ``"wait"`` reaps a started child. A job is ``{"kind": ..., ...}``, dispatched to ``JOBS``.
"""

# ruff: noqa: BLE001 - a forked child must report any failure and exit, never return into the server

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

Job = Callable[[dict[str, Any]], int]

JOBS: dict[str, str] = {
    "op": "reliability.crashpoints:job_op",
    "agent": "reliability.powercut:job_agent",
    "storm": "reliability.storm:job_storm",
    "versions": "reliability.storm:job_versions",
    "creator": "reliability.storm:job_creator",
    "fsize": "reliability.faults:job_fsize",
    "lifecycle": "reliability.lifecycle:job_lifecycle",
    "retention": "reliability.retention:job_retention",
}


def _load(spec: str) -> Job:
    module, name = spec.split(":")
    job: Job = getattr(importlib.import_module(module), name)
    return job


def _status(status: int) -> dict[str, Any]:
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return {"exit": os.WEXITSTATUS(status)}


def _child(job: dict[str, Any], loaded: dict[str, Job]) -> None:
    """Run one job in the forked child and leave with its exit code; never return into the server loop."""
    code = 70
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.dup2(2, 1)  # stdout is the server's reply channel: a job must never write to it
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        code = loaded[job["kind"]](job)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    loaded: dict[str, Job] = {}
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request["cmd"]
        if cmd in ("run", "start"):
            kind = request["job"]["kind"]
            if kind not in loaded:  # imported here, once, so that every forked child starts with it loaded
                loaded[kind] = _load(JOBS[kind])
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(request["job"], loaded)
            if cmd == "start":
                reply: dict[str, Any] = {"pid": pid}
            else:
                reply = _status(os.waitpid(pid, 0)[1])
        elif cmd == "wait":
            reply = _status(os.waitpid(int(request["pid"]), 0)[1])
        else:
            reply = {"error": f"unknown command {cmd!r}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        sys.exit("usage: python -m reliability.worker serve")
    serve()
