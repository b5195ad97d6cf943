"""Nothing outside the home: name validation (with Hypothesis) and planted symlinks."""

from __future__ import annotations

import json
import os
import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas_tasks import FileStore, InvalidNameError, StorageError, Task, names
from atlas_tasks.testing.conformance import sample_task

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_pieces = st.sampled_from([*"./\\\x00\n\t :", *string.ascii_letters[:6], *"09_-", "..", "ü", "\u202e", "%2e", "con"])
hostile = st.lists(_pieces, max_size=20).map("".join)


@settings(max_examples=2000, deadline=None)
@given(hostile)
def test_accepted_names_are_plain(name: str) -> None:
    """Every accepted workspace name / task id is a single plain component; everything else is InvalidNameError."""
    try:
        names.check_workspace_name(name)
    except InvalidNameError:
        return
    assert NAME_RE.fullmatch(name)
    assert name not in (".", "..") and not name.endswith(".")
    assert "/" not in name and "\x00" not in name


@settings(max_examples=2000, deadline=None)
@given(st.lists(hostile, min_size=1, max_size=4).map("/".join))
def test_accepted_artifact_paths_stay_inside(name: str) -> None:
    """An accepted artifact path has only plain components: it can never climb out of artifacts/."""
    try:
        parts = names.artifact_parts(name)
    except InvalidNameError:
        return
    for part in parts:
        assert part not in ("", ".", "..") and not part.startswith(".")
        assert "\x00" not in part and "\\" not in part
    resolved = os.path.normpath(os.path.join("/base/artifacts", *parts))
    assert resolved.startswith("/base/artifacts/")


def test_traversal_workspace_writes_nothing_outside(tmp_path: Path) -> None:
    """The Go original wrote outside its home for ws='../../escaped'; here it is refused and nothing appears."""
    store = FileStore(tmp_path / "home")
    for bad in ["../../escaped-ws", "..", "a/../../b"]:
        with pytest.raises(InvalidNameError):
            store.create_workspace(bad)
        with pytest.raises(InvalidNameError):
            store.create(bad, sample_task())
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_traversal_task_id_writes_nothing_outside(store: FileStore, ws: str, tmp_path: Path) -> None:
    """A task id of '../../../../escaped-task' is refused before anything is written."""
    with pytest.raises(InvalidNameError):
        store.create(ws, sample_task(id="../../../../escaped-task"))
    assert not list(tmp_path.rglob("escaped-task"))


def test_symlinked_artifacts_dir_refused(store: FileStore, ws: str, task: Task, tmp_path: Path) -> None:
    """A symlink planted as artifacts/ cannot redirect a write outside the home."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.task_path(ws, task.id) / "artifacts").symlink_to(outside)
    with pytest.raises(StorageError, match="symlink"):
        store.save_artifact(ws, task.id, "x.md", b"pwned")
    with pytest.raises(StorageError):
        store.save_versioned_artifact(ws, task.id, "v.json", b"pwned")
    assert list(outside.iterdir()) == []


def test_symlinked_task_dir_refused(store: FileStore, ws: str, tmp_path: Path) -> None:
    """A task directory that is a symlink is neither read nor written through."""
    outside = tmp_path / "outside-task"
    outside.mkdir()
    (outside / "task.json").write_text('{"id": "evil"}')
    (store.workspace_path(ws) / "tasks").mkdir(exist_ok=True)
    (store.workspace_path(ws) / "tasks" / "evil").symlink_to(outside)
    with pytest.raises(StorageError):
        store.get(ws, "evil")
    with pytest.raises(StorageError):
        store.append_log(ws, "evil", {"event": "x"})
    listed = store.list(ws)
    assert list(listed) == [] and len(listed.errors) == 1
    assert sorted(p.name for p in outside.iterdir()) == ["task.json"]


def test_symlinked_workspace_refused(tmp_path: Path) -> None:
    """A workspace directory that is a symlink to elsewhere is refused for writes."""
    store = FileStore(tmp_path / "home")
    store.create_workspace("real")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "home" / "workspaces" / "link").symlink_to(outside)
    with pytest.raises(StorageError):
        store.create("link", sample_task())
    assert list(outside.iterdir()) == []


def test_symlinked_task_json_not_followed(store: FileStore, ws: str, task: Task, tmp_path: Path) -> None:
    """A task.json replaced by a symlink to a secret is not read through."""
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"id": task.id, "description": "secret"}))
    path = store.task_path(ws, task.id) / "task.json"
    path.unlink()
    path.symlink_to(secret)
    with pytest.raises(StorageError):
        store.get(ws, task.id)


@pytest.mark.parametrize("bad", ["report.2.md", "validation.1.json", "notes.3"])
def test_versioned_names_reserved(store: FileStore, ws: str, task: Task, bad: str) -> None:
    """Plain saves cannot use a versioned name, which keeps versions write-once."""
    with pytest.raises(InvalidNameError, match="versioned"):
        store.save_artifact(ws, task.id, bad, b"x")


def test_one_call_open_refuses_a_symlink_in_any_component(tmp_path: Path) -> None:
    """The openat2 fast path opens a clean path below a directory and declines (None) when any component is a
    symlink, even one pointing back inside the store, so the component walk decides and refuses it."""
    from atlas_tasks._fs import ops

    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "elsewhere" / "c").mkdir(parents=True)
    (tmp_path / "a" / "link").symlink_to(tmp_path / "elsewhere")
    start = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = ops.open_dir_beneath("a/b/c", start, f"{tmp_path}/a/b/c")
        if fd is None:
            pytest.skip("openat2 is not available on this kernel")
        try:
            assert os.fstat(fd).st_ino == (tmp_path / "a" / "b" / "c").stat().st_ino
        finally:
            os.close(fd)
        assert ops.open_dir_beneath("a/link/c", start, "a/link/c") is None
        assert ops.open_dir_beneath("a/missing/c", start, "a/missing/c") is None
        assert ops.open_dir_beneath("../" + tmp_path.name + "/a/b", start, "escape") is None
    finally:
        os.close(start)
