"""Run one store operation on a home and print what came of it as JSON (run in a child, under a timeout).

Used by the tests of hostile entries: a FIFO planted in the store used to block readers forever, so each
operation runs in a process of its own that the test can wait for with a bound and kill.

    python hostile_probe.py HOME WORKSPACE OPERATION [ARG]
"""

from __future__ import annotations

import json
import sys
from typing import Any

from atlas_tasks import AtlasTasksError, FileStore


def describe(exc: BaseException) -> dict[str, Any]:
    context = exc.context if isinstance(exc, AtlasTasksError) else {}
    return {"type": type(exc).__name__, "message": str(exc), **{k: str(v) for k, v in context.items()}}


def operate(store: FileStore, ws: str, op: str, arg: str) -> dict[str, Any]:
    if op in ("list", "list_limit", "summaries", "iter"):
        if op == "iter":
            errors: list[AtlasTasksError] = []
            found: Any = list(store.iter_tasks(ws, errors=errors))
        else:
            found = (
                store.list(ws)
                if op == "list"
                else store.list(ws, limit=10)
                if op == "list_limit"
                else store.list_summaries(ws)
            )
            errors = found.errors
        return {"ids": sorted(t.id for t in found), "errors": [describe(e) for e in errors]}
    if op == "get":
        return {"ids": [store.get(ws, arg).id]}
    if op == "read_log":
        return {"lines": len(store.read_log(ws, arg))}
    if op == "append_log":
        store.append_log(ws, arg, {"event": "x"})
        return {}
    if op == "get_artifact":
        return {"size": len(store.get_artifact(ws, arg.split("/", 1)[0], arg.split("/", 1)[1]))}
    if op == "list_artifacts":
        return {"names": store.list_artifacts(ws, arg)}
    if op == "list_workspaces":
        listed = store.list_workspaces()
        return {"names": [w.name for w in listed], "errors": [describe(e) for e in listed.errors]}
    if op in ("check", "check_fix"):
        report = store.check(fix=op == "check_fix")
        return {"findings": [f.to_dict() for f in report.findings], "tasks_checked": report.tasks_checked}
    if op == "recover":
        from atlas_tasks.runs import recover

        return {"ids": [t.id for t in recover(store, ws)]}
    if op == "update":
        store.modify(ws, arg, lambda t: t.metadata.__setitem__("touched", True))
        return {}
    if op == "acquire_lease":
        store.acquire_lease(ws, arg, {"pid": 1}).release()
        return {}
    if op == "lease_holder":
        return {"holder": store.lease_holder(ws, arg)}
    if op == "web":
        from starlette.testclient import TestClient

        from atlas_tasks.web import create_app

        client = TestClient(create_app(store), base_url="http://127.0.0.1")
        pages = {}
        for url in ("/", "/tasks", "/api/tasks", f"/workspaces/{ws}", f"/api/workspaces/{ws}/tasks"):
            response = client.get(url)
            pages[url] = {"status": response.status_code, "has": arg in response.text}
        return {"pages": pages}
    raise SystemExit(f"unknown operation {op}")


def main() -> None:
    home, ws, op = sys.argv[1:4]
    arg = sys.argv[4] if len(sys.argv) > 4 else ""
    store = FileStore(home, lock_timeout=5)
    try:
        result = {"ok": True, **operate(store, ws, op, arg)}
    except Exception as exc:
        result = {"ok": False, "raised": describe(exc)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
