"""R fast subset: gc and import with real children SIGKILLed at random moments and at crash points."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the campaigns live in reliability/ at the repo root
from reliability import retention

pytestmark = pytest.mark.slow  # seconds each: dozens of real processes, most of them killed


def test_gc_and_import_under_kill_leave_every_task_whole_or_gone() -> None:
    """18 rounds of gc and import, children SIGKILLed: no half-deleted or half-imported task; recovery ends clean."""
    outcome = retention.run("fast")
    assert outcome.runs == 18
    assert outcome.details["kills"] > 0
    assert outcome.details["tasks deleted by killed collectors"] > 0
    assert outcome.details["tasks landed by killed imports"] > 0
    assert outcome.violations == 0, outcome.describe()
    assert outcome.lost == 0, outcome.describe()


def test_deleting_in_place_is_caught() -> None:
    """Negative control: a delete that removes a task's files where they are leaves half-deleted tasks."""
    outcome = retention.run("fast", "delete-in-place")
    assert outcome.verdict.counts["half-deleted task"] > 0, outcome.describe()


def test_importing_in_place_is_caught() -> None:
    """Negative control: an import writing task.json first, then the rest one by one, shows half-imported tasks."""
    outcome = retention.run("fast", "import-in-place")
    assert outcome.verdict.counts["half-imported task visible"] > 0, outcome.describe()


def test_importing_without_the_marker_is_caught() -> None:
    """Negative control: an import that does not mark its directory leaves one doctor --fix cannot remove."""
    outcome = retention.run("fast", "import-no-marker")
    assert outcome.verdict.counts["doctor --fix left an interrupted import"] > 0, outcome.describe()
