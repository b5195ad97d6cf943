"""Bundles (atlas_tasks.retention.bundle): whole tasks exported to one verified tar and imported into any store."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from atlas_tasks import BundleError, FileStore, Task
from atlas_tasks._codec import decode_task, encode_task
from atlas_tasks.retention.bundle import export_tasks, import_bundle
from atlas_tasks.store import Store
from atlas_tasks.store.urls import redact
from atlas_tasks.testing.conformance import sample_task

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "go"
#: A log line as the Go ATLAS writes it (json.Marshal escapes '<'): a re-encoding would not reproduce it.
GO_LINE = '{"event":"note","message":"a \\u003c b","task_id":"%s"}'
Member = tuple[tarfile.TarInfo, bytes]


def _source(home: Path) -> tuple[FileStore, str]:
    """A file store with one task that has a log (one Go-escaped line) and nested and binary artifacts."""
    store = FileStore(home)
    store.create_workspace("w")
    task = store.create("w", sample_task())
    store.append_log("w", task.id, {"event": "started"})
    store.append_log("w", task.id, GO_LINE % task.id)
    store.save_artifact("w", task.id, "report.md", "# result\n")
    store.save_artifact("w", task.id, "out/data.bin", bytes(range(256)) * 40)
    return store, task.id


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: a whole store's state, to show it did not change."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _without_provenance(data: bytes) -> bytes:
    task = decode_task(data)
    task.metadata.pop("imported_from")
    return encode_task(task)


def test_round_trip_file_to_file_is_byte_identical(tmp_path: Path) -> None:
    """task.json (but for the provenance), task.log and artifacts arrive byte for byte, revision and times kept."""
    src, task_id = _source(tmp_path / "a")
    report = export_tasks(src, "w", [task_id], tmp_path / "b.tar.gz")
    dst = FileStore(tmp_path / "c")
    imported = import_bundle(dst, tmp_path / "b.tar.gz")
    assert imported.tasks == [{"original_id": task_id, "id": task_id}] and imported.workspace_created
    a, c = src.task_path("w", task_id), dst.task_path("w", task_id)
    assert (c / "task.log").read_bytes() == (a / "task.log").read_bytes()
    for name in ("report.md", "out/data.bin"):
        assert (c / "artifacts" / name).read_bytes() == (a / "artifacts" / name).read_bytes()
    assert _without_provenance((c / "task.json").read_bytes()) == (a / "task.json").read_bytes()
    assert dst.get("w", task_id).metadata["imported_from"] == {
        "bundle": "b.tar.gz",
        "sha256": report.manifest_sha256,
        "source": src.url,
        "exported_at": imported_manifest(tmp_path / "b.tar.gz")["created_at"],
        "original_id": task_id,
    }


def imported_manifest(path: Path) -> dict[str, object]:
    with tarfile.open(path) as tar:
        handle = tar.extractfile("manifest.json")
        assert handle is not None
        manifest: dict[str, object] = json.loads(handle.read())
        return manifest


@pytest.mark.stores("memory", "postgres")
def test_round_trip_through_another_store(tmp_path: Path, store: Store) -> None:
    """file -> bundle -> PostgreSQL/memory -> bundle -> file keeps log lines and artifacts byte-identical."""
    src, task_id = _source(tmp_path / "a")
    export_tasks(src, "w", [task_id], tmp_path / "1.tar")
    import_bundle(store, tmp_path / "1.tar")
    assert store.get("w", task_id).revision == src.get("w", task_id).revision
    export_tasks(store, "w", [task_id], tmp_path / "2.tar")
    dst = FileStore(tmp_path / "c")
    import_bundle(dst, tmp_path / "2.tar", as_new_id=False)
    a, c = src.task_path("w", task_id), dst.task_path("w", task_id)
    assert (c / "task.log").read_bytes() == (a / "task.log").read_bytes()
    assert (c / "artifacts/out/data.bin").read_bytes() == (a / "artifacts/out/data.bin").read_bytes()
    assert imported_manifest(tmp_path / "2.tar")["source"] == redact(store.url)
    assert dst.get("w", task_id).metadata["imported_from"]["source"] == redact(store.url)
    assert _without_provenance((c / "task.json").read_bytes()) == (a / "task.json").read_bytes()


def test_go_home_with_hook_files_round_trips(tmp_path: Path) -> None:
    """A Go ATLAS task keeps its key names, and its hook.json/HOOK.md travel along (never hook.json.lock)."""
    home = tmp_path / "go"
    shutil.copytree(FIXTURES / "story-home", home)
    task_id = "task-20251228-100000"
    hooks = home / "workspaces/payments/tasks" / task_id
    (hooks / "hook.json").write_bytes(b'{"task_id":"%s","state":"working"}' % task_id.encode())
    (hooks / "HOOK.md").write_bytes(b"# hook\n")
    (hooks / "hook.json.lock").write_bytes(b"")
    src = FileStore(home)
    out = tmp_path / "go.tgz"
    export_tasks(src, "payments", [task_id], out)
    with tarfile.open(out) as tar:
        names = tar.getnames()
    base = f"workspaces/payments/tasks/{task_id}"
    assert {f"{base}/hook.json", f"{base}/HOOK.md", f"{base}/task.log"} <= set(names)
    assert f"{base}/hook.json.lock" not in names
    dst = FileStore(tmp_path / "dst")
    import_bundle(dst, out)
    landed = dst.go_home / "workspaces/payments/tasks" / task_id
    assert (landed / "hook.json").read_bytes() == (hooks / "hook.json").read_bytes()
    assert (landed / "HOOK.md").read_bytes() == b"# hook\n"
    assert (landed / "task.log").read_bytes() == (hooks / "task.log").read_bytes()
    assert _without_provenance((landed / "task.json").read_bytes()) == encode_task(src.get("payments", task_id))


def test_extracted_bundle_is_a_home_the_file_store_reads(tmp_path: Path) -> None:
    """`tar -x` of a bundle gives a Go-layout home: the file store opens its task as exported."""
    src, task_id = _source(tmp_path / "a")
    export_tasks(src, "w", [task_id], tmp_path / "b.tar")
    with tarfile.open(tmp_path / "b.tar") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    assert FileStore(tmp_path / "x").get("w", task_id) == src.get("w", task_id)


# -- refusals: nothing written -----------------------------------------------------------------------------------
def _rewrite(src: Path, dst: Path, change: Callable[[list[Member]], list[Member]]) -> None:
    with tarfile.open(src) as tar:
        members = []
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            members.append((info, handle.read() if handle else b""))
    with tarfile.open(dst, "w") as out:
        for info, data in change(members):
            info.size = len(data) if info.isreg() else 0
            out.addfile(info, io.BytesIO(data) if info.isreg() else None)


def _last_content(members: list[Member]) -> int:
    """The index of the last member that is not the manifest (an export writes the manifest last)."""
    return max(i for i, (info, _) in enumerate(members) if info.name != "manifest.json")


def _flip_byte(members: list[Member]) -> list[Member]:
    i = _last_content(members)
    info, data = members[i]
    return [*members[:i], (info, bytes([data[0] ^ 1]) + data[1:]), *members[i + 1 :]]


def _drop_last(members: list[Member]) -> list[Member]:
    i = _last_content(members)
    return [*members[:i], *members[i + 1 :]]


def _add(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> Callable[[list[Member]], list[Member]]:
    def change(members: list[Member]) -> list[Member]:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        return [*members, (info, b"x")]

    return change


REFUSALS: dict[str, tuple[Callable[[list[Member]], list[Member]] | None, str]] = {
    "tampered": (_flip_byte, "SHA-256 differs"),
    "truncated": (None, "truncated"),
    "extra file": (_add("workspaces/w/tasks/extra/task.json"), "not listed in the manifest"),
    "missing file": (_drop_last, "missing from the archive"),
    "path traversal": (_add("workspaces/w/../../evil"), "unsafe path"),
    "absolute path": (_add("/tmp/evil"), "unsafe path"),
    "symlink": (_add("workspaces/w/tasks/x/task.json", tarfile.SYMTYPE, "/etc/passwd"), "a symlink"),
    "hard link": (_add("workspaces/w/tasks/x/task.json", tarfile.LNKTYPE, "manifest.json"), "a hard link"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_damaged_or_unsafe_bundle_is_refused_and_nothing_written(tmp_path: Path, case: str) -> None:
    """Each kind of damage is refused with a BundleError naming it, and the target store is left as it was."""
    src, task_id = _source(tmp_path / "a")
    good, bad = tmp_path / "good.tar", tmp_path / "bad.tar"
    export_tasks(src, "w", [task_id], good)
    change, message = REFUSALS[case]
    if change is None:
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    else:
        _rewrite(good, bad, change)
    dst = FileStore(tmp_path / "c")
    dst.create_workspace("other")
    dst.create("other", sample_task())
    before = _files(tmp_path / "c")
    with pytest.raises(BundleError, match=message):
        import_bundle(dst, bad)
    assert _files(tmp_path / "c") == before
    assert not (tmp_path / "evil").exists()


def test_existing_id_is_refused_naming_as_new_id(tmp_path: Path) -> None:
    """Importing a task whose id the target workspace holds is refused (nothing written) and names --as-new-id."""
    src, task_id = _source(tmp_path / "a")
    export_tasks(src, "w", [task_id], tmp_path / "b.tar")
    before = _files(tmp_path / "a")
    with pytest.raises(BundleError, match="--as-new-id"):
        import_bundle(src, tmp_path / "b.tar")
    assert _files(tmp_path / "a") == before


def test_as_new_id_gives_a_fresh_id_and_the_references_follow(tmp_path: Path) -> None:
    """With as_new_id the task, its log lines' task_id and workspace_name (renamed too) follow the new names."""
    src, task_id = _source(tmp_path / "a")
    export_tasks(src, "w", [task_id], tmp_path / "b.tar")
    report = import_bundle(src, tmp_path / "b.tar", workspace="archive", as_new_id=True)
    new_id = report.tasks[0]["id"]
    assert new_id != task_id and report.workspace == "archive"
    task = src.get("archive", new_id)
    assert task.id == new_id and task.workspace_name == "archive"
    assert task.metadata["imported_from"]["original_id"] == task_id
    entries = list(src.read_log("archive", new_id))
    assert [e.get("task_id") for e in entries] == [new_id, new_id]
    assert {e.get("workspace_name") for e in entries} == {"archive", None}
    assert src.get_artifact("archive", new_id, "out/data.bin") == bytes(range(256)) * 40
    assert src.get("w", task_id).metadata.get("imported_from") is None  # the original is untouched


