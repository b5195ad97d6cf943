"""Peak memory of one way of reading a whole workspace, measured in a fresh process.

    python -m benchmarks._memprobe HOME WORKSPACE MODE      MODE: iter (iter_tasks) | list (list)

Prints one JSON object: the resident set after imports and one warm ``get`` (``baseline_kb``), the peak resident
set afterwards (``peak_kb``, VmHWM), how many tasks were seen and how long it took; or ``{"missing": ...}``.
"""

from __future__ import annotations

import json
import sys
import time


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def main(argv: list[str]) -> int:
    home, workspace, mode = argv
    from atlas_tasks import FileStore, Task

    store = FileStore(home)
    tasks_dir = store.workspace_path(workspace) / "tasks"
    first = next(p.name for p in tasks_dir.iterdir() if not p.name.startswith("."))
    store.get(workspace, first)  # models and schemas built: not part of the iteration's cost
    baseline = _status_kb("VmRSS")
    started = time.perf_counter()
    count = 0
    if mode == "iter":
        iter_tasks = getattr(store, "iter_tasks", None)
        if iter_tasks is None:
            print(json.dumps({"missing": "FileStore.iter_tasks(workspace) -> Iterator[Task]"}))
            return 0
        for item in iter_tasks(workspace):
            if isinstance(item, Task):
                count += 1
    elif mode == "list":
        tasks = store.list(workspace)
        count = len(tasks)
        del tasks
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    elapsed = time.perf_counter() - started
    print(json.dumps({"baseline_kb": baseline, "peak_kb": _status_kb("VmHWM"), "count": count, "seconds": elapsed}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
