"""Streaming bundles: export and import hold one task (export: one chunk of an artifact), never the whole bundle."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from atlas_tasks import BundleError, FileStore
from atlas_tasks.retention.bundle import export_tasks, import_bundle
from atlas_tasks.testing.conformance import sample_task

SRC = Path(__file__).resolve().parents[2] / "src"
MIB = 1024**2
#: The memory bound the streaming paths must stay under, far below the 200 MiB of content they move.
BOUND_MIB = 120

# A child process runs one export, import or control read, then prints its peak resident memory (VmHWM; not
# ru_maxrss, which carries over the forking parent's size, a big pytest, across exec).
CHILD = textwrap.dedent(
    """
    import sys
    from atlas_tasks import BundleError, FileStore
    from atlas_tasks.retention.bundle import export_tasks, import_bundle

    mode, home, arg, *rest = sys.argv[1:]
    store = FileStore(home)
    if mode == "export":
        export_tasks(store, "w", rest, arg)
    elif mode == "import":
        try:
            print("imported", len(import_bundle(store, arg).tasks))
        except BundleError as exc:
            print("refused:", exc)
    else:  # the control: one artifact read whole, as exports did before they streamed
        print("read", len(store.get_artifact("w", rest[0], arg)))
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print("peak_kib", peak.split()[1])
    """
)


def _peak_mib(*args: str | Path) -> tuple[float, str]:
    """Run CHILD with ``args``; its peak resident memory in MiB and its output."""
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, args)], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0 and "peak_kib" in out.stdout, out.stdout + out.stderr
    return int(out.stdout.split("peak_kib")[1]) / 1024, out.stdout


def _sparse_source(home: Path, sizes_mib: list[int]) -> tuple[FileStore, list[str]]:
    """A file store with one task per size, each with an artifact of zeros that size (sparse: cheap on disk)."""
    store = FileStore(home)
    store.create_workspace("w")
    ids = []
    for n, size in enumerate(sizes_mib):
        task = store.create("w", sample_task(description=f"task {n}"))
        store.append_log("w", task.id, {"event": "started"})
        store.save_artifact("w", task.id, "big.bin", b"")
        os.truncate(store.task_path("w", task.id) / "artifacts" / "big.bin", size * MIB)
        ids.append(task.id)
    return store, ids


def _zeros_sha256(size: int) -> str:
    digest, block = hashlib.sha256(), bytes(MIB)
    for _ in range(size // MIB):
        digest.update(block)
    return digest.hexdigest()


def test_export_of_a_200_mib_artifact_stays_far_below_its_size(tmp_path: Path) -> None:
    """Exporting a 200 MiB artifact peaks under 120 MiB, while reading that artifact whole (the control) exceeds it."""
    src, (task_id,) = _sparse_source(tmp_path / "src", [200])
    out = tmp_path / "b.tar.gz"
    peak, _ = _peak_mib("export", src.home, out, task_id)
    control, said = _peak_mib("read-whole", src.home, "big.bin", task_id)
    assert f"read {200 * MIB}" in said
    assert peak < BOUND_MIB < control, (peak, control)
    with tarfile.open(out) as tar:
        names = tar.getnames()
        handle = tar.extractfile("manifest.json")
        assert handle is not None
        listed = {entry["path"]: entry for entry in json.loads(handle.read())["files"]}
    assert names[-1] == "manifest.json"  # written once every member's hash is known
    big = listed[f"workspaces/w/tasks/{task_id}/artifacts/big.bin"]
    assert big["size"] == 200 * MIB and big["sha256"] == _zeros_sha256(200 * MIB)


def test_import_of_200_mib_in_many_tasks_stays_far_below_the_bundle_size(tmp_path: Path) -> None:
    """Eight tasks of 25 MiB each (200 MiB in all) import with the process under 120 MiB: one task at a time."""
    src, ids = _sparse_source(tmp_path / "src", [25] * 8)
    bundle = tmp_path / "b.tar.gz"
    export_tasks(src, "w", ids, bundle)
    dst = tmp_path / "dst"
    peak, said = _peak_mib("import", dst, bundle)
    assert "imported 8" in said
    assert peak < BOUND_MIB, peak
    for task_id in ids:
        landed = FileStore(dst).task_path("w", task_id) / "artifacts" / "big.bin"
        assert landed.stat().st_size == 25 * MIB
    with open(landed, "rb") as handle:
        assert hashlib.file_digest(handle, "sha256").hexdigest() == _zeros_sha256(25 * MIB)


def test_checking_a_200_mib_member_streams_it(tmp_path: Path) -> None:
    """The first pass hashes a 200 MiB artifact in chunks: a bundle refused after it is checked stays under 120 MiB."""
    src, (task_id,) = _sparse_source(tmp_path / "src", [200])
    bundle = tmp_path / "b.tar.gz"
    export_tasks(src, "w", [task_id], bundle)
    dst = FileStore(tmp_path / "dst")
    dst.create_workspace("w")
    dst.task_path("w", task_id).mkdir(parents=True)  # the id taken (what an interrupted import leaves)
    peak, said = _peak_mib("import", dst.home, bundle)
    # Refused for the clash, which is looked at only once every member was read and matched its hash.
    assert "refused:" in said and "already exists" in said, said
    assert peak < BOUND_MIB, peak


# -- layouts written by others -----------------------------------------------------------------------------------
def _small_source(home: Path, count: int) -> tuple[FileStore, list[str]]:
    store = FileStore(home)
    store.create_workspace("w")
    ids = []
    for n in range(count):
        task = store.create("w", sample_task(description=f"task {n}"))
        store.append_log("w", task.id, {"event": "started", "n": n})
        store.save_artifact("w", task.id, "a.txt", f"first of {n}\n")
        store.save_artifact("w", task.id, "b/c.bin", bytes([n]) * 70_000)
        ids.append(task.id)
    return store, ids


def _members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as tar:
        out = []
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            assert handle is not None
            out.append((info, handle.read()))
    return out


def _write(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data))


def _same_tasks(src: FileStore, dst: FileStore, ids: list[str]) -> None:
    for task_id in ids:
        a, c = src.task_path("w", task_id), dst.task_path("w", task_id)
        assert (c / "task.log").read_bytes() == (a / "task.log").read_bytes()
        for name in ("a.txt", "b/c.bin"):
            assert (c / "artifacts" / name).read_bytes() == (a / "artifacts" / name).read_bytes()


def test_a_bundle_with_its_manifest_first_still_imports(tmp_path: Path) -> None:
    """Bundles written before streaming (manifest.json the first member) import as before, byte for byte."""
    src, ids = _small_source(tmp_path / "src", 2)
    export_tasks(src, "w", ids, tmp_path / "new.tar")
    members = _members(tmp_path / "new.tar")
    assert members[-1][0].name == "manifest.json"
    _write(tmp_path / "old.tar", [members[-1], *members[:-1]])
    dst = FileStore(tmp_path / "dst")
    report = import_bundle(dst, tmp_path / "old.tar")
    assert [t["id"] for t in report.tasks] == ids
    _same_tasks(src, dst, ids)


def test_tasks_whose_members_are_interleaved_import_whole(tmp_path: Path) -> None:
    """A tar that mixes the members of three tasks (another tool's order) imports every task whole, in bundle order."""
    src, ids = _small_source(tmp_path / "src", 3)
    export_tasks(src, "w", ids, tmp_path / "b.tar")
    members = _members(tmp_path / "b.tar")
    head = [m for m in members if "/tasks/" not in m[0].name]
    per_task = [[m for m in members if f"/tasks/{task_id}/" in m[0].name] for task_id in ids]
    # Round robin: task 0's first member, task 1's first, task 2's first, task 0's second, ...
    mixed = [m for group in zip(*per_task, strict=False) for m in group]
    assert len(mixed) == sum(map(len, per_task))
    _write(tmp_path / "mixed.tar", [head[0], *mixed, *head[1:]])
    dst = FileStore(tmp_path / "dst")
    report = import_bundle(dst, tmp_path / "mixed.tar")
    assert [t["id"] for t in report.tasks] == ids
    _same_tasks(src, dst, ids)


def test_interleaved_tasks_still_import_one_task_at_a_time(tmp_path: Path) -> None:
    """Five tasks of 2 x 20 MiB whose members are interleaved import under 120 MiB: each such task gets its own pass."""
    src = FileStore(tmp_path / "src")
    src.create_workspace("w")
    ids = []
    for n in range(5):
        task_id = src.create("w", sample_task(description=f"task {n}")).id
        for name in ("one.bin", "two.bin"):
            src.save_artifact("w", task_id, name, b"")
            os.truncate(src.task_path("w", task_id) / "artifacts" / name, 20 * MIB)
        ids.append(task_id)
    plain, mixed = tmp_path / "b.tar", tmp_path / "mixed.tar.gz"
    export_tasks(src, "w", ids, plain)
    with tarfile.open(plain) as tar, tarfile.open(mixed, "w:gz") as out:
        members = tar.getmembers()
        head = [m for m in members if "/tasks/" not in m.name]
        per_task = [[m for m in members if f"/tasks/{task_id}/" in m.name] for task_id in ids]
        # Every task's first member, then every task's second, ...: a one-pass importer would hold all five
        # tasks' first artifacts (100 MiB) before any task is complete.
        for info in [head[0], *(m for group in zip(*per_task, strict=True) for m in group), *head[1:]]:
            out.addfile(info, tar.extractfile(info))
    plain.unlink()
    dst = tmp_path / "dst"
    peak, said = _peak_mib("import", dst, mixed)
    assert "imported 5" in said, said
    assert peak < BOUND_MIB, peak
    for task_id in ids:
        assert (FileStore(dst).task_path("w", task_id) / "artifacts" / "two.bin").stat().st_size == 20 * MIB


# -- a bundle changed between the passes -------------------------------------------------------------------------
# The child imports a two-task bundle and, the moment the first task's task.json lands (the second pass is under
# way), flips one byte of the second task's artifact inside the bundle file.
CHANGER = textwrap.dedent(
    """
    import os, sys
    from atlas_tasks import BundleError, FileStore
    from atlas_tasks.retention.bundle import import_bundle

    bundle, offset = sys.argv[2], int(sys.argv[3])
    done = [False]

    def audit(event, args):
        if event == "os.rename" and args[1] == "task.json" and not done[0]:
            done[0] = True
            with open(bundle, "r+b") as handle:
                handle.seek(offset)
                byte = handle.read(1)
                handle.seek(offset)
                handle.write(bytes([byte[0] ^ 1]))

    store = FileStore(sys.argv[1])
    sys.addaudithook(audit)
    try:
        import_bundle(store, bundle)
    except BundleError as exc:
        print("refused:", exc)
    """
)


def test_a_bundle_changed_between_the_passes_is_refused_and_nothing_more_written(tmp_path: Path) -> None:
    """A member that hashes differently when read again for writing is refused, and its task is not written."""
    src, ids = _small_source(tmp_path / "src", 2)
    bundle = tmp_path / "b.tar"
    export_tasks(src, "w", ids, bundle)
    with tarfile.open(bundle) as tar:
        target = tar.getmember(f"workspaces/w/tasks/{ids[1]}/artifacts/b/c.bin")
    offset = target.offset_data + target.size - 1  # its last byte: well past what was read ahead
    dst = tmp_path / "dst"
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", CHANGER, str(dst), str(bundle), str(offset)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "refused:" in out.stdout and "changed while it was imported" in out.stdout, out.stdout + out.stderr
    store = FileStore(dst)
    assert store.get("w", ids[0]).id == ids[0]  # written before the change: kept, as after any failed import
    assert not store.task_path("w", ids[1]).exists()
    with pytest.raises(BundleError, match="SHA-256 differs"):  # the bundle as it now is fails the first pass
        import_bundle(FileStore(tmp_path / "again"), bundle)


# -- documents checked by the first pass -------------------------------------------------------------------------
def _with_member(src: Path, dst: Path, name: str, data: bytes, *, relist: bool) -> None:
    """``src`` with member ``name`` replaced by ``data``; with ``relist`` the manifest lists the new hash (a bundle
    built that way on purpose, which the hashes cannot catch)."""
    members = _members(src)
    out = []
    for info, content in members:
        if info.name == name:
            content = data
        elif info.name == "manifest.json" and relist:
            manifest = json.loads(content)
            for entry in manifest["files"]:
                if entry["path"] == name:
                    entry["size"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
            content = json.dumps(manifest).encode()
        info.size = len(content)
        out.append((info, content))
    _write(dst, out)


@pytest.mark.parametrize(
    ("member", "data", "relist", "message"),
    [
        ("task.json", b"{not json", True, "unusable task"),
        ("task.log", b'{"event":"ok"}\nnot json\n', True, "log line 2 is not a JSON object"),
        ("task.json", b"{not json", False, "the manifest says"),
    ],
    ids=["undecodable task.json", "bad log line", "tampered task.json"],
)
def test_bad_documents_are_refused_after_the_hashes(
    tmp_path: Path, member: str, data: bytes, relist: bool, message: str
) -> None:
    """An undecodable task document or log is refused, a tampered one called tampered; nothing is written."""
    src, ids = _small_source(tmp_path / "src", 2)
    export_tasks(src, "w", ids, tmp_path / "b.tar")
    bad = tmp_path / "bad.tar"
    _with_member(tmp_path / "b.tar", bad, f"workspaces/w/tasks/{ids[1]}/{member}", data, relist=relist)
    with pytest.raises(BundleError, match=message):
        import_bundle(FileStore(tmp_path / "dst"), bad)
    assert not (tmp_path / "dst" / "workspaces").exists()