def test_as_new_id_twice_gives_two_tasks(tmp_path: Path) -> None:
    """Importing the same bundle twice with as_new_id keeps both copies under distinct ids."""
    src, task_id = _source(tmp_path / "a")
    export_tasks(src, "w", [task_id], tmp_path / "b.tar")
    first = import_bundle(src, tmp_path / "b.tar", as_new_id=True).tasks[0]["id"]
    second = import_bundle(src, tmp_path / "b.tar", as_new_id=True).tasks[0]["id"]
    assert len({task_id, first, second}) == 3
    assert {t.id for t in src.list("w")} == {task_id, first, second}


@pytest.mark.stores("memory", "postgres")
def test_postgres_and_memory_targets_refuse_a_tampered_bundle(tmp_path: Path, store: Store) -> None:
    """A tampered bundle leaves a PostgreSQL or memory store without the workspace it would have created."""
    src, task_id = _source(tmp_path / "a")
    export_tasks(src, "w", [task_id], tmp_path / "good.tar")
    _rewrite(tmp_path / "good.tar", tmp_path / "bad.tar", _flip_byte)
    with pytest.raises(BundleError, match="SHA-256"):
        import_bundle(store, tmp_path / "bad.tar")
    assert [ws.name for ws in store.list_workspaces()] == []


