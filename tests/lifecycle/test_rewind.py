"""Retry from a step in place and fork from a step (atlas_tasks.lifecycle.rewind), on every backend.

Steps are real commands that append their name to a counter file in the worktree, so a step that ran again is seen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from atlas_tasks import FileStore, Step, Task
from atlas_tasks.errors import RewindError, StepFailedError, TaskRunningError
from atlas_tasks.executors import run_task
from atlas_tasks.lifecycle import rewind
from atlas_tasks.models import TaskStatus
from atlas_tasks.runs import approve, recover
from atlas_tasks.store import Store

pytestmark = pytest.mark.stores("file", "memory", "postgres")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "go"


def _cmd(name: str, *, fail_if: str = "") -> Step:
    # Appends its name to ./counter; with fail_if, fails while that file exists in the worktree.
    check = f"test ! -e {fail_if} && " if fail_if else ""
    return Step(name=name, type="validation", commands=[f"{check}echo {name} >> counter"], shell=True)  # type: ignore[call-arg]


def _make(store: Store, ws: str, *steps: Step) -> Task:
    return store.create(ws, Task(description="rewind me", steps=list(steps)))


def _run(store: Store, ws: str, task_id: str) -> Task:
    try:
        with store.run(ws, task_id) as live:
            run_task(live)
    except StepFailedError:
        pass  # recorded in the task: the test looks at it
    return store.get(ws, task_id)


def _ran(worktree: Path) -> list[str]:
    counter = worktree / "counter"
    return counter.read_text().split() if counter.exists() else []


def _failed_at_second(store: Store, ws: str, worktree: Path) -> Task:
    """A three-step task whose second step failed (the file `broken` makes it fail)."""
    (worktree / "broken").touch()
    task = _make(store, ws, _cmd("one"), _cmd("two", fail_if="broken"), _cmd("three"))
    _run(store, ws, task.id)
    store.save_artifact(ws, task.id, "notes.md", b"source notes\x00\xff")
    (worktree / "broken").unlink()
    return store.get(ws, task.id)


def test_retry_from_a_step_never_reruns_the_earlier_steps(store: Store, ws: str, worktree: Path) -> None:
    """After retry from step 2 of a completed-up-to-3 run, a run executes steps 2 and 3 only."""
    task = _make(store, ws, _cmd("one"), _cmd("two"), _cmd("three"), Step(name="review", type="human"))
    recorded = _run(store, ws, task.id).step_results
    assert _ran(worktree) == ["one", "two", "three"]
    retried = rewind.retry_from(store, ws, task.id, 2, reason="redo two")
    assert retried.status == TaskStatus.RUNNING and retried.current_step == 1
    assert [s.status for s in retried.steps] == ["success", "pending", "pending", "pending"]
    assert retried.steps[1].attempts == 1, "attempts are history: kept"
    assert retried.step_results == recorded, "no recorded result is dropped or changed"
    assert retried.metadata["retried_from"]["step_name"] == "two"
    _run(store, ws, task.id)
    assert _ran(worktree) == ["one", "two", "three", "two", "three"]


def test_retry_from_failed_picks_the_first_failed_step(store: Store, ws: str, worktree: Path) -> None:
    """`failed` resolves to the first step whose status is failed, and the run completes from there."""
    task = _failed_at_second(store, ws, worktree)
    assert rewind.resolve_step(ws, task, "failed") == 1
    rewind.retry_from(store, ws, task.id, "failed")
    done = _run(store, ws, task.id)
    assert _ran(worktree) == ["one", "two", "three"]
    assert done.steps[2].status == "success"


def test_fork_from_failed_copies_the_done_steps_and_never_reruns_them(store: Store, ws: str, worktree: Path) -> None:
    """A fork from the failed step carries step 1's result; running it executes steps 2 and 3 only."""
    source = _failed_at_second(store, ws, worktree)
    child = rewind.fork(store, ws, source.id, "failed", reason="try again elsewhere")
    assert child.id != source.id and child.status == TaskStatus.PENDING and child.current_step == 1
    assert [s.status for s in child.steps] == ["success", "pending", "pending"]
    assert [r.step_index for r in child.step_results] == [0]
    assert child.steps[1].attempts == 0
    assert "fork_incomplete" not in child.metadata
    assert store.get_artifact(ws, child.id, "notes.md") == b"source notes\x00\xff"
    assert sorted(store.list_artifacts(ws, child.id)) == sorted(store.list_artifacts(ws, source.id))
    assert "forked from" in store.read_log(ws, child.id)[0]["event"]
    done = _run(store, ws, child.id)
    assert done.status == TaskStatus.COMPLETED
    assert _ran(worktree) == ["one", "two", "three"], "step 1 ran once (in the source); 2 failed there, silently"


