"""T1a fast subset: a real child process dies at every filesystem call of the core operations."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the campaigns live in reliability/ at the repo root
from reliability import crashpoints

pytestmark = pytest.mark.slow  # seconds each: real processes, mounts and thousands of crash states


def test_task_writes_survive_a_death_at_every_call() -> None:
    """update, append_log and save_versioned_artifact leave the old or the new state whatever call they die at."""
    outcome = crashpoints.run("fast", None, ["update", "append_log", "append_log_first", "save_versioned_artifact"])
    # Every operation was cut at each of its calls (an update: open, read, temp write, fsync, rename, dir fsync...).
    assert set(outcome.details) == {"update", "append_log", "append_log_first", "save_versioned_artifact"}
    assert all(points >= 6 for points in outcome.details.values()), outcome.details
    assert outcome.violations == 0, outcome.describe()


def test_create_and_delete_survive_a_death_at_every_call() -> None:
    """create and delete leave the old or the new state, and the doctor reports and removes every leftover."""
    outcome = crashpoints.run("fast", None, ["create", "delete"])
    assert outcome.violations == 0, outcome.describe()


def test_in_place_write_is_caught() -> None:
    """Negative control: rewriting task.json in place is caught (half-written task.json after a death)."""
    outcome = crashpoints.run("fast", "in-place-write", ["update", "create"])
    assert outcome.violations > 0, outcome.describe()
    assert "task unreadable" in outcome.verdict.counts