# -- a killed export ---------------------------------------------------------------------------------------------
_EXPORTER = """
import sys
from atlas_tasks import FileStore
from atlas_tasks.retention.bundle import export_tasks
export_tasks(FileStore(sys.argv[1]), "w", [sys.argv[2]], sys.argv[3])
"""


def test_killed_export_leaves_no_bundle_under_the_final_name(tmp_path: Path) -> None:
    """SIGKILL while a big artifact is being compressed into the bundle leaves nothing named like the bundle."""
    import os

    src = FileStore(tmp_path / "a")
    src.create_workspace("w")
    task: Task = src.create("w", sample_task())
    src.save_artifact("w", task.id, "big.bin", os.urandom(96 << 20))  # random: gzip is slow on it
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "big.tar.gz"
    child = subprocess.Popen([sys.executable, "-c", _EXPORTER, str(src.home), task.id, str(out)])
    try:
        deadline = time.monotonic() + 120
        while not any(p.stat().st_size > 0 for p in out_dir.iterdir()):  # the export is writing
            assert child.poll() is None, "the export finished before it could be killed"
            assert time.monotonic() < deadline, "the export never started writing"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert not out.exists()
    assert [p.name for p in out_dir.iterdir() if not p.name.startswith(".")] == []


def test_leftover_of_an_interrupted_import_is_refused_not_overwritten(tmp_path: Path) -> None:
    """A task directory without task.json (what a crash mid-import leaves) is refused as a clash, never clobbered."""
    src, task_id = _source(tmp_path / "a")
    export_tasks(src, "w", [task_id], tmp_path / "b.tar")
    dst = FileStore(tmp_path / "c")
    dst.create_workspace("w")
    leftover = dst.task_path("w", task_id)
    leftover.mkdir(parents=True)
    (leftover / "task.log").write_bytes(b'{"event":"half"}\n')
    with pytest.raises(BundleError, match="--as-new-id"):
        import_bundle(dst, tmp_path / "b.tar")
    assert (leftover / "task.log").read_bytes() == b'{"event":"half"}\n'
    assert not (leftover / "task.json").exists()