def test_fork_leaves_the_source_unchanged_but_for_its_forks_list(store: Store, ws: str, worktree: Path) -> None:
    """The source's document (less forks/revision/updated_at) and artifacts are the same after a fork."""
    source = _failed_at_second(store, ws, worktree)
    stored = store.get(ws, source.id)
    before = stored.model_dump(mode="json")
    blobs = {n: store.get_artifact(ws, source.id, n) for n in store.list_artifacts(ws, source.id)}
    child = rewind.fork(store, ws, source.id, 2)
    after = store.get(ws, source.id).model_dump(mode="json")
    forks = after["metadata"].pop("forks")
    for doc in (before, after):
        doc.pop("revision", None), doc.pop("updated_at", None)
    assert after == before
    assert {n: store.get_artifact(ws, source.id, n) for n in store.list_artifacts(ws, source.id)} == blobs
    assert [f["task_id"] for f in forks] == [child.id]
    origin = child.metadata["forked_from"]
    assert (origin["task_id"], origin["workspace"], origin["step_index"]) == (source.id, ws, 1)
    assert origin["source_revision"] == stored.revision


def test_concurrent_forks_both_succeed_and_both_are_listed(store: Store, ws: str, worktree: Path) -> None:
    """Two threads forking the same task get distinct ids, and the source lists both."""
    source = _failed_at_second(store, ws, worktree)
    made: list[str] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            made.append(rewind.fork(store, ws, source.id, 2).id)
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(set(made)) == 2
    listed = {f["task_id"] for f in store.get(ws, source.id).metadata["forks"]}
    assert listed == set(made)


def test_a_fork_outlives_its_deleted_source(store: Store, ws: str, worktree: Path) -> None:
    """Deleting the source leaves the fork complete, with its artifacts, and it runs to completion."""
    source = _failed_at_second(store, ws, worktree)
    child = rewind.fork(store, ws, source.id, "failed")
    store.delete(ws, source.id)
    assert store.get_artifact(ws, child.id, "notes.md") == b"source notes\x00\xff"
    assert _run(store, ws, child.id).status == TaskStatus.COMPLETED


def test_an_approval_before_the_fork_point_is_inherited(store: Store, ws: str, worktree: Path) -> None:
    """A human step before the fork point carries its approval (marked inherited); the fork never stops there."""
    task = _make(store, ws, _cmd("one"), Step(name="review", type="human"), _cmd("ship"))
    _run(store, ws, task.id)
    approve(store, ws, task.id, "ok")
    _run(store, ws, task.id)
    child = rewind.fork(store, ws, task.id, 3)
    review = [r for r in child.step_results if r.step_name == "review"]
    assert review and review[-1].metadata.get("inherited") is True
    assert _run(store, ws, child.id).status == TaskStatus.COMPLETED


