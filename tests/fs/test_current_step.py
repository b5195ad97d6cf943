"""current_step outside 0..len(steps) is corruption: refused on read, on write, and reported by doctor (#13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas_tasks import CorruptTaskError, FileStore, Step, Task
from atlas_tasks._codec import decode_task, encode_task


def three_steps(store: FileStore, ws: str) -> Task:
    return store.create(ws, Task(description="d", steps=[Step(name=n) for n in ("a", "b", "push")]))


def set_current_step(path: Path, value: int) -> None:
    doc = json.loads(path.read_text())
    doc["current_step"] = value
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("value", [-1, 4, 100])
def test_out_of_range_current_step_is_corrupt(store: FileStore, ws: str, value: int) -> None:
    """get, list, list_summaries and doctor all call a current_step outside 0..3 (of 3 steps) corrupt."""
    task = three_steps(store, ws)
    set_current_step(store.task_path(ws, task.id) / "task.json", value)
    with pytest.raises(CorruptTaskError, match="current_step"):
        store.get(ws, task.id)
    assert [e.task_id for e in store.list(ws).errors] == [task.id]
    assert [e.task_id for e in store.list_summaries(ws).errors] == [task.id]
    assert [(f.kind, f.task_id) for f in store.check().findings] == [("corrupt_task", task.id)]


@pytest.mark.parametrize("value", [0, 3])
def test_current_step_up_to_the_step_count_is_valid(store: FileStore, ws: str, value: int) -> None:
    """0 and len(steps) (what the Go ATLAS writes once every step ran) read back as they are."""
    task = three_steps(store, ws)
    set_current_step(store.task_path(ws, task.id) / "task.json", value)
    assert store.get(ws, task.id).current_step == value
    assert store.check().ok


def test_update_refuses_to_write_an_out_of_range_current_step(store: FileStore, ws: str) -> None:
    """update with current_step = -1 raises ValueError before writing; the stored task is unchanged."""
    task = three_steps(store, ws)
    before = (store.task_path(ws, task.id) / "task.json").read_bytes()
    task.current_step = -1
    with pytest.raises(ValueError, match=r"current_step -1 is outside 0\.\.3"):
        store.update(ws, task)
    assert (store.task_path(ws, task.id) / "task.json").read_bytes() == before


def test_go_fixtures_keep_their_current_step() -> None:
    """Every Go-written fixture task decodes and encodes again (its current_step is within range)."""
    fixtures = sorted((Path(__file__).parents[1] / "fixtures" / "go").rglob("task.json"))
    assert fixtures
    for path in fixtures:
        task = decode_task(path.read_bytes(), path=str(path))
        assert 0 <= task.current_step <= len(task.steps)
        assert decode_task(encode_task(task)).current_step == task.current_step
