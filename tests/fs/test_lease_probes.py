"""Asking who holds a run lease never makes anyone look like a runner.

Found by reliability campaign L: the probe used to take the lease's flock exclusively, so two probes at once (a
dashboard and a fork's check, say) or a probe and a runner taking the lease saw a live runner where there was none,
and a fork or a run was refused with a phantom "pid ? on ?". Real processes, the real file store.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from atlas_tasks import FileStore, Task
from atlas_tasks.errors import TaskRunningError
from atlas_tasks.models import Step

ROUNDS = 3000


def _idle_task(tmp_path: Path) -> tuple[FileStore, str]:
    store = FileStore(tmp_path / "home")
    store.create_workspace("w")
    task_id = store.create("w", Task(description="idle", steps=[Step(name="s", type="validation")])).id
    store.acquire_lease("w", task_id, {"pid": 0}).release()  # the lease file exists, as after any run
    return store, task_id


def _probe(home: str, task_id: str, out: str) -> None:
    store = FileStore(home)
    Path(out).write_text(str(sum(store.lease_holder("w", task_id) is not None for _ in range(ROUNDS))))


def _take(home: str, task_id: str, out: str) -> None:
    store = FileStore(home)
    refused = 0
    for _ in range(ROUNDS // 10):
        try:
            store.acquire_lease("w", task_id, {"pid": 1}).release()
        except TaskRunningError:
            refused += 1
    Path(out).write_text(str(refused))


def _race(tmp_path: Path, targets: list[object]) -> list[int]:
    store, task_id = _idle_task(tmp_path)
    ctx = multiprocessing.get_context("fork")
    outs = [str(tmp_path / f"out-{k}") for k in range(len(targets))]
    procs = [ctx.Process(target=t, args=(str(store.home), task_id, o)) for t, o in zip(targets, outs, strict=True)]  # type: ignore[arg-type]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    return [int(Path(o).read_text()) for o in outs]


def test_two_probes_at_once_see_no_runner(tmp_path: Path) -> None:
    """Two processes probing an idle task's lease thousands of times are never told it is held."""
    assert _race(tmp_path, [_probe, _probe]) == [0, 0]


def test_a_runner_taking_the_lease_is_not_refused_because_of_probes(tmp_path: Path) -> None:
    """A process taking and releasing the lease while two others probe it is never refused."""
    assert _race(tmp_path, [_take, _probe, _probe])[0] == 0


def test_a_held_lease_is_still_seen_and_still_exclusive(tmp_path: Path) -> None:
    """A live holder is reported by a probe, and a second taker is refused, naming the holder."""
    store, task_id = _idle_task(tmp_path)
    lease = store.acquire_lease("w", task_id, {"pid": 42, "host": "here"})
    try:
        assert store.lease_holder("w", task_id) == {"pid": 42, "host": "here"}
        with pytest.raises(TaskRunningError) as refused:
            store.acquire_lease("w", task_id, {"pid": 43})
        assert refused.value.holder == {"pid": 42, "host": "here"}
    finally:
        lease.release()
    assert store.lease_holder("w", task_id) is None
