"""T1b fast subset: every crash state the power-loss model allows, checked with the real reader and doctor."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the campaigns live in reliability/ at the repo root
from reliability import powerloss

pytestmark = pytest.mark.slow  # seconds each: real processes, mounts and thousands of crash states


def test_resumed_task_survives_every_power_loss_state() -> None:
    """Log lines, versions and checkpoints of a running task: every crash state is the old or the new one."""
    outcome = powerloss.run("fast", None, {"resume-loop": 6})
    assert outcome.runs > 20
    assert outcome.violations == 0, outcome.describe()


def test_agent_run_survives_every_power_loss_state() -> None:
    """create, first log line, first version, checkpoint, delete: every crash state is the old or the new one."""
    outcome = powerloss.run("fast", None, {"agent-run": 6})
    assert outcome.violations == 0, outcome.describe()


@pytest.mark.parametrize(
    ("variant", "symptom"),
    [
        ("no-dir-fsync", "acknowledged data lost"),
        ("no-file-fsync", "task unreadable"),
        ("naive-log-reader", "log line damaged"),
    ],
)
def test_weakened_write_paths_are_caught(variant: str, symptom: str) -> None:
    """Negative controls: a missing directory fsync, a missing file fsync, a naive log reader are all caught."""
    outcome = powerloss.run("fast", variant, {"agent-run": 4})
    assert outcome.violations > 0, outcome.describe()
    assert symptom in outcome.verdict.counts, outcome.describe()
