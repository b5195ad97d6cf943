"""The installed ``atlas-tasks`` entry point and ``python -m atlas_tasks``, run as real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from atlas_tasks import FileStore, Task

# Loading any of these makes start-up slow; help and `--version` must not need them.
HEAVY = ("rich", "atlas_tasks.models", "atlas_tasks.backends", "atlas_tasks._codec")
# typer >= 0.2x validates every non-flag parameter through a pydantic TypeAdapter, so a subcommand's help (which
# processes the global `--home`) loads pydantic; only the top level's help and `--version` can go without it.
HEAVY_AT_TOP = (*HEAVY, "pydantic")


def entry_point() -> str:
    """The installed console script: next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "atlas-tasks"
    found = str(beside) if beside.exists() else shutil.which("atlas-tasks")
    if found is None:
        pytest.fail("the atlas-tasks console script is not installed (pip install -e .)")
    return found


def run(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the installed entry point with a clean environment (no ATLAS_HOME, no colour forcing)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ATLAS_HOME", "FORCE_COLOR", "COLUMNS")}
    prefix = ["--home", str(home)] if home else []
    return subprocess.run([entry_point(), *prefix, *args], capture_output=True, env=env, timeout=60, check=False)


def imported_modules(*args: str, exit_code: int = 0) -> set[str]:
    """The modules ``python -X importtime -m atlas_tasks ARGS`` imports (checking its exit code)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "atlas_tasks", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == exit_code, result.stderr
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A store with workspace ``ws`` holding task ``task-1`` with one log line and one artifact."""
    store = FileStore(tmp_path / "home")
    store.create_workspace("ws")
    store.create("ws", Task(id="task-1", template="bugfix", description="Fix it"))
    store.append_log("ws", "task-1", {"level": "info", "event": "hello"})
    store.save_artifact("ws", "task-1", "out.bin", b"\x00\xff\r\n")
    return store.home


def test_entry_point_lists_tasks(home: Path) -> None:
    """The installed `atlas-tasks` script lists a workspace's tasks and exits 0 with nothing on stderr."""
    result = run("list", "ws", home=home)
    assert result.returncode == 0 and result.stderr == b""
    assert result.stdout.decode().splitlines()[1].split()[:3] == ["task-1", "pending", "bugfix"]


def test_entry_point_json_and_raw_bytes(home: Path) -> None:
    """Through a real pipe, --json parses and `artifacts --get` delivers the exact bytes."""
    shown = json.loads(run("show", "ws", "task-1", "--json", home=home).stdout)
    assert shown["task"]["id"] == "task-1" and shown["log"]["lines"] == 1
    assert run("artifacts", "ws", "task-1", "--get", "out.bin", home=home).stdout == b"\x00\xff\r\n"


def test_entry_point_error_is_one_line_and_exit_code_1(home: Path) -> None:
    """A library error in a real process prints one `error:` line, no traceback, and exits 1."""
    result = run("show", "ws", "task-nope", home=home)
    assert result.returncode == 1 and result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: task 'task-nope' in workspace 'ws' not found")


def test_entry_point_usage_error_exits_2(home: Path) -> None:
    """A missing argument is a usage error: exit code 2 and the usage on stderr."""
    result = run("show", "ws", home=home)
    assert result.returncode == 2 and b"Usage:" in result.stderr


def test_python_m_runs_the_cli() -> None:
    """`python -m atlas_tasks --version` runs the same CLI."""
    result = subprocess.run(
        [sys.executable, "-m", "atlas_tasks", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("atlas-tasks ")


@pytest.mark.parametrize(("args", "exit_code"), [(("--help",), 0), (("--version",), 0), ((), 2)])
def test_top_level_help_and_version_import_no_pydantic(args: tuple[str, ...], exit_code: int) -> None:
    """`--help`, `--version` and a bare `atlas-tasks` import neither pydantic, rich, the models nor the store."""
    modules = imported_modules(*args, exit_code=exit_code)
    assert "atlas_tasks.cli" in modules
    assert not {m for m in modules if m.startswith(HEAVY_AT_TOP)}


@pytest.mark.parametrize(
    ("args", "module"),
    [(("list", "--help"), "_tasks"), (("workspace", "create", "--help"), "_workspace"), (("show", "-h"), "_tasks")],
)
def test_command_help_imports_neither_rich_nor_the_store(args: tuple[str, ...], module: str) -> None:
    """A command's `--help` imports neither rich, the models, the codec nor the store (measured with -X importtime)."""
    modules = imported_modules(*args)
    assert f"atlas_tasks.cli.{module}" in modules
    assert not {m for m in modules if m.startswith(HEAVY)}


def test_a_command_imports_only_its_own_module(home: Path) -> None:
    """`list` imports the module of its command only: never the code of run, serve, migrate or workspace."""
    modules = imported_modules("--home", str(home), "list", "ws")
    assert "atlas_tasks.cli._tasks" in modules
    others = {f"atlas_tasks.cli.{name}" for name in ("_runs", "_serve", "_db", "_workspace")}
    assert not modules & others


def test_importing_the_cli_imports_nothing_heavy() -> None:
    """`import atlas_tasks.cli` loads typer and the command definitions only."""
    code = "import sys, atlas_tasks.cli; print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert not {m for m in result.stdout.splitlines() if m.startswith(HEAVY_AT_TOP)}


def test_sigint_exits_130_quietly(home: Path) -> None:
    """A real SIGINT (Ctrl-C) during a command exits with code 130 and prints nothing on stderr."""
    code = (
        "import os, signal, sys, time\n"
        "from atlas_tasks.backends.file import FileStore\n"
        "def interrupted(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(30)\n"
        "FileStore.list = interrupted\n"
        "sys.argv = ['atlas-tasks', '--home', sys.argv[1], 'list', 'ws']\n"
        "from atlas_tasks.cli import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(home)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 130 and result.stderr == ""
