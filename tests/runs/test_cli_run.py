"""`atlas-tasks run` through real CLI processes: where commands run, --dry-run, clean errors, escaped progress,
long descriptions, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atlas_tasks import FileStore, Step, Task, TaskStatus

ATLAS = [sys.executable, "-m", "atlas_tasks"]


def cli(
    home: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ATLAS, "--home", str(home), *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


def one_step(store: FileStore, ws: str, command: str, **task: object) -> Task:
    step = Step(name="s", type="validation", commands=[command], shell=True)
    return store.create(ws, Task(steps=[step], **task))  # type: ignore[arg-type]


def test_missing_worktree_refuses_before_running(store: FileStore, tmp_path: Path) -> None:
    """A workspace whose worktree does not exist: `run` names the path, exits 1, runs nothing, leaves it pending."""
    store.create_workspace("typo", worktree_path=str(tmp_path / "does-not-exist"))
    here = tmp_path / "cwd"
    here.mkdir()
    task = one_step(store, "typo", "touch ran-here")
    result = cli(store.home, "run", "typo", task.id, cwd=here)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(tmp_path / "does-not-exist") in result.stderr and "does not exist" in result.stderr
    assert not (here / "ran-here").exists()
    assert store.get("typo", task.id).status == TaskStatus.PENDING


def test_missing_worktree_fails_the_step_in_the_library(store: FileStore, tmp_path: Path) -> None:
    """Through the library, the step fails naming the missing worktree; nothing runs in the current directory."""
    from atlas_tasks.errors import StepFailedError
    from atlas_tasks.executors import run_task

    store.create_workspace("gone", worktree_path=str(tmp_path / "removed-worktree"))
    task = one_step(store, "gone", f"touch {tmp_path / 'ran'}")
    with pytest.raises(StepFailedError, match="removed-worktree"), store.run("gone", task.id) as run:
        run_task(run)
    assert not (tmp_path / "ran").exists()


def test_no_worktree_needs_workdir(store: FileStore, tmp_path: Path) -> None:
    """A workspace with no worktree/path refuses without --workdir and runs in the --workdir given."""
    store.create_workspace("bare")
    task = one_step(store, "bare", "pwd > where.txt")
    refused = cli(store.home, "run", "bare", task.id, cwd=tmp_path)
    assert refused.returncode == 1 and "--workdir" in refused.stderr and not (tmp_path / "where.txt").exists()
    target = tmp_path / "target"
    target.mkdir()
    done = cli(store.home, "run", "--workdir", str(target), "bare", task.id)
    assert done.returncode == 0, done.stderr
    assert (target / "where.txt").read_text().strip() == str(target)


def test_unreadable_workspace_refuses(store: FileStore, tmp_path: Path) -> None:
    """A workspace.json that cannot be read is not treated as 'run here': the run is refused."""
    store.create_workspace("broken", worktree_path=str(tmp_path))
    task = one_step(store, "broken", "touch ran")
    (store.home / "workspaces" / "broken" / "workspace.json").write_text("{not json")
    result = cli(store.home, "run", "broken", task.id, cwd=tmp_path)
    assert result.returncode == 1 and "cannot be read" in result.stderr
    assert not (tmp_path / "ran").exists()


def test_dry_run_shows_commands_and_directory_without_running(store: FileStore, ws: str, worktree: Path) -> None:
    """--dry-run lists each remaining step with its exact commands and directory, runs nothing, changes nothing."""
    steps = [
        Step(name="build", type="validation", commands=["touch built", "make test"]),
        Step(name="review", type="human"),
        Step(name="think", type="ai", prompt="hello"),
    ]
    task = Task(steps=steps)
    task.config.variables["ai_command"] = "claude -p"
    task = store.create(ws, task)
    before = store.get(ws, task.id)
    result = cli(store.home, "run", "--dry-run", ws, task.id)
    assert result.returncode == 0, result.stderr
    assert f"directory: {worktree}" in result.stdout
    assert "$ touch built" in result.stdout and "$ make test" in result.stdout and "$ claude -p" in result.stdout
    assert "waits for approval" in result.stdout and "the step's prompt" in result.stdout
    assert not (worktree / "built").exists()
    assert store.get(ws, task.id) == before and list(store.read_log(ws, task.id)) == []


def test_dry_run_with_missing_worktree_says_so(store: FileStore, tmp_path: Path) -> None:
    """--dry-run of a task whose worktree is missing prints the plan, names the problem, and exits non-zero."""
    store.create_workspace("typo", worktree_path=str(tmp_path / "nope"))
    task = one_step(store, "typo", "true")
    result = cli(store.home, "run", "--dry-run", "typo", task.id)
    assert result.returncode == 1 and "$ true" in result.stdout and str(tmp_path / "nope") in result.stderr


def test_unbalanced_quote_is_one_error_line(store: FileStore, ws: str) -> None:
    """An AI command with an unbalanced quote fails the step cleanly: one `error:` line, no traceback."""
    task = Task(steps=[Step(name="think", type="ai", prompt="p")])
    task.config.variables["ai_command"] = "claude -p 'oops"
    task = store.create(ws, task)
    result = cli(store.home, "run", ws, task.id)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "cannot parse command" in result.stderr


def test_nul_in_description_is_one_error_line(store: FileStore, ws: str) -> None:
    """A description with a NUL byte fails the step saying so: one `error:` line, no traceback."""
    task = one_step(store, ws, "true", description="bad\x00description")
    result = cli(store.home, "run", ws, task.id)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "NUL byte" in result.stderr


def test_progress_escapes_step_names(store: FileStore, ws: str) -> None:
    """A step name with OSC 52, ESC and CR reaches stdout only as visible escapes, never as control bytes."""
    evil = "\x1b]52;c;ZXZpbA==\x07\x1b[2K\rFAKE: all good"
    task = store.create(ws, Task(steps=[Step(name=evil, type="validation", commands=["true"])]))
    result = subprocess.run([*ATLAS, "--home", str(store.home), "run", ws, task.id], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not [b for b in result.stdout if b < 0x20 and b != 0x0A], result.stdout
    assert b"\\x1b]52" in result.stdout


def test_long_description_reaches_commands(store: FileStore, ws: str, worktree: Path) -> None:
    """A 200 KB description: commands still start; the env var holds its first 16 KiB, the file all of it."""
    description = "é" * 100_000  # 200 KB of UTF-8
    task = one_step(
        store,
        ws,
        'printf %s "$ATLAS_TASK_DESCRIPTION" > env.txt; cp "$ATLAS_TASK_DESCRIPTION_FILE" file.txt',
        description=description,
    )
    result = cli(store.home, "run", ws, task.id)
    assert result.returncode == 0, result.stderr
    assert (worktree / "file.txt").read_text() == description
    head = (worktree / "env.txt").read_text()
    assert description.startswith(head) and 16_000 < len(head.encode()) <= 16 << 10


def test_ai_output_is_not_dumped_on_the_status_line(store: FileStore, ws: str) -> None:
    """An AI step's multi-line answer is kept in its artifact; the run prints one line per step start and end."""
    task = Task(steps=[Step(name="think", type="ai", prompt="line one\nline two\nline three\n")])
    task.config.variables["ai_command"] = "cat"
    task = store.create(ws, task)
    result = cli(store.home, "run", ws, task.id)
    assert result.returncode == 0, result.stderr
    assert "line two" not in result.stdout
    assert "[1/1] think: success - 3 line(s) of output in artifacts/think.1.md" in result.stdout


