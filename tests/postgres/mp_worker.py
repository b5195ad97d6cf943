"""One writer process of test_multiprocess.py (run as a script; prints a JSON summary on stdout).

Mode ``store`` goes through PostgresStore. Mode ``naive`` is the negative control: the same read-modify-write and
version numbering done the careless way (no revision check, ``max + 1`` then overwrite), which must lose updates and
overwrite versions — so the checks in the test are shown able to fail.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import psycopg

from atlas_tasks import ConflictError
from atlas_tasks.backends.postgres import PostgresStore
from atlas_tasks.models import Task, TaskStatus


def bump(key: str) -> Any:
    def change(task: Task) -> None:
        task.metadata[key] = task.metadata.get(key, 0) + 1

    return change


def store_round(store: PostgresStore, cfg: dict[str, Any], k: int, out: dict[str, Any]) -> None:
    ws, task_id, me = cfg["ws"], cfg["task_id"], cfg["worker"]
    store.modify(ws, task_id, bump("locked"))
    while True:  # optimistic: read, change, save; on a conflict read again
        task = store.get(ws, task_id)
        bump("optimistic")(task)
        try:
            store.update(ws, task)
            break
        except ConflictError:
            out["conflicts"] += 1
    name = store.save_versioned_artifact(ws, task_id, "validation.json", f"{me}:{k}")
    out["versions"][name] = f"{me}:{k}"
    store.append_log(ws, task_id, {"event": "mp", "w": me, "k": k})
    if k < cfg["creates"]:
        out["created"].append(store.create(ws, Task(description=f"{me}:{k}", status=TaskStatus.RUNNING)).id)


def naive_round(conn: psycopg.Connection[Any], cfg: dict[str, Any], k: int, out: dict[str, Any]) -> None:
    s, key = f'"{cfg["schema"]}"', {"ws": cfg["ws"], "id": cfg["task_id"]}
    row = conn.execute(f"SELECT doc::text FROM {s}.tasks WHERE workspace = %(ws)s AND id = %(id)s", key).fetchone()
    doc = json.loads(row[0])
    doc["metadata"]["optimistic"] = doc["metadata"].get("optimistic", 0) + 1
    time.sleep(0.002)  # the window a real agent's work would leave between read and write
    conn.execute(
        f"UPDATE {s}.tasks SET doc = %(doc)s::json WHERE workspace = %(ws)s AND id = %(id)s",
        {**key, "doc": json.dumps(doc)},
    )
    count = conn.execute(
        f"SELECT count(*) FROM {s}.artifacts WHERE workspace = %(ws)s AND task_id = %(id)s", key
    ).fetchone()
    name = f"validation.{count[0] + 1}.json"
    time.sleep(0.002)
    conn.execute(
        f"INSERT INTO {s}.artifacts (workspace, task_id, name, data) VALUES (%(ws)s, %(id)s, %(name)s, %(data)s)"
        " ON CONFLICT (workspace, task_id, name) DO UPDATE SET data = EXCLUDED.data",
        {**key, "name": name, "data": f"{cfg['worker']}:{k}".encode()},
    )
    out["versions"][name] = f"{cfg['worker']}:{k}"


def main() -> None:
    cfg = json.loads(sys.argv[1])
    out: dict[str, Any] = {"versions": {}, "created": [], "conflicts": 0}
    with PostgresStore(cfg["url"], schema=cfg["schema"], lock_timeout=60) as store:
        store.get(cfg["ws"], cfg["task_id"])  # connect and warm up before the common start
        with psycopg.connect(cfg["url"], autocommit=True) as conn:
            time.sleep(max(0.0, cfg["start_at"] - time.time()))
            started = time.perf_counter()
            for k in range(cfg["rounds"]):
                if cfg["mode"] == "naive":
                    naive_round(conn, cfg, k, out)
                else:
                    store_round(store, cfg, k, out)
            out["seconds"] = time.perf_counter() - started
    print(json.dumps(out))


if __name__ == "__main__":
    main()
