"""N fast subset: hostile names, planted symlinks; nothing is written outside the home."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the campaigns live in reliability/ at the repo root
from reliability import naming

pytestmark = pytest.mark.slow  # seconds each: real processes, mounts and thousands of crash states

LOCK_POSITIONS = [p for p in naming.POSITIONS if p.startswith(".atlas-tasks")]


def test_hostile_workspace_names_are_refused_by_name() -> None:
    """Every workspace name is accepted and stays inside, or is refused with InvalidNameError."""
    outcome = naming.run("fast", None, kinds=("workspace name",), positions=[])
    assert outcome.runs >= 1000
    assert outcome.violations == 0, outcome.describe()


def test_hostile_task_ids_and_artifact_paths_are_refused_by_name() -> None:
    """Every task id and artifact path is accepted and works, or is refused with InvalidNameError."""
    outcome = naming.run("fast", None, kinds=("task id", "artifact path"), positions=[])
    assert outcome.violations == 0, outcome.describe()


def test_symlinks_planted_in_the_layout_are_refused() -> None:
    """A symlink at any position of workspaces/ (fresh or warm store) never lets a write out of the home."""
    positions = [p for p in naming.POSITIONS if p not in LOCK_POSITIONS]
    outcome = naming.run("fast", None, kinds=(), positions=positions)
    assert outcome.violations == 0, outcome.describe()


def test_symlinks_planted_among_the_locks_are_refused() -> None:
    """A symlink at any position under .atlas-tasks never lets a write out of the home."""
    outcome = naming.run("fast", None, kinds=(), positions=LOCK_POSITIONS)
    assert outcome.violations == 0, outcome.describe()


def test_missing_name_check_is_caught() -> None:
    """Negative control: without the allowlist, traversal names write outside the home."""
    outcome = naming.run("fast", "no-name-check", kinds=("workspace name", "artifact path"), positions=[])
    assert outcome.verdict.counts["filesystem call outside the home"] > 0, outcome.describe()
