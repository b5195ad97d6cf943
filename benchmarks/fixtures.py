"""Realistic payloads and big workspaces for the benchmarks.

The task is an agent run half way through the Go ATLAS's bugfix template: 7 steps, 3 results with output, two
transitions and some metadata, padded to about ``size`` bytes of task.json. Every benchmark writes the same task.

Big workspaces (10,000 and 100,000 tasks) are seeded by writing task directories directly (one task is created
through ``FileStore.create`` and its task.json bytes are copied with a new id and times), the way a home written by
the Go ATLAS or restored from a backup looks. Seeding does not fsync: it is a fixture, not a measurement. If the
store keeps a listing index, it has to notice tasks written behind its back (the Go ATLAS writes task.json without
knowing about any index); if it offers ``FileStore.reindex(workspace)``, seeding calls it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from atlas_tasks import FileStore, Step, StepResult, Task, TaskStatus

BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
STEP_NAMES = (
    ("analyze", "ai"),
    ("implement", "ai"),
    ("validate", "validation"),
    ("commit", "git"),
    ("pr", "git"),
    ("ci", "ci"),
    ("review", "human"),
)


def sample_task(size: int = 10_000) -> Task:
    """A mid-run task whose JSON is about ``size`` bytes (the padding is in the last result's output)."""
    t0 = BASE_TIME
    steps = [
        Step(
            name=name,
            type=kind,
            description=f"{name} the change",
            prompt="Fix the rounding of invoice totals; keep the public API." if kind == "ai" else "",
            commands=["make test", "make lint"] if kind == "validation" else [],
            timeout_seconds=900,
            status="success" if i < 3 else ("running" if i == 3 else "pending"),
            started_at=t0 + timedelta(minutes=i) if i <= 3 else None,
            completed_at=t0 + timedelta(minutes=i, seconds=40) if i < 3 else None,
            attempts=1 if i <= 3 else 0,
        )
        for i, (name, kind) in enumerate(STEP_NAMES)
    ]
    results = [
        StepResult(
            step_index=i,
            step_name=STEP_NAMES[i][0],
            status="success",
            started_at=t0 + timedelta(minutes=i),
            completed_at=t0 + timedelta(minutes=i, seconds=40),
            duration_ms=40_000,
            output="",
            files_changed=["billing/invoice.py", "billing/tests/test_invoice.py"],
            session_id=f"sess-{i:04d}",
            num_turns=7,
            metadata={"tokens_in": 12_000 + i, "tokens_out": 3_400 + i, "cost_usd": 0.42},
        )
        for i in range(3)
    ]
    task = Task(
        description="Fix rounding in invoice totals (half-even, per line, then sum)",
        template="bugfix",
        steps=steps,
        step_results=results,
        current_step=3,
        metadata={"repo": "shop", "branch": "fix/rounding", "issue": 1234, "labels": ["bug", "billing"]},
        running_processes=[4242],
    )
    task.transition(TaskStatus.RUNNING, "started", now=t0)
    # Pad to the requested size with readable output (a test log), split over the three results.
    encoded = len(task.model_dump_json(indent=2))
    missing = max(0, size - encoded)
    line = "PASSED billing/tests/test_invoice.py::test_rounding_case_0001\n"
    text = (line * (missing // len(line) + 1))[:missing]
    third = len(text) // 3
    for i, result in enumerate(task.step_results):
        result.output = text[i * third : (i + 1) * third] if i < 2 else text[2 * third :]
    return task


def seed_task() -> Task:
    """A small task (~1 KB) to fill a 100,000-task workspace quickly: what a create costs must not depend on it."""
    task = Task(description="seeded task", template="bugfix", metadata={"repo": "shop"})
    task.transition(TaskStatus.RUNNING, "started", now=BASE_TIME)
    return task


def small_task() -> Task:
    """A ~2 KB task, for the 100,000-task memory row (the bound does not depend on the size)."""
    return sample_task(2_000)


def task_id_at(i: int) -> str:
    return f"task-{(BASE_TIME + timedelta(seconds=i)):%Y%m%d-%H%M%S}"


def time_text_at(i: int) -> str:
    return f"{(BASE_TIME + timedelta(seconds=i, microseconds=123_456)):%Y-%m-%dT%H:%M:%S.%f}Z"


def _template_bytes(store: FileStore, workspace: str, task: Task) -> tuple[bytes, str, str]:
    """Create one task through the store; return its task.json bytes, its id and its created_at text."""
    created = store.create(workspace, task)
    raw = (store.task_path(workspace, created.id) / "task.json").read_bytes()
    doc = json.loads(raw)
    return raw, created.id, doc["created_at"]


def finished_task(size: int = 2_000) -> Task:
    """The sample task run to the end: every step succeeded, status completed (most tasks of an old workspace)."""
    task = sample_task(size)
    for step in task.steps:
        step.status = "success"
        step.started_at = step.started_at or BASE_TIME
        step.completed_at = step.completed_at or BASE_TIME + timedelta(minutes=10)
        step.attempts = max(step.attempts, 1)
    task.current_step = len(task.steps)
    task.running_processes = []
    done = BASE_TIME + timedelta(minutes=10)
    task.transition(TaskStatus.VALIDATING, "validating", now=done)
    task.transition(TaskStatus.AWAITING_APPROVAL, "checks passed", now=done)
    task.transition(TaskStatus.COMPLETED, "approved", now=done)
    return task


def seed_workspace(
    store: FileStore, workspace: str, count: int, task: Task, *, finished: Task | None = None, active_every: int = 1
) -> list[str]:
    """Create ``workspace`` holding ``count`` tasks (newest = highest index); return their ids, oldest first.

    Every task.json is the store's own encoding of ``task`` with its id and times changed: task i is created at
    BASE_TIME + i seconds and has id ``task-YYYYMMDD-HHMMSS`` of that time. workspace.json lists them all, as
    ``create`` keeps it. With ``finished``, only every ``active_every``-th task (i % active_every == 0) is a copy
    of ``task``; the others are copies of ``finished`` (a workspace that has been in use for a long time).
    """
    store.create_workspace(workspace, exist_ok=True)
    templates = [(_template_bytes(store, workspace, task), str(task.status))]
    if finished is not None:
        templates.append((_template_bytes(store, workspace, finished), str(finished.status)))
    tasks_dir = store.workspace_path(workspace) / "tasks"
    # Remove the template tasks (their ids are "now", newer than every seeded one); the seeded ones take their place.
    sources: list[tuple[bytes, bytes, bytes, str]] = []
    for (template, template_id, template_time), status in templates:
        store.delete(workspace, template_id)
        sources.append((template, template_id.encode(), template_time.encode(), status))
    ids: list[str] = []
    refs: list[dict[str, Any]] = []
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for i in range(count):
        task_id = task_id_at(i)
        when = time_text_at(i)
        template, old_id, old_time, status = sources[0 if finished is None or i % active_every == 0 else 1]
        data = template.replace(old_id, task_id.encode()).replace(old_time, when.encode())
        directory = tasks_dir / task_id
        os.mkdir(directory, 0o750)
        fd = os.open(directory / "task.json", flags, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        ids.append(task_id)
        refs.append({"id": task_id, "status": status, "started_at": when})
    ws_file = store.workspace_path(workspace) / "workspace.json"
    doc = json.loads(ws_file.read_bytes())
    doc["tasks"] = refs
    ws_file.write_bytes(json.dumps(doc, indent=2).encode())
    reindex = getattr(store, "reindex", None)
    if callable(reindex):
        reindex(workspace)
    return ids


def seed_artifacts(directory: Path, count: int, *, size: int = 512) -> None:
    """``count`` plain artifact files (``report-0001.txt`` ...) written directly (a fixture: no fsync)."""
    directory.mkdir(parents=True, exist_ok=True)
    payload = b"x" * size
    for i in range(count):
        (directory / f"report-{i:04d}.txt").write_bytes(payload)


def payload_dict(task: Task) -> dict[str, Any]:
    """The same task as a plain JSON-able dict: what peers are given to store."""
    return task.model_dump(mode="json")
