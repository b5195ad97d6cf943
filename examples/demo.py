"""The atlas-tasks demo: one bugfix task checkpointed step by step on the file store, then shown with the CLI.

Run it with ``make demo`` (or ``python examples/demo.py --home ./demo-home``). It recreates the demo home each time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from atlas_tasks import ConflictError, FileStore, Step, StepResult, Task, TaskStatus

STEPS = [
    Step(name="analyze", type="ai", description="Find the cause of the rounding bug"),
    Step(name="implement", type="ai", description="Fix it"),
    Step(name="validate", type="validation", commands=["make lint", "make test"]),
    Step(name="git_commit", type="git", description="Commit the fix"),
    Step(name="review", type="human", description="Approve the change"),
]


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}")


def run_step(store: FileStore, ws: str, task: Task, output: str, *, status: str = "success") -> Task:
    """Execute one (simulated) step and checkpoint it: the state is durable before the next step starts."""
    index = task.current_step
    step = task.steps[index]
    started = datetime.now(UTC)
    step.status, step.started_at, step.attempts = "running", started, step.attempts + 1
    store.append_log(ws, task.id, {"level": "info", "event": "step started", "step_name": step.name})
    finished = datetime.now(UTC)
    step.status, step.completed_at = status, finished
    task.step_results.append(
        StepResult(
            step_index=index,
            step_name=step.name,
            status=status,
            started_at=started,
            completed_at=finished,
            duration_ms=int((finished - started).total_seconds() * 1000),
            output=output,
        )
    )
    if status == "success":
        task.current_step += 1
    store.append_log(ws, task.id, {"level": "info", "event": f"step {status}", "step_name": step.name})
    return store.update(ws, task)  # the per-step checkpoint (story AC 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default="./demo-home")
    home = Path(parser.parse_args().home).absolute()
    if home.exists():
        shutil.rmtree(home)
    store = FileStore(home)

    say(f"A file store in {home}")
    store.create_workspace("payments", path="/src/shop", branch="fix/rounding")
    task = store.create(ws := "payments", Task(description="Fix rounding in <InvoiceTotal>", template="bugfix",
                                               steps=STEPS))
    print(f"created {task.id} (revision {task.revision}, schema {task.schema_version})")
    task.transition(TaskStatus.RUNNING, "task started")
    task = store.update(ws, task)

    say("Steps run, each checkpointed with fsync before the next one starts")
    task = run_step(store, ws, task, "cause: float arithmetic on cents")
    task = run_step(store, ws, task, "switched to Decimal")
    failed = json.dumps({"success": False, "lint_results": [{"command": "make lint", "exit_code": 1}]}, indent=2)
    name = store.save_versioned_artifact(ws, task.id, "validation.json", failed)
    print(f"validation attempt 1 -> {name}")
    task.transition(TaskStatus.VALIDATING, "running checks")
    task.transition(TaskStatus.VALIDATION_FAILED, "lint failed")
    task = run_step(store, ws, task, "lint failed", status="failed")
    task.transition(TaskStatus.RUNNING, "retry after fixing lint")
    passed = json.dumps({"success": True, "lint_results": [{"command": "make lint", "exit_code": 0}]}, indent=2)
    name = store.save_versioned_artifact(ws, task.id, "validation.json", passed)
    print(f"validation attempt 2 -> {name} (attempt 1 is kept)")
    task = run_step(store, ws, task, "all checks passed")
    store.save_artifact(ws, task.id, "commit-message.md", "fix(payments): round invoice totals with Decimal\n")
    task = run_step(store, ws, task, "committed 3f2a9c1")
    task.transition(TaskStatus.VALIDATING, "ready for review")
    task.transition(TaskStatus.AWAITING_APPROVAL, "waiting for a human")
    task = store.update(ws, task)

    say("A stale copy cannot overwrite newer state (no lost updates)")
    stale = store.get(ws, task.id)
    store.modify(ws, task.id, lambda t: t.metadata.update(reviewer="alice"))
    stale.description = "an edit based on old state"
    try:
        store.update(ws, stale)
    except ConflictError as exc:
        print(f"ConflictError: {exc}")

    say("The CLI reads the same store")
    cli = [sys.executable, "-m", "atlas_tasks", "--home", str(home)]
    for args in (["list", ws], ["show", ws, task.id], ["logs", ws, task.id], ["artifacts", ws, task.id]):
        print(f"$ atlas-tasks {' '.join(args)}", flush=True)
        subprocess.run([*cli, *args], check=True)

    say("On disk (the Go ATLAS layout)")
    for path in sorted(home.joinpath("workspaces").rglob("*")):
        print("  " + str(path.relative_to(home)) + ("/" if path.is_dir() else ""))


if __name__ == "__main__":
    main()
