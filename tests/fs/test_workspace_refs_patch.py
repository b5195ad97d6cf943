"""workspace.json refs edited as plain JSON are byte-identical to what the model path writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from atlas_tasks import FileStore, Task, TaskStatus
from atlas_tasks._codec import decode_workspace, encode_workspace, patch_workspace_refs

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def test_refs_kept_in_step_and_identical_to_the_model_encoding(tmp_path: Path) -> None:
    """With task_refs="all", create/update/delete keep the refs in step, in the model's exact encoding."""
    store = FileStore(tmp_path / "home", task_refs="all")
    store.create_workspace("ws", metadata={"b": 1, "a": "<x & y>"})
    ids = [store.create("ws", Task(description=f"t{i}", created_at=T0 + timedelta(minutes=i))).id for i in range(3)]
    task = store.get("ws", ids[1])
    task.transition(TaskStatus.RUNNING)
    task.transition(TaskStatus.ABANDONED)
    store.update("ws", task)
    store.delete("ws", ids[0])
    raw = (store.workspace_path("ws") / "workspace.json").read_bytes()
    ws = decode_workspace(raw)
    assert [r.id for r in ws.tasks] == ids[1:]
    assert ws.tasks[0].completed_at is not None
    assert encode_workspace(ws) == raw


def test_unchanged_refs_give_none_and_odd_documents_are_refused() -> None:
    doc = b'{"name": "ws", "tasks": [], "schema_version": 1}'
    assert patch_workspace_refs(doc, lambda refs: False, T0) is None
    for odd in (b"[]", b'{"tasks": {}, "schema_version": 1}', b'{"tasks": [], "schema_version": "1"}'):
        with pytest.raises(ValueError, match=r"workspace\.json"):
            patch_workspace_refs(odd, lambda refs: True, T0)


def test_delete_many_drops_every_ref_and_summary(tmp_path: Path) -> None:
    """delete_many, which rewrites workspace.json and the summary cache once, leaves them naming only the kept tasks."""
    store = FileStore(tmp_path / "home", task_refs="all")
    store.create_workspace("ws")
    ids = [store.create("ws", Task(description=f"t{i}", created_at=T0 + timedelta(minutes=i))).id for i in range(6)]
    store.list_summaries("ws")  # builds the summary cache file
    ws_file = store.workspace_path("ws") / "workspace.json"
    cache = tmp_path / "home" / ".atlas-tasks" / "summaries" / "ws.json"
    assert cache.exists()
    assert store.delete_many("ws", ids[:4]) == {}
    assert [r.id for r in decode_workspace(ws_file.read_bytes()).tasks] == ids[4:]
    assert sorted(json.loads(cache.read_text())["tasks"]) == sorted(ids[4:])
    assert sorted(s.id for s in FileStore(tmp_path / "home").list_summaries("ws")) == sorted(ids[4:])
