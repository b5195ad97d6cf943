"""T1c fast subset: three real power cuts (FS_IOC_SHUTDOWN) per target; skipped where mounting is refused."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the campaigns live in reliability/ at the repo root
from reliability import powercut

pytestmark = pytest.mark.slow  # seconds each: real processes, mounts and thousands of crash states

TARGETS = [
    pytest.param(fs, volatile, id=fs + ("-volatile-cache" if volatile else "")) for fs, volatile in powercut.TARGETS
]


@pytest.mark.parametrize(("fs", "volatile"), TARGETS)
def test_power_cuts_lose_nothing_acknowledged(fs: str, volatile: bool) -> None:
    """After each cut and remount every task reads and every call that returned before the cut began is there."""
    outcome = powercut.run_fs(fs, 3, None, volatile=volatile)
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.runs == 3
    assert outcome.violations == 0, outcome.describe()


@pytest.mark.parametrize(("fs", "volatile"), TARGETS)
def test_no_fsync_is_caught(fs: str, volatile: bool) -> None:
    """Negative control: without fsync, a real power cut loses acknowledged steps."""
    outcome = powercut.run_fs(fs, 3, "no-fsync", volatile=volatile)
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.lost > 0, outcome.describe()