def test_a_fork_at_a_human_step_asks_for_a_fresh_approval(store: Store, ws: str, worktree: Path) -> None:
    """Forking at the human step itself makes the fork wait for its own approval."""
    task = _make(store, ws, _cmd("one"), Step(name="review", type="human"), _cmd("ship"))
    _run(store, ws, task.id)
    approve(store, ws, task.id, "ok")
    child = rewind.fork(store, ws, task.id, "review")
    assert not [r for r in child.step_results if r.step_name == "review"]
    assert _run(store, ws, child.id).status == TaskStatus.AWAITING_APPROVAL


def test_retry_and_fork_are_refused_while_a_runner_holds_the_task(store: Store, ws: str, worktree: Path) -> None:
    """With the run lease held, both refuse with TaskRunningError and nothing changes."""
    source = _failed_at_second(store, ws, worktree)
    before = store.get(ws, source.id)
    with store.run(ws, source.id):
        with pytest.raises(TaskRunningError):
            rewind.retry_from(store, ws, source.id, 1)
        with pytest.raises(TaskRunningError):
            rewind.fork(store, ws, source.id, 1)
        assert [t.id for t in store.list(ws)] == [source.id]
    assert store.get(ws, source.id).steps == before.steps


@pytest.mark.parametrize(
    ("step", "says"),
    [(9, "has 3 steps"), ("nope", "no step is named"), ("dup", "2 steps are named"), ("failed", "no step has failed")],
)
def test_a_bad_step_is_a_typed_error_listing_the_choices(store: Store, ws: str, step: object, says: str) -> None:
    """Out of range, unknown, repeated names and `failed` without a failure are RewindErrors naming valid steps."""
    task = _make(store, ws, _cmd("dup"), _cmd("dup"), _cmd("three"))
    with pytest.raises(RewindError, match=says) as caught:
        rewind.retry_from(store, ws, task.id, step)  # type: ignore[arg-type]
    assert "1 (dup)" in str(caught.value)
    assert store.get(ws, task.id).revision == task.revision


def test_a_finished_task_is_not_retried_but_forked(store: Store, ws: str, worktree: Path) -> None:
    """Retrying a completed task is refused with a message that says to fork it."""
    task = _make(store, ws, _cmd("one"))
    _run(store, ws, task.id)
    with pytest.raises(RewindError, match="fork"):
        rewind.retry_from(store, ws, task.id, 1)


@pytest.mark.stores("file")
def test_retry_matches_go_reject_retry_on_a_go_written_task(tmp_path: Path) -> None:
    """On Go's awaiting-approval fixture, retry from step 2 does what `atlas reject --retry --step 2` does."""
    home = Path(shutil.copytree(FIXTURES / "head-home", tmp_path / "home"))
    store = FileStore(home)
    task_id = "task-b7e4a2d9-1c3f-4a8e-9b5d-2e7f6c0d8a41"
    before = store.get("api", task_id)
    retried = rewind.retry_from(store, "api", task_id, 2, reason="fix the auth flow")
    # Go: current_step = N-1 and a transition awaiting_approval -> running; the earlier step stays done.
    assert retried.current_step == 1 and retried.status == TaskStatus.RUNNING
    last = retried.transitions[-1]
    assert (str(last.from_status), str(last.to_status)) == ("awaiting_approval", "running")
    assert retried.steps[0].status == "success" and [s.status for s in retried.steps[1:]] == ["pending"] * 3
    assert retried.step_results[: len(before.step_results)] == before.step_results
    raw = json.loads((store.task_path("api", task_id) / "task.json").read_text())
    assert "workspace_id" in raw, "Go's key names are kept"


# ---------------------------------------------------------------- kill -9 during a fork (file store, processes)

_FORKER = """
import sys
from atlas_tasks import open_store
from atlas_tasks.lifecycle import rewind
if sys.argv[4] == "weak":  # the negative control: a fork built without the incomplete marker
    build = rewind.build_fork
    def unmarked(*a, **k):
        task = build(*a, **k)
        task.metadata.pop(rewind.FORK_INCOMPLETE)
        return task
    rewind.build_fork = unmarked
print(rewind.fork(open_store(sys.argv[1]), sys.argv[2], sys.argv[3], 2).id)
"""


