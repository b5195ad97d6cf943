"""H, hostile entries: what a damaged or hostile home plants where the store expects its own files.

Each case plants one entry in a fresh ``base`` home (see :mod:`reliability.workload`): a FIFO, socket, symlink or
directory where task.json, task.log, an artifact, workspace.json or a lease file belongs; a stray name under
``tasks/``; JSON nested 5,000 deep in a log line, a task.json or a template. Then every reader runs, each in a
forked child with a bound, and must:

* finish (a FIFO must never block it: "reader blocked");
* raise nothing but a typed AtlasTasksError ("untyped error", e.g. RecursionError or a bare OSError; a deep
  template is an invalid-template error);
* keep listing the rest: the good task ``task-a`` in every task listing, workspace ``w`` in the workspace listing,
  and ``check()`` running to its end ("one entry took down ...");
* never drop the planted task silently: it is listed or in ``errors`` ("odd entry silently dropped").

Negative controls: ``blocking-open`` (no O_NONBLOCK, no regular-file check), ``unguarded-json`` (the log parser
lets RecursionError out) and ``odd-entry-aborts`` (an odd task.json escapes the listing as a StorageError).
"""

# ruff: noqa: BLE001 - an untyped error is a finding to record

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atlas_tasks import AtlasTasksError, FileStore
from reliability import weaken
from reliability.outcome import Outcome, Scale, timed
from reliability.scratch import scratch
from reliability.workload import WS, make_base

GOOD, VICTIM = "task-a", "task-b"
DEEP = b"[" * 5000 + b"]" * 5000
#: Seconds a reader may take: everything finishes in milliseconds unless it blocks (a control only has to be caught).
BOUND, CONTROL_BOUND = 10.0, 2.0


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    # Bound at a short path (AF_UNIX paths are limited to 108 bytes) on the same filesystem, then moved into place.
    near = next(p for p in path.parents if len(str(p)) < 64)
    short = Path(tempfile.mkdtemp(dir=near)) / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(short))
    short.rename(path)
    short.parent.rmdir()


def _symlink(path: Path) -> None:
    path.symlink_to("/etc/hostname")


def _directory(path: Path) -> None:
    path.mkdir()


KINDS: dict[str, Callable[[Path], None]] = {
    "fifo": _fifo,
    "socket": _socket,
    "symlink": _symlink,
    "directory": _directory,
}


def _replace(kind: str, relative: str) -> Callable[[Path], None]:
    def plant(home: Path) -> None:
        path = home / relative
        if path.exists() or path.is_symlink():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)  # artifacts/ of a task that has none yet
        KINDS[kind](path)

    return plant


def _append(relative: str, data: bytes) -> Callable[[Path], None]:
    def plant(home: Path) -> None:
        with (home / relative).open("ab") as f:
            f.write(data)

    return plant


def _write(relative: str, data: bytes) -> Callable[[Path], None]:
    def plant(home: Path) -> None:
        (home / relative).parent.mkdir(parents=True, exist_ok=True)
        (home / relative).write_bytes(data)

    return plant


TASKS = f"workspaces/{WS}/tasks"
PLACES = {
    "task.json": f"{TASKS}/{VICTIM}/task.json",
    "task.log": f"{TASKS}/{VICTIM}/task.log",
    "artifact": f"{TASKS}/{VICTIM}/artifacts/p.txt",
    "workspace.json": "workspaces/v/workspace.json",
    "lease": f".atlas-tasks/leases/{WS}/{VICTIM}.lease",
    "lock": f".atlas-tasks/locks/{WS}/{VICTIM}.lock",
    "Go's lock": f"{TASKS}/{VICTIM}/task.json.lock",
    "summary cache": f".atlas-tasks/summaries/{WS}.json",
}

CASES: dict[str, Callable[[Path], None]] = {
    **{f"{kind} as {place}": _replace(kind, rel) for place, rel in PLACES.items() for kind in ("fifo", "socket")},
    "symlink as task.json": _replace("symlink", PLACES["task.json"]),
    "directory as task.json": _replace("directory", PLACES["task.json"]),
    "directory as task.log": _replace("directory", PLACES["task.log"]),
    "stray directory with an invalid id": lambda home: (home / TASKS / "bad id").mkdir(),
    "stray file under tasks/": _write(f"{TASKS}/task-file", b"stray"),
    "deep JSON log line (middle)": _append(f"{TASKS}/{GOOD}/task.log", DEEP + b'\n{"after": 1}\n'),
    "deep JSON log line (last)": _append(f"{TASKS}/{GOOD}/task.log", DEEP + b"\n"),
    "deep JSON task.json": _write(PLACES["task.json"], b'{"metadata": ' + DEEP + b"}"),
    "deep JSON template": _write("templates/deep.json", DEEP),
}

#: The cases each negative control must be caught on (all cases would only make a blocking control slow).
CONTROL_CASES = {
    "blocking-open": ["fifo as task.json", "fifo as task.log"],
    "unguarded-json": ["deep JSON log line (middle)"],
    "odd-entry-aborts": ["symlink as task.json", "directory as task.json"],
}

LISTINGS = ("list", "list_limit", "summaries", "iter")


