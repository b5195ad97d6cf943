"""A killed import never shows a task without its Go hook files (found by the kill -9 campaign R)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from atlas_tasks import FileStore
from atlas_tasks.retention.bundle import export_tasks
from atlas_tasks.testing.conformance import sample_task

SRC = Path(__file__).resolve().parents[2] / "src"

# The child imports the bundle and SIGKILLs itself at the first filesystem change after task.json is renamed into
# place: the moment the task becomes visible to readers.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from atlas_tasks import FileStore
    from atlas_tasks.retention.bundle import import_bundle

    seen = [False]
    CHANGES = {"os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.link"}

    def audit(event, args):
        if seen[0] and (event in CHANGES or (event == "open" and isinstance(args[2], int) and args[2] & os.O_CREAT)):
            os.kill(os.getpid(), signal.SIGKILL)
        if event == "os.rename" and args[1] == "task.json":
            seen[0] = True

    store = FileStore(sys.argv[1])
    sys.addaudithook(audit)
    import_bundle(store, sys.argv[2])
    """
)


def test_killed_import_leaves_no_visible_task_without_its_hooks(tmp_path: Path) -> None:
    """Killed at its first change after task.json lands, an import has already written the task's hook files."""
    src = FileStore(tmp_path / "src")
    src.create_workspace("w")
    task = src.create("w", sample_task())
    src.append_log("w", task.id, {"event": "x"})
    folder = src.task_path("w", task.id)
    (folder / "hook.json").write_bytes(b'{"task_id":"%s","state":"completed"}' % task.id.encode())
    (folder / "HOOK.md").write_bytes(b"# hook\n")
    bundle = tmp_path / "b.tar"
    export_tasks(src, "w", [task.id], bundle)
    dst = tmp_path / "dst"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(dst), str(bundle)], env=env, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL  # it died after task.json landed, as aimed
    landed = dst / "workspaces/w/tasks" / task.id
    assert (landed / "task.json").exists()
    assert (landed / "hook.json").read_bytes() == (folder / "hook.json").read_bytes()
    assert (landed / "HOOK.md").read_bytes() == b"# hook\n"
