"""An asyncio orchestrator: many tasks run at once in one event loop, and a kill -9 loses nothing.

    python examples/async_orchestrator.py --home ./orchestra --tasks 8 --steps 3

The first start creates the workspace and ``--tasks`` tasks of ``--steps`` command steps each (each step appends a
line "<task> <step>" to ``marks.log`` in the worktree, then sleeps ``--step-seconds``). Every start then records
the runs a crash left behind (``aio.recover``) and runs every unfinished task, all at once, with
``aio.run_task``. Kill it with SIGKILL at any moment and start it again: it resumes each task at its first step not
recorded as done (the step that was in flight runs again; a step recorded as done never does).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from pathlib import Path

from atlas_tasks import Step, Task, aio
from atlas_tasks.aio import AsyncStore
from atlas_tasks.errors import AtlasTasksError
from atlas_tasks.models import TaskStatus
from atlas_tasks.transitions import is_terminal

WS = "orchestra"


async def prepare(astore: AsyncStore, worktree: Path, tasks: int, steps: int, seconds: float) -> None:
    """Create the workspace and its tasks on the first start (a start after a crash finds them there)."""
    worktree.mkdir(parents=True, exist_ok=True)
    await astore.create_workspace(WS, worktree_path=str(worktree), exist_ok=True)
    have = len(await astore.list(WS))
    marks = shlex.quote(str(worktree / "marks.log"))
    for n in range(have, tasks):
        command = f'echo "$ATLAS_TASK_ID $ATLAS_STEP_NAME" >> {marks}; sleep {seconds}'
        # "shell": true is a step field the Go format carries (the model keeps unknown fields as they are).
        plan = [
            Step.model_validate({"name": f"step-{i}", "type": "validation", "commands": [command], "shell": True})
            for i in range(steps)
        ]
        await astore.create(WS, Task(id=f"task-20260101-{n:06d}", description=f"job {n}", steps=plan))


async def run_one(astore: AsyncStore, task_id: str) -> str:
    try:
        done = await aio.run_task(astore, WS, task_id)
    except AtlasTasksError as exc:
        return f"{task_id}: {exc}"
    return f"{task_id}: {done.status}"


async def main(home: Path, tasks: int, steps: int, seconds: float) -> int:
    async with aio.open_async_store(f"file://{home.absolute()}") as astore:
        await prepare(astore, home / "worktree", tasks, steps, seconds)
        recovered = await aio.recover(astore, WS)
        if recovered:
            print(f"recovered {len(recovered)} crashed run(s): {', '.join(t.id for t in recovered)}", flush=True)
        todo = [t.id for t in await astore.list(WS) if not is_terminal(t.status)]
        print(f"running {len(todo)} task(s) at once", flush=True)
        for line in await asyncio.gather(*(run_one(astore, task_id) for task_id in todo)):
            print(line, flush=True)
        left = [t.id for t in await astore.list(WS) if t.status != TaskStatus.COMPLETED]
    print("all tasks completed" if not left else f"not completed: {', '.join(left)}", flush=True)
    return 0 if not left else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--home", type=Path, default=Path("orchestra-home"))
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--step-seconds", type=float, default=0.5)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.home, args.tasks, args.steps, args.step_seconds)))