def _fork_in_process(store: Store, ws: str, task_id: str, crash: str = "", variant: str = "strong") -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if crash:
        env["ATLAS_TASKS_FORK_CRASH"] = crash
    done = subprocess.run(
        [sys.executable, "-c", _FORKER, store.url, ws, task_id, variant], env=env, capture_output=True, timeout=120
    )
    return done.returncode


def _fork_problems(store: Store, ws: str, source_id: str) -> list[str]:
    """Why the workspace does not hold only the source and complete forks of it."""
    problems = []
    names = sorted(store.list_artifacts(ws, source_id))
    for task in store.list(ws):
        if task.id == source_id:
            continue
        if rewind.is_incomplete_fork(task):
            problems.append(f"{task.id}: still marked incomplete")
        if sorted(store.list_artifacts(ws, task.id)) != names:
            problems.append(f"{task.id}: artifacts missing")
        log = store.read_log(ws, task.id)
        if not log or "forked from" not in log[0].get("event", ""):
            problems.append(f"{task.id}: no forked entry in its log")
    return problems


def _wait_for_leases_to_free(store: Store, ws: str) -> None:
    """Wait (bounded) until no task of the workspace has a lease holder. A file lease is an flock the kernel drops
    with the dead process; a PostgreSQL lease goes when the server notices the dead client's connection is gone,
    which can take a moment: until then recover rightly keeps a fork whose builder may still be alive."""
    deadline = time.monotonic() + 30
    while any(store.lease_holder(ws, t.id) is not None for t in store.list(ws)):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "a dead forker's lease was never released"
        time.sleep(0.05)


@pytest.mark.stores("file", "postgres")
@pytest.mark.parametrize("point", rewind.CRASH_POINTS)
def test_a_fork_killed_at_any_write_leaves_no_fork_or_a_complete_one(
    store: Store, ws: str, worktree: Path, point: str
) -> None:
    """A forker that dies (os._exit, as kill -9) at each write leaves, after recover, nothing half-built."""
    source = _failed_at_second(store, ws, worktree)
    assert _fork_in_process(store, ws, source.id, crash=point) == 137
    _wait_for_leases_to_free(store, ws)
    recover(store, ws)
    assert _fork_problems(store, ws, source.id) == []
    assert rewind.missing_forks(store, store.get(ws, source.id)) == []


@pytest.mark.stores("file", "postgres")
def test_the_crash_check_catches_a_fork_built_without_the_marker(store: Store, ws: str, worktree: Path) -> None:
    """Negative control: without the incomplete marker, a crash after create leaves a half fork recover keeps."""
    source = _failed_at_second(store, ws, worktree)
    assert _fork_in_process(store, ws, source.id, crash="created", variant="weak") == 137
    _wait_for_leases_to_free(store, ws)
    recover(store, ws)
    assert _fork_problems(store, ws, source.id) != []


@pytest.mark.stores("file", "postgres")
def test_forks_from_two_processes_are_both_listed(store: Store, ws: str, worktree: Path) -> None:
    """Two processes forking the same task at once both succeed, and the source lists both."""
    source = _failed_at_second(store, ws, worktree)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _FORKER, store.url, ws, source.id, "strong"], env=env, stdout=subprocess.PIPE
        )
        for _ in range(2)
    ]
    ids = {p.communicate(timeout=120)[0].decode().strip() for p in procs}
    assert all(p.returncode == 0 for p in procs) and len(ids) == 2
    assert {f["task_id"] for f in store.get(ws, source.id).metadata["forks"]} == ids


def _half_built_fork(store: Store, ws: str, source: Task) -> Task:
    """What a forker that died right after creating the fork leaves behind."""
    return store.create(ws, rewind.build_fork(source, 1, reason="died", workspace=ws, source_workspace=ws))


