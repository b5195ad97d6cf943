"""The atlas-tasks demo: a run killed with SIGKILL mid-step, seen as crashed, resumed, and completed.

Run it with ``make demo`` (or ``python examples/demo.py --home ./demo-home``). It recreates the demo home each time
and uses real processes: the CLI runs the task, the demo kills it with a real SIGKILL, the CLI resumes it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
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


def shown(home: Path) -> str:
    """``home`` as a reader should type it: ``./demo-home`` below the current directory, else the absolute path."""
    try:
        return "./" + str(home.relative_to(Path.cwd()))
    except ValueError:
        return str(home)


def command_line(home: Path, *args: str) -> str:
    """The command exactly as a reader can copy and run it: quoted, with the --home the demo really used."""
    return shlex.join(["atlas-tasks", "--home", shown(home), *args])


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real `atlas-tasks` CLI (as a user would), echoing the command and its output."""
    print(f"$ {command_line(home, *args)}", flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "atlas_tasks", "--home", str(home), *args], text=True, capture_output=True, check=False
    )
    print(done.stdout + done.stderr, end="", flush=True)
    if check and done.returncode != 0:
        raise SystemExit(f"demo failed: {command_line(home, *args)} exited {done.returncode}")
    return done


def how_to_run_the_cli() -> str:
    """Where the `atlas-tasks` of the echoed commands is, for a reader who wants to type them."""
    script = Path(sys.executable).with_name("atlas-tasks")
    if script.exists():
        bin_dir = shown(script.parent.absolute())
        return f"`atlas-tasks` below is {bin_dir}/atlas-tasks (`source {bin_dir}/activate` puts it on PATH)"
    return "`atlas-tasks` below is the package's CLI (`python -m atlas_tasks` runs it too)"


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

    print(how_to_run_the_cli(), flush=True)
    print(f"the task's template: {shown(home)}/templates/demo.json (four harmless shell steps, writing only there)")
    say(f"A file store in {shown(home)}, a workspace, and a task of four command steps")
    worktree = home / "worktree"  # steps run in the workspace's worktree, never wherever the demo was started
    worktree.mkdir()
    cli(home, "workspace", "create", WS, "--branch", "fix/rounding", "--worktree", str(worktree))
    created = cli(home, "new", WS, "--template", "demo", "--description", "Fix rounding in invoice totals", "--json")
    task_id = json.loads(created.stdout)["id"]

    say("Run it, and kill the runner with SIGKILL in the middle of step 2")
    print(f"$ {command_line(home, 'run', WS, task_id)} &", flush=True)
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
    print(f"files under {shown(home)}/workspaces:", flush=True)
    for path in sorted(home.joinpath("workspaces").rglob("*")):
        print("  " + str(path.relative_to(home)) + ("/" if path.is_dir() else ""))

    say("Try it yourself")
    print(how_to_run_the_cli())
    serve = "make serve" if shown(home) == "./demo-home" else command_line(home, "serve")
    for line, why in [
        (command_line(home, "show", WS, task_id), "the task: steps, attempts, transitions, artifacts"),
        (command_line(home, "list", WS), "its workspace's tasks"),
        (command_line(home, "templates", "show", "demo"), f"the template the demo wrote, {shown(home)}/templates/"),
        (command_line(home, "templates", "show", "bugfix"), "a built-in template: what it runs (git, gh)"),
        (serve, "the live dashboard on this home: http://127.0.0.1:8700/"),
    ]:
        print(f"  {line}\n      # {why}")


if __name__ == "__main__":
    main()