def test_long_step_shows_elapsed_time_off_a_terminal(store: FileStore, ws: str) -> None:
    """Off a terminal, a running step prints a 'running for' line every $ATLAS_TASKS_PROGRESS_SECONDS."""
    task = one_step(store, ws, "sleep 3")
    env = {**os.environ, "ATLAS_TASKS_PROGRESS_SECONDS": "1"}
    result = cli(store.home, "run", ws, task.id, env=env)
    assert result.returncode == 0, result.stderr
    assert "[1/1] s: running for " in result.stdout


def test_ctrl_c_prints_how_to_resume(store: FileStore, ws: str, worktree: Path) -> None:
    """SIGINT to a running CLI: exit 130, one line with the exact resume command, the task interrupted."""
    marker = worktree / "started"
    task = one_step(store, ws, f"touch {marker}; exec sleep 60")
    runner = subprocess.Popen(
        [*ATLAS, "--home", str(store.home), "run", ws, task.id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline and runner.poll() is None
        time.sleep(0.05)
    runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=30)
    assert runner.returncode == 130, (out, err)
    assert err.count("\n") == 1 and f"atlas-tasks --home {store.home} run {ws} {task.id}" in err
    assert store.get(ws, task.id).status == TaskStatus.INTERRUPTED


def test_artifact_records_output_sizes(store: FileStore, ws: str) -> None:
    """The command artifact says how many bytes each stream had and whether its kept tail was cut."""
    task = one_step(store, ws, "echo hello; echo oops >&2")
    assert cli(store.home, "run", ws, task.id).returncode == 0
    entry = json.loads(store.get_artifact(ws, task.id, "validation.1.json"))["results"][0]
    assert (entry["stdout_bytes"], entry["stdout_truncated"], entry["stderr_bytes"]) == (6, False, 5)


def test_long_step_shows_a_live_timer_on_a_terminal(store: FileStore, ws: str) -> None:
    """On a terminal, a running step's line is rewritten in place with its elapsed time."""
    import pty

    task = one_step(store, ws, "sleep 3")
    leader, follower = pty.openpty()
    runner = subprocess.Popen(
        [*ATLAS, "--home", str(store.home), "run", ws, task.id], stdout=follower, stderr=follower, stdin=follower
    )
    os.close(follower)
    seen = b""
    try:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: every process holding the terminal is gone
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
        assert runner.wait(timeout=60) == 0, seen
    assert b"\r[1/1] s (validation) ... attempt 1 1s" in seen and b"[1/1] s: success" in seen


def test_failed_command_says_why_in_its_own_words(store: FileStore, ws: str) -> None:
    """A failing command's last line (stderr first) and its artifact are in the step's error, not only exit 1."""
    task = one_step(store, ws, "sh -c 'echo progress; echo nothing to commit, working tree clean >&2; exit 1'")
    done = cli(store.home, "run", ws, task.id)
    assert done.returncode == 1
    error = store.get(ws, task.id).steps[0].error
    assert error.endswith(
        "(exit code 1): nothing to commit, working tree clean; its output is in artifacts/validation.1.json"
    )
    assert "nothing to commit, working tree clean" in done.stderr
