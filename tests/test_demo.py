"""`make demo` keeps working: the demo script runs end to end (a real SIGKILL, a real resume) in a temp home."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).parent.parent / "examples" / "demo.py"


def test_demo_runs_to_completion(tmp_path: Path) -> None:
    """The demo kills a run mid-step, resumes it, and shows the task completed with step 1 run only once."""
    done = subprocess.run(
        [sys.executable, str(DEMO), "--home", str(tmp_path / "demo-home")], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "interrupted (crashed)" in done.stdout
    assert "commands that ran, in order: analyze, implement, implement, validate, git_commit" in done.stdout
    assert "ConflictError" in done.stdout
