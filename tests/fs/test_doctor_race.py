"""doctor --fix beside live writers (#4): temp files of writes under way are never removed, leftovers still are.

Two real processes: one saves big artifacts (plain and versioned) and checkpoints the task; the other runs
``check(fix=True)`` in a loop until the writer is done. Every write must succeed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import atlas_tasks
from atlas_tasks import FileStore
from atlas_tasks.testing.conformance import sample_task

SRC = str(Path(atlas_tasks.__file__).resolve().parents[1])

WRITER = """
import json, os, sys
from atlas_tasks import AtlasTasksError, FileStore
store = FileStore(sys.argv[1], lock_timeout=30)
ws, task_id, rounds = sys.argv[2], sys.argv[3], int(sys.argv[4])
payload = os.urandom(4 << 20)
ok, failed = 0, []
for i in range(rounds):
    try:
        if i % 3 == 0:
            store.save_artifact(ws, task_id, "big.bin", payload)
        elif i % 3 == 1:
            store.save_versioned_artifact(ws, task_id, "out.bin", payload)
        else:
            store.modify(ws, task_id, lambda t: t.metadata.__setitem__("i", i))
        ok += 1
    except AtlasTasksError as exc:
        failed.append(str(exc)[:200])
print(json.dumps({"ok": ok, "failed": failed}))
"""

CHECKER = """
import json, os, sys
from atlas_tasks import FileStore
store = FileStore(sys.argv[1], lock_timeout=30)
stop = sys.argv[2]
checks = removed = 0
while not os.path.exists(stop) or checks < 3:
    report = store.check(fix=True)
    checks += 1
    removed += sum(f.kind == "temp_file" for f in report.findings)
print(json.dumps({"checks": checks, "removed": removed}))
"""


def test_doctor_fix_never_breaks_a_live_writer(store: FileStore, ws: str, home: Path, tmp_path: Path) -> None:
    """0 of the writer's saves and checkpoints fail while another process loops check(fix=True)."""
    task = store.create(ws, sample_task())
    env = {**os.environ, "PYTHONPATH": SRC}
    stop = tmp_path / "stop"
    checker = subprocess.Popen(
        [sys.executable, "-c", CHECKER, str(home), str(stop)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        writer = subprocess.run(
            [sys.executable, "-c", WRITER, str(home), ws, task.id, "36"],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            check=True,
        )
    finally:
        stop.touch()
        checked, _ = checker.communicate(timeout=600)
    wrote = json.loads(writer.stdout)
    assert wrote == {"ok": 36, "failed": []}
    assert json.loads(checked)["checks"] >= 3


def test_leftover_artifact_temp_is_still_removed(store: FileStore, ws: str) -> None:
    """With no writer under way, a temp file left in artifacts/ by a crashed save is reported and removed."""
    task = store.create(ws, sample_task())
    store.save_artifact(ws, task.id, "a.txt", b"x")
    leftover = store.task_path(ws, task.id) / "artifacts" / ".a.txt.0123456789ab.tmp"
    leftover.write_bytes(b"partial")
    report = store.check(fix=True)
    assert [(f.kind, f.fixed) for f in report.findings] == [("temp_file", True)]
    assert not leftover.exists()
