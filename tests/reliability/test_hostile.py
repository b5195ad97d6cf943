"""H fast subset: special files, odd entries and deep JSON under every reader; and its three negative controls."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the campaigns live in reliability/ at the repo root
from reliability import hostile

pytestmark = pytest.mark.slow  # seconds each: a forked child per reader and planted entry


def test_hostile_entries_never_block_crash_or_hide_the_rest() -> None:
    """Every reader on every planted entry finishes, raises only typed errors, and keeps listing the good task."""
    outcome = hostile.run("fast", None)
    assert outcome.runs >= 300
    assert outcome.violations == 0, outcome.describe()


def test_blocking_open_is_caught() -> None:
    """Negative control: without O_NONBLOCK and the regular-file check, a FIFO blocks the readers."""
    outcome = hostile.run("fast", "blocking-open")
    assert outcome.verdict.counts["reader blocked by a planted entry"] > 0, outcome.describe()


def test_unguarded_json_is_caught() -> None:
    """Negative control: a log parser that lets RecursionError out gives untyped errors."""
    outcome = hostile.run("fast", "unguarded-json")
    assert outcome.verdict.counts["untyped error (not an AtlasTasksError)"] > 0, outcome.describe()


def test_odd_entry_aborting_the_listing_is_caught() -> None:
    """Negative control: an odd task.json raised out of the listing takes down the good task with it."""
    outcome = hostile.run("fast", "odd-entry-aborts")
    assert outcome.verdict.counts["one entry took down a listing, check or the good task"] > 0, outcome.describe()
