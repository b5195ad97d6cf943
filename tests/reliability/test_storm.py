"""T2, V1 and I1 fast subsets: real processes on the same tasks, some SIGKILLed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the campaigns live in reliability/ at the repo root
from reliability import storm

pytestmark = pytest.mark.slow  # seconds each: real processes, mounts and thousands of crash states


def test_storm_loses_nothing() -> None:
    """8 processes x 2 threads, one killed: no lost update, lock overlap, duplicate, torn line, partial read or
    stale lock."""
    outcome = storm.run_t2("fast")
    assert outcome.runs > 100
    assert outcome.violations == 0, outcome.describe()


@pytest.mark.parametrize("variant", ["no-lock", "lockf"])
def test_weak_locks_are_caught(variant: str) -> None:
    """Negative controls: no lock, and POSIX lockf (shared by a process's threads), lose updates."""
    outcome = storm.run_t2("fast", variant)
    assert outcome.verdict.counts["lost update"] + outcome.verdict.counts["overlapping lock intervals"] > 0, (
        outcome.describe()
    )


def test_concurrent_versions_are_unique_and_whole() -> None:
    """8 processes saving versions of the same artifacts: every name unique, every content intact."""
    outcome = storm.run_v1("fast")
    assert outcome.runs == 128
    assert outcome.violations == 0, outcome.describe()


def test_stat_then_write_versions_are_caught() -> None:
    """Negative control: choosing a version with stat and then writing it overwrites versions."""
    assert storm.run_v1("fast", "stat-then-write").violations > 0


def test_creations_in_one_second_never_collide() -> None:
    """Hundreds of creations across 8 processes in one frozen second, and with uuid ids: no id twice."""
    outcome = storm.run_i1("fast")
    assert outcome.runs == 400
    assert outcome.violations == 0, outcome.describe()


def test_ids_without_mkdir_reservation_are_caught() -> None:
    """Negative control: taking an id because its directory does not exist yet hands it out twice."""
    assert storm.run_i1("fast", "no-mkdir-reservation").verdict.counts["duplicate id"] > 0
