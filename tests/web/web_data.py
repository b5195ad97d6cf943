"""Data builders shared by the dashboard tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

from datetime import UTC, datetime

from atlas_tasks import FileStore, Step, Task
from atlas_tasks.web._live import LiveSettings

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<script>alert('xss')</script>"
HOSTILE_IMG = '<img src=x onerror="alert(1)">'
BINARY = b"\x00\x01 raw \r\n bytes \xff\xfe\n"
BASE_URL = "http://127.0.0.1"
#: Live streams that poll quickly and end within seconds, so no test can hang on one.
FAST = LiveSettings(poll=0.05, lifetime=10.0, keepalive=5.0)


def finished_task(description: str = "Fix rounding in invoice totals") -> Task:
    return Task(
        template="bugfix",
        description=description,
        steps=[
            Step(name="analyze", type="ai"),
            Step(name="validate", type="validation", commands=["make test"]),
            Step(name="review", type="human"),
        ],
        created_at=T0,
    )


def awaiting(store: FileStore, ws: str = "ws", *, steps_after: int = 0) -> str:
    """A task stopped at a human step (with ``steps_after`` command steps still to run); returns its id."""
    steps = [Step(name="review", type="human", status="awaiting_approval", attempts=1, started_at=T0)]
    steps += [Step(name=f"after{i}", type="validation", commands=["true"]) for i in range(steps_after)]
    task = store.create(ws, Task(template="feature", description="Needs a look", steps=steps, created_at=T0))

    def stop(t: Task) -> None:
        t.transition("running", "run started")
        t.transition("validating", "review")
        t.transition("awaiting_approval", "step 'review' waits for approval")

    store.modify(ws, task.id, stop)
    return task.id
