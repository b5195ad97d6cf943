"""`make demo` shows commands a reader can copy: quoted, with the --home it used, and says what to try next."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo's output, run as `make demo` runs it: `--home ./demo-home` from the directory it is started in."""
    cwd = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [sys.executable, str(DEMO), "--home", "./demo-home"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return cwd, done.stdout


def echoed(output: str) -> list[list[str]]:
    """Every echoed `$ atlas-tasks ...` command, split as a shell would split it (a trailing `&` dropped)."""
    lines = [line[2:] for line in output.splitlines() if line.startswith("$ atlas-tasks ")]
    return [shlex.split(line.removesuffix(" &")) for line in lines]


def test_every_echoed_command_names_the_home_it_used(demo: tuple[Path, str]) -> None:
    """Each echoed command carries `--home ./demo-home`, and the description stays one quoted argument."""
    _, output = demo
    commands = echoed(output)
    assert len(commands) >= 8
    assert all(argv[:3] == ["atlas-tasks", "--home", "./demo-home"] for argv in commands), commands
    (new,) = [argv for argv in commands if argv[3] == "new"]
    assert new[new.index("--description") + 1] == "Fix rounding in invoice totals"


def test_an_echoed_command_runs_as_shown(demo: tuple[Path, str]) -> None:
    """The echoed `list` command, run as written from the same directory, lists the demo's task."""
    cwd, output = demo
    (listing,) = [argv for argv in echoed(output) if argv[3] == "list"]
    done = subprocess.run(
        [sys.executable, "-m", "atlas_tasks", *listing[1:]], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "completed" in done.stdout, done.stdout + done.stderr


def test_the_demo_ends_with_what_to_try_next(demo: tuple[Path, str]) -> None:
    """After the demo: how to reach the CLI, the template it wrote, and `make serve`."""
    _, output = demo
    tail = output.split("== Try it yourself", 1)[1]
    assert "atlas-tasks` below is" in tail
    assert "atlas-tasks --home ./demo-home templates show demo" in tail
    assert "./demo-home/templates/" in tail
    assert "make serve" in tail
