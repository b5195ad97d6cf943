"""A killed import never shows a task without its Go hook files (found by the kill -9 campaign R)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from atlas_tasks import FileStore
from atlas_tasks.retention.bundle import export_tasks, import_bundle
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


# The child SIGKILLs itself as the import renames the task's log into place: after the import has begun to fill
# the task's directory, before its task.json.
BEFORE_TASK_JSON = textwrap.dedent(
    """
    import os, signal, sys
    from atlas_tasks import FileStore
    from atlas_tasks.retention.bundle import import_bundle

    def audit(event, args):
        if event == "os.rename" and args[1] == "task.log":
            os.kill(os.getpid(), signal.SIGKILL)

    store = FileStore(sys.argv[1])
    sys.addaudithook(audit)
    import_bundle(store, sys.argv[2])
    """
)


def test_doctor_removes_an_import_killed_before_its_task_json_and_the_import_then_lands(tmp_path: Path) -> None:
    """An import killed half-way leaves a directory doctor --fix removes; importing the bundle again then works."""
    src = FileStore(tmp_path / "src")
    src.create_workspace("w")
    task = src.create("w", sample_task())
    src.append_log("w", task.id, {"event": "x"})
    src.save_artifact("w", task.id, "notes.md", b"notes")
    bundle = tmp_path / "b.tar"
    export_tasks(src, "w", [task.id], bundle)
    dst_home = tmp_path / "dst"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-c", BEFORE_TASK_JSON, str(dst_home), str(bundle)]
    proc = subprocess.run(cmd, env=env, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL
    folder = dst_home / "workspaces/w/tasks" / task.id
    assert folder.is_dir() and not (folder / "task.json").exists()  # debris, no task to any reader
    dst = FileStore(dst_home)
    report = dst.check(fix=True)
    kinds = {(f.kind, f.fixed) for f in report.findings if f.task_id == task.id}
    assert ("incomplete_import", True) in kinds and all(fixed for _, fixed in kinds)
    assert not folder.exists()
    import_bundle(dst, bundle)
    assert dst.get_artifact("w", task.id, "notes.md") == b"notes"
    assert [line["event"] for line in dst.read_log("w", task.id)] == ["x"]
    assert not dst.check().findings


def test_doctor_removes_the_marker_an_import_killed_after_its_task_json_left(tmp_path: Path) -> None:
    """Killed right after its task.json landed, an import leaves a whole task whose stray marker doctor removes."""
    src = FileStore(tmp_path / "src")
    src.create_workspace("w")
    task = src.create("w", sample_task())
    bundle = tmp_path / "b.tar"
    export_tasks(src, "w", [task.id], bundle)
    dst_home = tmp_path / "dst"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(dst_home), str(bundle)], env=env, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL
    dst = FileStore(dst_home)
    assert dst.get("w", task.id).description == task.description
    report = dst.check(fix=True)
    # By default an import adds no workspace.json ref (as a create), so the marker is the only leftover.
    assert sorted((f.kind, f.fixed) for f in report.findings) == [("import_marker", True)]
    assert not dst.check().findings