def _operate(store: FileStore, op: str) -> dict[str, Any]:
    """Run one reader; what the parent judges (ids listed and in errors, or nothing)."""
    if op in LISTINGS:
        errors: list[AtlasTasksError]
        if op == "iter":
            errors = []
            found: Any = list(store.iter_tasks(WS, errors=errors))
        else:
            found = {"list": store.list, "summaries": store.list_summaries}.get(op, lambda ws: store.list(ws, limit=9))(
                WS
            )
            errors = found.errors
        return {"ids": [t.id for t in found], "errors": [str(e.context.get("task_id")) for e in errors]}
    if op == "list_workspaces":
        listed = store.list_workspaces()
        return {"ids": [w.name for w in listed], "errors": [str(e.context.get("workspace")) for e in listed.errors]}
    if op == "check":
        store.check()
        return {}
    if op == "templates":
        from atlas_tasks.templates import list_templates

        list_templates(store.home)
        return {}
    task_id, _, what = op.partition(":")
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: store.get(WS, task_id),
        "read_log": lambda: store.read_log(WS, task_id),
        "list_artifacts": lambda: store.list_artifacts(WS, task_id),
        "get_artifact": lambda: store.get_artifact(WS, task_id, "p.txt"),
        "lease_holder": lambda: store.lease_holder(WS, task_id),
        "append_log": lambda: store.append_log(WS, task_id, {"event": "probe"}),
    }
    calls[what]()
    return {}


OPS = (
    *LISTINGS,
    "list_workspaces",
    "check",
    "templates",
    *(f"{t}:{what}" for t in (GOOD, VICTIM) for what in ("get", "read_log", "list_artifacts", "lease_holder")),
    f"{VICTIM}:get_artifact",
    f"{VICTIM}:append_log",  # the one write, last
)


def _child(home: str, op: str, conn: Any) -> None:
    try:
        result: dict[str, Any] = {"ok": True, **_operate(FileStore(home, lock_timeout=5), op)}
    except AtlasTasksError as exc:
        result = {"ok": False, "typed": True, "error": repr(exc)[:300]}
    except BaseException as exc:
        result = {"ok": False, "typed": False, "error": repr(exc)[:300]}
    conn.send(result)
    conn.close()


def _run_op(home: Path, op: str, bound: float) -> dict[str, Any] | None:
    """The child's result, or None if it did not finish within ``bound`` seconds (it is killed)."""
    ctx = multiprocessing.get_context("fork")  # the child inherits a weakened store's patches
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(str(home), op, child), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(bound):
            return None
        result: dict[str, Any] = parent.recv()
        return result
    except EOFError:
        return {"ok": False, "typed": False, "error": "the child died"}
    finally:
        parent.close()
        if proc.is_alive():
            proc.kill()
        proc.join()


def _judge(case: str, op: str, result: dict[str, Any] | None, outcome: Outcome) -> None:
    where = f"{case}, {op}"
    if result is None:
        outcome.verdict.add("reader blocked by a planted entry", where)
        return
    if not result["ok"]:
        if not result["typed"]:
            outcome.verdict.add("untyped error (not an AtlasTasksError)", f"{where}: {result['error']}")
        elif op in (*LISTINGS, "list_workspaces", "check") or op.startswith(f"{GOOD}:"):
            outcome.verdict.add("one entry took down a listing, check or the good task", f"{where}: {result['error']}")
        return
    if op in LISTINGS:
        if GOOD not in result["ids"]:
            outcome.verdict.add("good task missing from a listing", where)
        if case.endswith("as task.json") and VICTIM not in result["ids"] + result["errors"]:
            outcome.verdict.add("odd entry silently dropped", where)
    elif op == "list_workspaces":
        if WS not in result["ids"]:
            outcome.verdict.add("good workspace missing from the listing", where)
        if case.endswith("as workspace.json") and "v" not in result["ids"] + result["errors"]:
            outcome.verdict.add("odd entry silently dropped", where)


def run_case(root: Path, case: str, outcome: Outcome, bound: float = BOUND) -> None:
    home = root / "home"
    make_base(home)
    store = FileStore(home)
    store.create_workspace("v")
    store.acquire_lease(WS, VICTIM, {"pid": 1}).release()
    store.modify(WS, VICTIM, lambda t: t.metadata.__setitem__("locked", True))  # creates its lock file
    CASES[case](home)
    for op in OPS:
        _judge(case, op, _run_op(home, op, bound), outcome)
        outcome.runs += 1
    shutil.rmtree(home)


def run(scale: Scale = "full", variant: str | None = None, cases: list[str] | None = None) -> Outcome:
    """Every case (or ``cases``; a control runs its own few) against every reader."""
    outcome = Outcome("H", variant or "store", unit="readers on planted entries")
    chosen = cases or (CONTROL_CASES[variant] if variant in CONTROL_CASES else list(CASES))
    with timed(outcome), scratch("h") as root, weaken.weakened(variant):
        for case in chosen:
            run_case(root, case, outcome, BOUND if variant is None else CONTROL_BOUND)
    outcome.details["cases"] = len(chosen)
    return outcome


CONTROLS = tuple(CONTROL_CASES)