@pytest.mark.stores("file", "memory", "postgres")
def test_importing_the_same_bundle_again_keeps_what_it_imported_and_adds_the_rest(tmp_path: Path, store: Store) -> None:
    """A second import of one bundle (as after a killed one) writes only the missing tasks and reports the others."""
    src, first = _source(tmp_path / "a")
    second = src.create("w", sample_task(description="second")).id
    export_tasks(src, "w", [first, second], tmp_path / "b.tar")
    ws = f"w{time.monotonic_ns()}"
    report = import_bundle(store, tmp_path / "b.tar", workspace=ws)
    store.delete(ws, second)  # as if the first run had been killed before the second task (tombstone aside)
    again = import_bundle(store, tmp_path / "b.tar", workspace=ws)
    assert again.tasks == [
        {"original_id": first, "id": first, "already_imported": True},
        {"original_id": second, "id": second},
    ]
    assert report.tasks[0]["id"] == first
    assert sorted(t.id for t in store.list(ws)) == sorted([first, second])
    third = import_bundle(store, tmp_path / "b.tar", workspace=ws)
    assert all(item.get("already_imported") for item in third.tasks)


def test_a_task_of_the_same_id_from_another_bundle_is_still_refused(tmp_path: Path) -> None:
    """Only this very bundle's own imports are kept on a second run: another bundle's task of that id is a clash."""
    src, task_id = _source(tmp_path / "a")
    export_tasks(src, "w", [task_id], tmp_path / "one.tar")
    src.modify("w", task_id, lambda t: t.metadata.update(changed=True))
    export_tasks(src, "w", [task_id], tmp_path / "two.tar")
    dst = FileStore(tmp_path / "c")
    import_bundle(dst, tmp_path / "one.tar")
    with pytest.raises(BundleError, match="--as-new-id"):
        import_bundle(dst, tmp_path / "two.tar")


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, read in chunks (a member's content without holding it in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


_IMPORT_RSS = """
import sys
from atlas_tasks import BundleError, FileStore
from atlas_tasks.retention.bundle import import_bundle
try:
    import_bundle(FileStore(sys.argv[1]), sys.argv[2], max_bytes=50 * 1024**2)
except BundleError as exc:
    print("refused:", exc)
# VmHWM, not ru_maxrss: the latter carries over the forking parent's size (a big pytest) across exec.
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("maxrss_kib", peak.split()[1])
"""


def test_a_gzip_bomb_is_refused_from_its_header_without_reading_it(tmp_path: Path) -> None:
    """A small .tar.gz declaring 300 MB of content, over a 50 MB limit, is refused before its content is read."""
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        info = tarfile.TarInfo("workspaces/w/tasks/task-20250101-000000/artifacts/zeros.bin")
        info.size = 300 * 1024**2
        tar.addfile(info, io.BufferedReader(_Zeros(info.size)))
    assert bomb.stat().st_size < 2 * 1024**2
    home = tmp_path / "dst"
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_RSS, str(home), str(bomb)], env=env, capture_output=True, text=True, timeout=120
    )
    assert "refused:" in out.stdout and "more than 52,428,800 bytes" in out.stdout, out.stdout + out.stderr
    maxrss_mib = int(out.stdout.split("maxrss_kib")[1]) / 1024
    assert maxrss_mib < 200  # the member alone is 300 MiB: it was never read into memory
    assert not (home / "workspaces").exists()
