"""L fast subset: run, retry from a step, fork and cancel with real runners SIGKILLed at random moments."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the campaigns live in reliability/ at the repo root
from reliability import lifecycle

pytestmark = pytest.mark.slow  # seconds each: hundreds of real processes, dozens of them killed


def test_lifecycle_operations_under_kill_lose_and_duplicate_nothing() -> None:
    """20 rounds of run/retry/fork/cancel with SIGKILLed runners: no step lost, run twice, or left unfinished."""
    outcome = lifecycle.run("fast")
    assert outcome.runs == 20
    assert outcome.details["runner kills"] > 0
    assert outcome.violations == 0, outcome.describe()
    assert outcome.lost == 0, outcome.describe()


def test_batched_checkpoints_are_caught() -> None:
    """Negative control: a run that writes the task only at its start and end loses steps it moved past."""
    outcome = lifecycle.run("fast", "no-step-checkpoint")
    counts = outcome.verdict.counts
    assert counts["step started before its predecessor's success was durable"] > 0, outcome.describe()
    assert counts["a step the runner moved past was lost by the kill"] > 0, outcome.describe()


def test_resume_from_the_first_step_is_caught() -> None:
    """Negative control: a resumed run that starts over runs steps again after their success was checkpointed."""
    outcome = lifecycle.run("fast", "resume-from-start")
    assert outcome.verdict.counts["step ran again after its success was checkpointed"] > 0, outcome.describe()


def test_forks_without_the_incomplete_marker_are_caught() -> None:
    """Negative control: a fork built without its incomplete marker survives recover half-built."""
    outcome = lifecycle.run("fast", "fork-no-marker")
    assert outcome.verdict.counts["fork kept without its source's artifacts"] > 0, outcome.describe()
