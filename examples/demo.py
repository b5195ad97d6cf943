"""The atlas-tasks demo: a run killed with SIGKILL mid-step, seen as crashed, resumed, and completed.

Run it with ``make demo`` (or ``python examples/demo.py --home ./demo-home``). It recreates the demo home each time
and uses real processes: the CLI runs the task, the demo kills it with a real SIGKILL, the CLI resumes it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from atlas_tasks import ConflictError, FileStore

WS = "payments"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real `atlas-tasks` CLI (as a user would), echoing the command and its output."""
    print(f"$ atlas-tasks {' '.join(args)}", flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "atlas_tasks", "--home", str(home), *args], text=True, capture_output=True, check=False
    )
    print(done.stdout + done.stderr, end="", flush=True)
    if check and done.returncode != 0:
        raise SystemExit(f"demo failed: atlas-tasks {' '.join(args)} exited {done.returncode}")
    return done


def write_template(home: Path) -> Path:
    """A user template of command steps. Each command notes that it ran; 'implement' is slow on its first try."""
    executions = home / "executions.log"
    first_try = home / "implement-started"
    note = f"echo $ATLAS_STEP_NAME >> {executions}"
    steps = [
        {"name": "analyze", "type": "validation", "commands": [f"sh -c '{note}; sleep 0.3'"]},
        {
            "name": "implement",
            "type": "validation",
            "commands": [f"sh -c '{note}; if [ ! -e {first_try} ]; then touch {first_try}; sleep 60; fi'"],
        },
        {"name": "validate", "type": "validation", "commands": [f"sh -c '{note}; echo 42 tests passed'"]},
        {"name": "git_commit", "type": "git", "commands": [f"sh -c '{note}'"]},
    ]
    (home / "templates").mkdir(parents=True)
    (home / "templates" / "demo.json").write_text(json.dumps({"description": "four command steps", "steps": steps}))
    return first_try


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default="./demo-home")
    home = Path(parser.parse_args().home).absolute()
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    first_try = write_template(home)

    say(f"A file store in {home}, a workspace, and a task of four command steps")
    worktree = home / "worktree"  # steps run in the workspace's worktree, never wherever the demo was started
    worktree.mkdir()
    cli(home, "workspace", "create", WS, "--branch", "fix/rounding", "--worktree", str(worktree))
    created = cli(home, "new", WS, "--template", "demo", "--description", "Fix rounding in invoice totals", "--json")
    task_id = json.loads(created.stdout)["id"]

    say("Run it, and kill the runner with SIGKILL in the middle of step 2")
    print(f"$ atlas-tasks run {WS} {task_id} &", flush=True)
    runner = subprocess.Popen([sys.executable, "-m", "atlas_tasks", "--home", str(home), "run", WS, task_id])
    deadline = time.monotonic() + 60
    while not first_try.exists():
        if time.monotonic() > deadline or runner.poll() is not None:
            raise SystemExit("demo failed: the run never reached step 2")
        time.sleep(0.05)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    print(f"$ kill -9 {runner.pid}   # the runner is gone; no chance to save anything", flush=True)

    say("The task is seen as crashed: it says running, but no live runner holds it")
    cli(home, "list", WS)
    cli(home, "doctor", WS, check=False)

    say("Resume: step 1 was recorded as done and does not run again; step 2 is retried")
    cli(home, "run", WS, task_id)
    cli(home, "show", WS, task_id)
    print("commands that ran, in order:", ", ".join((home / "executions.log").read_text().split()))

    say("Nothing is lost when two writers race: a stale copy is refused")
    store = FileStore(home)
    stale = store.get(WS, task_id)
    store.modify(WS, task_id, lambda t: t.metadata.update(reviewer="alice"))
    stale.description = "an edit based on old state"
    try:
        store.update(WS, stale)
    except ConflictError as exc:
        print(f"ConflictError: {exc}")

    say("The log, the artifacts, and the files on disk (the Go ATLAS layout)")
    cli(home, "logs", WS, task_id)
    cli(home, "artifacts", WS, task_id)
    for path in sorted(home.joinpath("workspaces").rglob("*")):
        print("  " + str(path.relative_to(home)) + ("/" if path.is_dir() else ""))


if __name__ == "__main__":
    main()
