"""docs/api.md's async quick start runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_async_quick_start_runs() -> None:
    """The first python block of the "Async API" section runs and prints the completed status."""
    text = API_MD.read_text()
    section = text[text.index("## Async API") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    done = subprocess.run([sys.executable, "-c", block.group(1)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "completed"
