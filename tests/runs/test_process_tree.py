"""A step's whole process tree dies with its runner and with its step; timeouts hold; output is bounded.

Each attack runs in a real runner process (the library's run_task). The process-tree and memory checks also run
against the old command runner (tests/runs/_weak.py) as negative controls: the same check must catch it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from atlas_tasks import FileStore, Step, Task

# A runner process: runs the task; with "weak" it uses the old command runner; prints its peak RSS (KiB) at the end.
RUNNER = textwrap.dedent(
    """
    import sys
    from atlas_tasks import FileStore, executors
    from atlas_tasks.errors import StepFailedError
    home, ws, task_id, mode = sys.argv[1:5]
    if mode == "weak":
        sys.path.insert(0, sys.argv[5])
        import _weak
        executors._run_command = _weak.run_command
    store = FileStore(home)
    try:
        with store.run(ws, task_id) as run:
            executors.run_task(run)
    except StepFailedError as exc:
        print("step failed:", exc, file=sys.stderr)
    with open("/proc/self/status") as f:
        print([line.split()[1] for line in f if line.startswith("VmHWM")][0])
    """
)
HERE = str(Path(__file__).parent)


def start_runner(store: FileStore, ws: str, task: Task, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(store.home), ws, task.id, mode, HERE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sleeper(tmp_path: Path) -> str:
    """A `sleep` reachable under a path unique to this test, so its processes can be found by command line."""
    link = tmp_path / "sleep"
    link.symlink_to(shutil.which("sleep") or "/bin/sleep")
    return str(link)


def processes_with(token: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line mentions ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def kill_all(token: str) -> None:
    for pid in processes_with(token):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)


def orphan_attack(store: FileStore, ws: str, tmp_path: Path, mode: str) -> list[str]:
    """SIGKILL a runner while its step has a setsid'd and a backgrounded grandchild that later write to a file;
    return what survived it (late writes, live processes)."""
    token, sleep = str(tmp_path), sleeper(tmp_path)
    side, started = tmp_path / "side", tmp_path / "started"
    command = (
        f"setsid sh -c '{sleep} 2; echo setsid >> {side}' & "
        f"( sh -c '{sleep} 2; echo background >> {side}' & ) ; "
        f"touch {started}; exec {sleep} 60"
    )
    task = store.create(
        ws, Task(description="d", steps=[Step(name="s", type="validation", commands=[command], shell=True)])
    )
    runner = start_runner(store, ws, task, mode)
    try:
        wait_for(started, runner)
        os.kill(runner.pid, signal.SIGKILL)
        runner.communicate(timeout=30)
        time.sleep(4)  # twice as long as the grandchildren wait before they write
        problems = [f"late write: {line}" for line in (side.read_text().splitlines() if side.exists() else [])]
        problems += [f"survivor pid {pid}" for pid in processes_with(token)]
        return problems
    finally:
        runner.kill()
        runner.communicate()
        kill_all(token)


def test_process_tree_dies_with_the_runner(store: FileStore, ws: str, tmp_path: Path) -> None:
    """After the runner is SIGKILLed, no grandchild (setsid'd or backgrounded) of its step writes or survives."""
    assert orphan_attack(store, ws, tmp_path, "supervised") == []


def test_negative_control_old_runner_leaves_orphans(store: FileStore, ws: str, tmp_path: Path) -> None:
    """The same check catches the old runner (PDEATHSIG on the direct child only): its grandchildren write late."""
    assert orphan_attack(store, ws, tmp_path, "weak") != []


def run_to_end(store: FileStore, ws: str, step: Step, mode: str = "supervised", wait: float = 20) -> dict:
    """Run a one-step task in a runner process, bounded by ``wait`` seconds; return its artifact and peak RSS."""
    task = store.create(ws, Task(description="d", steps=[step]))
    runner = start_runner(store, ws, task, mode)
    try:
        out, err = runner.communicate(timeout=wait)
    finally:
        runner.kill()
    artifact = json.loads(store.get_artifact(ws, task.id, "validation.1.json"))
    return {"artifact": artifact, "peak_kib": int(out.split()[-1]), "stderr": err}


def test_timeout_holds_when_a_setsid_child_keeps_the_pipes(store: FileStore, ws: str, tmp_path: Path) -> None:
    """A step with timeout 2 s whose setsid'd child holds stdout ends well before the child would (30 s)."""
    token, sleep = str(tmp_path), sleeper(tmp_path)
    step = Step(
        name="s",
        type="validation",
        commands=[f"setsid {sleep} 30 & echo started; exec {sleep} 30"],
        shell=True,
        timeout_seconds=2,
    )
    try:
        result = run_to_end(store, ws, step, wait=20)
        assert "timed out after 2s" in result["artifact"]["results"][0]["error"]
        assert processes_with(token) == []
    finally:
        kill_all(token)


def test_background_leftover_does_not_hold_the_step(store: FileStore, ws: str, tmp_path: Path) -> None:
    """A command that exits at once leaving `sleep 40 &` behind ends its step without waiting, and the child dies."""
    token, sleep = str(tmp_path), sleeper(tmp_path)
    step = Step(name="s", type="validation", commands=[f"{sleep} 40 & echo started"], shell=True)
    try:
        result = run_to_end(store, ws, step, wait=20)
        assert result["artifact"]["success"] and result["artifact"]["results"][0]["stdout"] == "started\n"
        assert processes_with(token) == []
    finally:
        kill_all(token)


BIG = 300_000_000


def test_runner_memory_stays_bounded_for_huge_output(store: FileStore, ws: str) -> None:
    """A step printing 300 MB keeps the runner's peak RSS far below it, and the artifact says what was cut."""
    result = run_to_end(store, ws, Step(name="s", type="validation", commands=[f"head -c {BIG} /dev/zero"]), wait=120)
    assert result["peak_kib"] < 200 * 1024, result
    entry = result["artifact"]["results"][0]
    assert entry["stdout_bytes"] == BIG and entry["stdout_truncated"] and len(entry["stdout"]) == 1 << 20


def test_negative_control_old_runner_holds_all_output(store: FileStore, ws: str) -> None:
    """The same memory check catches the old runner, which kept the whole output in memory."""
    result = run_to_end(
        store, ws, Step(name="s", type="validation", commands=[f"head -c {BIG} /dev/zero"]), "weak", 120
    )
    assert result["peak_kib"] >= 200 * 1024, result


def test_output_reaches_the_log_while_the_step_runs(store: FileStore, ws: str, tmp_path: Path) -> None:
    """A line printed by a still-running command is in task.log before the command ends."""
    token, sleep = str(tmp_path), sleeper(tmp_path)
    step = Step(name="s", type="validation", commands=[f"echo first {token}; exec {sleep} 60"], shell=True)
    task = store.create(ws, Task(description="d", steps=[step]))
    runner = start_runner(store, ws, task, "supervised")
    try:
        deadline = time.monotonic() + 30
        while True:
            texts = [e.get("text", "") for e in store.read_log(ws, task.id) if e.get("event") == "output"]
            if any(f"first {token}" in t for t in texts):
                break
            assert time.monotonic() < deadline, "the output never reached the log"
            assert runner.poll() is None
            time.sleep(0.1)
        assert processes_with(token)  # the command was still running
    finally:
        runner.kill()
        runner.communicate()
        kill_all(token)