def test_recover_deletes_an_incomplete_fork_whose_builder_is_gone(store: Store, ws: str, worktree: Path) -> None:
    """An incomplete fork with a free lease is deleted by recover; the source is untouched."""
    source = _failed_at_second(store, ws, worktree)
    half = _half_built_fork(store, ws, source)
    recover(store, ws)
    assert [t.id for t in store.list(ws)] == [source.id], f"{half.id} should be gone"


def test_recover_keeps_an_incomplete_fork_being_built(store: Store, ws: str, worktree: Path) -> None:
    """While its builder holds its lease, an incomplete fork survives recover (and is shown as incomplete)."""
    source = _failed_at_second(store, ws, worktree)
    half = _half_built_fork(store, ws, source)
    lease = store.acquire_lease(ws, half.id, {"pid": os.getpid(), "host": "test"})  # type: ignore[attr-defined]
    try:
        recover(store, ws)
    finally:
        lease.release()
    kept = store.get(ws, half.id)
    assert rewind.is_incomplete_fork(kept)
    assert ("fork", "INCOMPLETE: its build did not finish; `atlas-tasks recover` removes it") in rewind.describe(kept)


def _spender(name: str, tokens: int) -> Step:
    # Reports `tokens` tokens through the usage file, as an agent wrapper would.
    report = f'{{"total_tokens": {tokens}, "cost_usd": 0.5}}'
    return Step(  # type: ignore[call-arg]
        name=name,
        type="validation",
        commands=[f"echo {name} >> counter; echo '{report}' > \"$ATLAS_USAGE_FILE\""],
        shell=True,
    )


def test_a_fork_starts_its_own_spend_and_run_but_keeps_the_limits(store: Store, ws: str, worktree: Path) -> None:
    """The source's spend moves to inherited_usage; its stop, deadline and warnings stay behind; its budget stays."""
    from atlas_tasks.lifecycle import budgets

    task = Task(description="spends", steps=[_spender("one", 600), _spender("two", 600), _cmd("three")])
    task.metadata["budget"] = {"tokens": {"soft": 500, "hard": 1000}}
    task.metadata["recovery"] = {"crash_resumes": 3, "limit": 7, "at_step": 1}
    source = store.create(ws, task)
    stopped = _run(store, ws, source.id)
    assert stopped.status == TaskStatus.INTERRUPTED, "the hard limit stops the run after step two"
    assert stopped.metadata["stop_reason"]["kind"] == "budget_exceeded"
    assert stopped.metadata["usage"]["total_tokens"] == 1200
    store.modify(ws, source.id, lambda t: t.metadata.update(deadline="2000-01-01T00:00:00+00:00"))

    child = rewind.fork(store, ws, source.id, 3)
    meta = child.metadata
    for gone in ("usage", "stop_reason", "budget_warnings", "deadline", "cancel_request"):
        assert gone not in meta, gone
    assert meta["inherited_usage"]["total_tokens"] == 1200 and meta["inherited_usage"]["steps_reported"] == 2
    assert meta["budget"] == {"tokens": {"soft": 500, "hard": 1000}}
    assert meta["recovery"] == {"crash_resumes": 0, "limit": 7}
    done = _run(store, ws, child.id)
    assert done.status == TaskStatus.COMPLETED, "the source's spend is not counted against the fork's budget"
    assert budgets.spend(done)["total_tokens"] == 0

    grandchild = rewind.fork(store, ws, child.id, 2)
    assert grandchild.metadata["inherited_usage"]["total_tokens"] == 1200, "a fork of a fork carries the whole line"
    rerun = _run(store, ws, grandchild.id)
    assert (rerun.status, rerun.metadata["usage"]["total_tokens"]) == (TaskStatus.COMPLETED, 600)
    assert rewind.fork(store, ws, grandchild.id, 1).metadata["inherited_usage"]["total_tokens"] == 1800
