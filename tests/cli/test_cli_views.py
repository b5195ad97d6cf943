"""What the read views show about a task: one notion of "crashed", narrow terminals, filters, colour, escaping.

A crashed run here is a real one: the CLI's own runner, SIGKILLed in the middle of a step.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from atlas_tasks import FileStore, Step, Task
from atlas_tasks.cli import app
from atlas_tasks.cli._text import printable

ATLAS = [sys.executable, "-m", "atlas_tasks"]
ESCAPE = re.compile(r"\x1b\[")


def cli(home: Path, *args: str, **env: str) -> Result:
    """Run the CLI in-process (``env`` set for the call: COLUMNS, NO_COLOR, TTY_COMPATIBLE...)."""
    return CliRunner(env=env or None).invoke(app, ["--home", str(home), *args])


def terminal(home: Path, columns: int, *args: str, **env: str) -> str:
    """The CLI's stdout as a terminal of ``columns`` columns gets it (rich treats TTY_COMPATIBLE=1 as a tty)."""
    result = cli(home, *args, COLUMNS=str(columns), TTY_COMPATIBLE="1", **env)
    assert result.exit_code == 0, result.output
    return result.stdout


def plain(text: str) -> str:
    """Terminal output without its style escapes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@dataclass
class Runs:
    """A home with workspace ``w``: a run killed mid-step, a finished task and a pending one."""

    home: Path
    crashed: str
    completed: str
    pending: str


def _new(home: Path, template: str, description: str) -> str:
    made = cli(home, "new", "w", "-t", template, "-d", description, "--json")
    assert made.exit_code == 0, made.output
    return str(json.loads(made.stdout)["id"])


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the runner never reached the slow step"
        time.sleep(0.02)


def _sleeper(marker: Path) -> str:
    """A step command that records its pid in ``marker`` (atomically), then sleeps."""
    return f"sh -c 'echo $$ > {marker}.tmp && mv {marker}.tmp {marker}; exec sleep 120'"


def _stop_step(marker: Path) -> None:
    """Kill the sleeping step process a killed runner left behind (an orphan otherwise sleeps on)."""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(marker.read_text()), signal.SIGKILL)


def _start_slow_run(home: Path, marker: Path) -> tuple[str, subprocess.Popen[str]]:
    """Start the real CLI runner on a task whose second step sleeps; return once that step is in flight."""
    task_id = _new(home, "slow", "Refactor the cart totals so that rounding happens once")
    runner = subprocess.Popen([*ATLAS, "--home", str(home), "run", "w", task_id], text=True, stdout=subprocess.DEVNULL)
    _wait_for(marker, runner)
    return task_id, runner


@pytest.fixture
def runs(tmp_path: Path) -> Runs:
    """The three tasks; the crashed one's runner was SIGKILLed while its ``slow`` step ran."""
    home = tmp_path / "home"
    (tmp_path / "worktree").mkdir()  # steps run only in the workspace's worktree
    FileStore(home).create_workspace("w", worktree_path=str(tmp_path / "worktree"))
    (home / "templates").mkdir()
    marker = tmp_path / "slow-started"
    slow = [
        {"name": "first", "type": "validation", "commands": ["echo one"]},
        {"name": "slow", "type": "validation", "commands": [_sleeper(marker)]},
    ]
    quick = [
        {"name": "lint", "type": "validation", "commands": ["echo lint ok"]},
        {"name": "test", "type": "validation", "commands": ["echo tests ok"]},
    ]
    (home / "templates" / "slow.json").write_text(json.dumps({"steps": slow}))
    (home / "templates" / "quick.json").write_text(json.dumps({"steps": quick}))
    completed = _new(home, "quick", "Checks that pass")
    ran = subprocess.run([*ATLAS, "--home", str(home), "run", "w", completed], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    crashed, runner = _start_slow_run(home, marker)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    _stop_step(marker)
    pending = _new(home, "quick", "Not started yet")
    return Runs(home, crashed, completed, pending)


# -- one notion of "crashed" ----------------------------------------------------------------------------------------


def test_show_says_a_killed_run_crashed_and_how_to_resume_it(runs: Runs) -> None:
    """`show` of a run whose runner was killed says interrupted (crashed) with the resume command, not running."""
    out = cli(runs.home, "show", "w", runs.crashed).stdout
    status = next(line for line in out.splitlines() if line.startswith("status"))
    assert "interrupted (crashed)" in status and f"`atlas-tasks run w {runs.crashed}` resumes it" in status


def test_show_stops_the_timer_of_the_step_a_dead_runner_left(runs: Runs) -> None:
    """The step in flight when the runner died shows "stopped (runner died)", not a time still counting up."""
    out = cli(runs.home, "show", "w", runs.crashed).stdout
    slow = next(line for line in out.splitlines() if " slow " in line)
    assert "stopped (runner died)" in slow and "so far" not in out


def test_show_json_flags_a_crashed_run(runs: Runs) -> None:
    """`show --json` of a killed run says crashed, with no runner, and keeps its stored status in the task."""
    document = json.loads(cli(runs.home, "show", "w", runs.crashed, "--json").stdout)
    assert document["crashed"] is True and document["runner"] is None
    assert document["display_status"] == "interrupted (crashed)" and document["task"]["status"] == "running"


def test_show_json_names_the_live_runner(tmp_path: Path) -> None:
    """While the runner lives, `show --json` is not crashed and names the runner's pid."""
    home = tmp_path / "home"
    (tmp_path / "worktree").mkdir()  # steps run only in the workspace's worktree
    FileStore(home).create_workspace("w", worktree_path=str(tmp_path / "worktree"))
    (home / "templates").mkdir()
    marker = tmp_path / "started"
    steps = [{"name": "slow", "type": "validation", "commands": [_sleeper(marker)]}]
    (home / "templates" / "slow.json").write_text(json.dumps({"steps": steps}))
    task_id, runner = _start_slow_run(home, marker)
    try:
        document = json.loads(cli(home, "show", "w", task_id, "--json").stdout)
        listed = json.loads(cli(home, "list", "w", "--json").stdout)
    finally:
        runner.kill()
        runner.wait()
        _stop_step(marker)
    assert document["crashed"] is False and document["runner"]["pid"] == runner.pid
    assert listed["runners"] == [{"workspace": "w", "task_id": task_id, "holder": document["runner"]}]


def test_list_status_interrupted_includes_a_crashed_run(runs: Runs) -> None:
    """`list -s interrupted` shows the crashed run (it is an interrupted run nobody recorded yet)."""
    result = cli(runs.home, "list", "w", "-s", "interrupted", "--json")
    assert [t["id"] for t in json.loads(result.stdout)["tasks"]] == [runs.crashed]


def test_list_status_crashed_is_accepted(runs: Runs) -> None:
    """`list -s crashed` keeps exactly the runs whose runner died."""
    result = cli(runs.home, "list", "w", "-s", "crashed", "--json")
    assert result.exit_code == 0, result.output
    assert [t["id"] for t in json.loads(result.stdout)["tasks"]] == [runs.crashed]


def test_list_status_running_leaves_a_crashed_run_out(runs: Runs) -> None:
    """`list -s running` does not show a run whose runner died: nothing is running."""
    result = cli(runs.home, "list", "w", "-s", "running")
    assert result.stdout == "" and "no tasks with status running" in result.stderr


def test_workspace_show_prints_the_tasks_real_statuses(runs: Runs) -> None:
    """`workspace show` reads each task's status (crashed as crashed), not the refs of workspace.json."""
    refs = json.loads(cli(runs.home, "workspace", "show", "w", "--json").stdout)["tasks"]
    assert refs == []  # by default a create adds no ref: workspace.json could not tell these statuses
    lines = cli(runs.home, "workspace", "show", "w").stdout.splitlines()
    shown = {line.split()[0]: " ".join(line.split()[1:]) for line in lines if line.strip().startswith("task-")}
    assert shown == {runs.crashed: "interrupted (crashed)", runs.completed: "completed", runs.pending: "pending"}


# -- narrow terminals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize("every", [False, True])
def test_list_keeps_ids_and_statuses_whole_on_a_terminal(runs: Runs, columns: int, every: bool) -> None:
    """At 80 and 100 columns `list` and `list -a` show every id and status in full, within the width."""
    out = plain(terminal(runs.home, columns, "list", *(["-a"] if every else ["w"])))
    for task_id in (runs.crashed, runs.completed, runs.pending):
        assert task_id in out
    assert "interrupted (crashed)" in out and "completed" in out
    assert all(len(line) <= columns for line in out.splitlines())


@pytest.mark.parametrize("columns", [80, 100])
def test_list_gives_the_description_the_room_left(tmp_path: Path, columns: int) -> None:
    """With a long workspace name and uuid id the id stays whole and the description gets what is left (at 80
    columns that is too little, so it goes)."""
    store = FileStore(tmp_path / "home")
    store.create_workspace("payments-eu-west")
    task = store.create(
        "payments-eu-west",
        Task(id="2f6d8a3e-1b7c-4c1e-9a55-0d3f1e2b7c90", template="bugfix", description="Rounding " * 20),
    )
    out = plain(terminal(store.home, columns, "list", "-a"))
    row = next(line for line in out.splitlines() if task.id in line)
    assert row.startswith("payments-eu-west") and "pending" in row and len(row) <= columns
    if columns == 100:
        assert "Rounding Rounding" in row and row.rstrip().endswith("…")


def test_list_columns_drop_times_and_template_before_the_description() -> None:
    """When the description would get too little room, the times and template go first, the id and status never."""
    from atlas_tasks.cli._render import list_columns

    widths = {"ID": 36, "STATUS": 21, "TEMPLATE": 8, "STEP": 12, "CREATED": 7, "UPDATED": 7, "DESCRIPTION": 60}
    columns, description = list_columns(widths, 80)
    assert columns[:2] == ["ID", "STATUS"] and "CREATED" not in columns and "TEMPLATE" not in columns
    assert "DESCRIPTION" not in columns or description >= 16
    assert list_columns(widths, 40)[0] == ["ID", "STATUS"]
    assert list_columns(widths, None) == (list(widths), 60)


def test_list_columns_bring_back_what_fits_once_the_description_is_gone() -> None:
    """When even the freed room is too little for a description, a dropped time column that fits comes back."""
    from atlas_tasks.cli._render import list_columns

    widths = {"WORKSPACE": 9, "ID": 20, "STATUS": 21, "TEMPLATE": 6, "STEP": 12, "CREATED": 7, "UPDATED": 7}
    columns, _ = list_columns({**widths, "DESCRIPTION": 30}, 80)
    assert columns == ["WORKSPACE", "ID", "STATUS", "STEP", "UPDATED"]


# -- limit and search -------------------------------------------------------------------------------------------------


def test_list_limit_keeps_the_newest(runs: Runs) -> None:
    """`list --limit 2` shows the two newest tasks."""
    document = json.loads(cli(runs.home, "list", "w", "--limit", "2", "--json").stdout)
    assert [t["id"] for t in document["tasks"]] == [runs.pending, runs.crashed]


def test_list_limit_applies_after_the_filters(runs: Runs) -> None:
    """`--limit` counts the tasks that pass the status filter, not the newest of all."""
    document = json.loads(cli(runs.home, "list", "w", "-s", "completed", "-n", "1", "--json").stdout)
    assert [t["id"] for t in document["tasks"]] == [runs.completed]


def test_list_search_matches_id_description_and_template(runs: Runs) -> None:
    """`-q TEXT` keeps the tasks whose description, template or id contains TEXT, in any case."""
    assert [t["id"] for t in json.loads(cli(runs.home, "list", "-q", "ROUNDING", "--json").stdout)["tasks"]] == [
        runs.crashed
    ]
    by_template = json.loads(cli(runs.home, "list", "w", "--search", "quick", "--json").stdout)["tasks"]
    assert [t["id"] for t in by_template] == [runs.pending, runs.completed]
    by_id = json.loads(cli(runs.home, "list", "w", "-q", runs.completed.upper(), "--json").stdout)["tasks"]
    assert runs.completed in [t["id"] for t in by_id] and all(runs.completed in t["id"] for t in by_id)


def test_list_search_without_a_match_says_so(runs: Runs) -> None:
    """A search that matches nothing says what was searched for."""
    result = cli(runs.home, "list", "w", "-q", "nothing like this")
    assert result.stdout == "" and "no tasks with text 'nothing like this' in workspace w" in result.stderr


# -- artifacts name their step ----------------------------------------------------------------------------------------


def test_artifacts_say_which_step_produced_them(runs: Runs) -> None:
    """Each step's versioned artifact is listed with that step's name (`artifacts`, its --json, and `show`)."""
    rows = [line.split() for line in cli(runs.home, "artifacts", "w", runs.completed).stdout.splitlines()]
    assert rows[0] == ["NAME", "SIZE", "STEP"]
    assert {(row[0], row[-1]) for row in rows[1:]} == {("validation.1.json", "lint"), ("validation.2.json", "test")}
    document = json.loads(cli(runs.home, "artifacts", "w", runs.completed, "--json").stdout)
    assert [(a["name"], a["step"]) for a in document["artifacts"]] == [
        ("validation.1.json", "lint"),
        ("validation.2.json", "test"),
    ]
    shown = json.loads(cli(runs.home, "show", "w", runs.completed, "--json").stdout)
    assert shown["artifacts"] == document["artifacts"]


# -- NO_COLOR ---------------------------------------------------------------------------------------------------------


def test_terminal_output_is_styled_without_no_color(runs: Runs) -> None:
    """On a terminal, without NO_COLOR, `list` is styled (the check below can see escapes)."""
    assert ESCAPE.search(terminal(runs.home, 120, "list", "w"))


@pytest.mark.parametrize("command", [("list", "w"), ("show", "w", "{crashed}"), ("logs", "w", "{crashed}")])
def test_no_color_means_no_escapes_at_all_on_a_terminal(runs: Runs, command: tuple[str, ...]) -> None:
    """With NO_COLOR set, a terminal gets no colour, bold or dim escape from `list`, `show` or `logs`."""
    args = [arg.format(crashed=runs.crashed) for arg in command]
    out = terminal(runs.home, 120, *args, NO_COLOR="1")
    assert out and not ESCAPE.search(out)


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a real pseudo-terminal")
def test_no_color_under_a_real_pseudo_terminal(runs: Runs) -> None:
    """`NO_COLOR=1 atlas-tasks list` run in a real pty (script) writes no escape, and without it it does."""
    command = " ".join([*ATLAS, "--home", str(runs.home), "list", "w"])

    def in_pty(**env: str) -> str:
        environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
        done = subprocess.run(
            ["script", "-qec", command, "/dev/null"],
            capture_output=True,
            text=True,
            env={**environment, "COLUMNS": "120", "TERM": "xterm", **env},
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert ESCAPE.search(in_pty())
    quiet = in_pty(NO_COLOR="1")
    assert runs.crashed in quiet and not ESCAPE.search(quiet)


# -- escaping ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "char",
    ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u2028", "\u2029"],
)
def test_printable_escapes_bidi_controls_and_line_separators(char: str) -> None:
    """Bidi embedding/override/isolate controls and U+2028/U+2029 are shown as visible \\uXXXX escapes."""
    assert printable(f"a{char}b") == f"a\\u{ord(char):04x}b"


def test_show_escapes_a_bidi_override_in_a_description(tmp_path: Path) -> None:
    """A right-to-left override in stored text reaches the terminal as `\\u202e`, never as the control itself."""
    store = FileStore(tmp_path / "home")
    store.create_workspace("w")
    task = store.create("w", Task(description="safe \u202e// evil\u2028forged", steps=[Step(name="x\u2066y")]))
    out = cli(store.home, "show", "w", task.id).stdout + cli(store.home, "list", "w").stdout
    assert not {"\u202e", "\u2066", "\u2028"} & set(out)
    assert "safe \\u202e// evil\\u2028forged" in out and "x\\u2066y" in out
