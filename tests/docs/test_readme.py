"""README.md's Python examples run as written: every ```python block, in order, in a fresh home.

A block that cannot run here on purpose (it needs a server, say) is preceded by a comment line
``<!-- not-run: why -->``; everything else must run without error, without network, in one interpreter
(later blocks use the names earlier ones define, as a reader pasting them in order would).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^(?:<!--\s*not-run:(?P<why>.*?)-->\n)?```python\n(?P<code>.*?)^```", re.M | re.S)


def python_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """(line number, code, why it is not run or None) for every ```python block of ``text``."""
    return [
        (text.count("\n", 0, m.start("code")) + 1, m["code"], m["why"].strip() if m["why"] is not None else None)
        for m in BLOCK.finditer(text)
    ]


def fresh_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATLAS_", "PG"))}
    env.update(HOME=str(tmp_path), ATLAS_HOME=str(tmp_path / "atlas-home"))
    return env


def run_blocks(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the README's unmarked Python blocks in order, in one fresh interpreter whose home is in ``tmp_path``."""
    blocks = [(line, code) for line, code, why in python_blocks(README.read_text(encoding="utf-8")) if why is None]
    assert len(blocks) >= 2, "the README's Python examples were not found"
    runner = (
        "import json, sys\n"
        "namespace = {'__name__': '__readme__'}\n"
        "for line, code in json.load(sys.stdin):\n"
        "    exec(compile('\\n' * (line - 1) + code, 'README.md', 'exec'), namespace)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", runner],
        input=json.dumps(blocks),
        cwd=tmp_path,
        env=fresh_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_readme_python_blocks_run_in_order(tmp_path: Path) -> None:
    """Every unmarked ```python block of README.md runs without error, in order, in a fresh temporary home."""
    done = run_blocks(tmp_path)
    assert done.returncode == 0, done.stderr


def test_readme_python_blocks_leave_no_crashed_run(tmp_path: Path) -> None:
    """After the README's examples, `atlas-tasks doctor` finds nothing: no task is left running without a runner."""
    assert run_blocks(tmp_path).returncode == 0
    doctor = subprocess.run(
        [sys.executable, "-m", "atlas_tasks", "doctor", "--json"],
        cwd=tmp_path,
        env=fresh_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(doctor.stdout)
    assert report["tasks_checked"] >= 1
    assert doctor.returncode == 0 and report["findings"] == [], doctor.stdout


def test_blocks_kept_out_say_why() -> None:
    """A `not-run` marker gives its reason, and only a few blocks are kept out."""
    reasons = [why for _, _, why in python_blocks(README.read_text(encoding="utf-8")) if why is not None]
    assert all(reasons) and len(reasons) <= 3, reasons
