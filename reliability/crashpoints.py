"""T1a, crash-point enumeration: a real child process runs one operation and dies at its k-th filesystem call.

For each operation, a reference child counts the ``_fs.ops`` calls (n). Then, for every k < n, one child dies just
*before* call k (``os._exit``) and another just *after* it (SIGKILL from inside the wrapper), and one more dies by
SIGKILL right after the operation returned. After each death the parent checks the home with the shared
invariants: the state is the old one (or, when the crash came after the commit point, the new one), the doctor
reports and repairs every leftover, and nothing acknowledged is missing.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from atlas_tasks import FileStore
from atlas_tasks._fs import ops
from reliability import weaken
from reliability.forkserver import ForkServer
from reliability.invariants import check_home
from reliability.outcome import Outcome, Scale, timed
from reliability.scratch import scratch
from reliability.view import View, take_view
from reliability.workload import BASES, CORE_OPS, OP_BASE, OPS

CRASHED = 86
# Every ops function that reports to the hook; the crash wrapper kills right after one of them when armed.
HOOKED = (
    "open_dir",
    "mkdir",
    "open_file",
    "fchmod",
    "write_all",
    "fsync",
    "fdatasync",
    "rename",
    "link",
    "unlink",
    "ftruncate",
    "read_all",
    "pread",
    "rmtree",
)
CONTROLS = ("in-place-write",)


# -- child side ---------------------------------------------------------------------------------------------------
def _after(fn: Callable[..., Any], armed: dict[str, bool]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            if armed["now"]:
                os.kill(os.getpid(), signal.SIGKILL)

    return wrapper


def _after_scandir(fn: Callable[..., Iterator[os.DirEntry[str]]], armed: dict[str, bool]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[os.DirEntry[str]]:
        try:
            yield from fn(*args, **kwargs)
        finally:
            if armed["now"]:
                os.kill(os.getpid(), signal.SIGKILL)

    return wrapper


def instrument(at: int | None, when: str | None, calls: list[str]) -> None:
    """Count every hooked call; die before call ``at`` (``os._exit``) or right after it (SIGKILL)."""
    armed = {"now": False}

    def hook(op: str, path: str) -> None:
        calls.append(op)
        if at is not None and len(calls) - 1 == at:
            if when == "before":
                os._exit(CRASHED)
            armed["now"] = True

    ops.set_hook(hook)
    for name in HOOKED:
        setattr(ops, name, _after(getattr(ops, name), armed))
    ops.scandir = _after_scandir(ops.scandir, armed)  # type: ignore[assignment]


def job_op(job: dict[str, Any]) -> int:
    """Child: run one operation on ``job["home"]``, dying where ``job`` says; report the calls it made."""
    weaken.apply(job.get("weaken"))
    calls: list[str] = []
    instrument(job.get("at"), job.get("when"), calls)
    OPS[job["op"]](FileStore(job["home"], lock_timeout=5), {})
    ops.set_hook(None)
    Path(job["ack"]).write_text(json.dumps({"calls": calls}))
    if job.get("when") == "end":
        os.kill(os.getpid(), signal.SIGKILL)
    return 0


# -- parent side --------------------------------------------------------------------------------------------------
def crash_points(n: int, scale: Scale) -> list[tuple[int | None, str]]:
    """Where to die: before and after each call (fast: before each call only), and after the operation returned."""
    points: list[tuple[int | None, str]] = [(k, "before") for k in range(n)]
    if scale == "full":
        points += [(k, "after") for k in range(n)]
    return [*points, (None, "end")]


def _expected_death(when: str) -> dict[str, int]:
    return {"exit": CRASHED} if when == "before" else {"signal": signal.SIGKILL}


class _Op:
    """One operation under test: its starting home, and the old and new views."""

    def __init__(self, name: str, root: Path, server: ForkServer, variant: str | None) -> None:
        self.name = name
        self.root = root
        self.server = server
        self.variant = variant
        self.base = root / "bases" / OP_BASE[name] / "home"
        if not self.base.exists():
            BASES[OP_BASE[name]](self.base)
        self.old = take_view(FileStore(self.base))
        self.known = [key.split("/", 1)[1] for key in self.old["tasks"]]
        ref = self._run(None, None)
        self.calls: list[str] = json.loads((root / "ack").read_text())["calls"]
        self.new: View = take_view(FileStore(ref), self.known)
        shutil.rmtree(ref.parent)

    def _run(self, at: int | None, when: str | None) -> Path:
        run_dir = self.root / "run"
        shutil.rmtree(run_dir, ignore_errors=True)
        home = run_dir / "home"
        shutil.copytree(self.base, home, symlinks=True)
        job = {"kind": "op", "home": str(home), "op": self.name, "at": at, "when": when}
        job |= {"weaken": self.variant, "ack": str(self.root / "ack")}
        self.status = self.server.run(job)
        return home

    def crash(self, at: int | None, when: str, outcome: Outcome) -> None:
        home = self._run(at, when)
        where = f"{self.name} {when} call {at} ({self.calls[at] if at is not None else 'return'})"
        if self.status != _expected_death(when):
            outcome.verdict.add("child did not die where told", f"{where}: {self.status}")
            return
        end = when == "end"
        verdict = check_home(
            home,
            [self.new] if end else [self.old, self.new],
            self.new if end else self.old,
            in_flight=None if end else self.new,
            known_ids=self.known,
            outside={},
        )
        outcome.verdict.merge(verdict, where)
        outcome.runs += 1


def run(scale: Scale = "full", variant: str | None = None, names: Sequence[str] | None = None) -> Outcome:
    """Kill a child at every filesystem call of each operation and check the home after each death."""
    chosen = names or (CORE_OPS if scale == "fast" else tuple(OPS))
    outcome = Outcome("T1a", variant or "store", unit="crash runs")
    with timed(outcome), scratch("t1a") as root, ForkServer() as server:
        for name in chosen:
            op = _Op(name, root, server, variant)
            outcome.details[name] = len(op.calls)
            for at, when in crash_points(len(op.calls), scale):
                op.crash(at, when, outcome)
    return outcome
