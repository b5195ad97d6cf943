"""F fast subset: injected and real write faults raise typed errors and leave the previous state intact."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the campaigns live in reliability/ at the repo root
from reliability import faults

pytestmark = pytest.mark.slow  # seconds each: real processes, mounts and thousands of crash states


def test_injected_faults_are_typed_and_harmless() -> None:
    """ENOSPC and EIO at every data-path call of the core operations: typed, named, nothing half-done."""
    outcome = faults.run_injected("fast", None)
    assert outcome.runs > 50
    assert outcome.violations == 0, outcome.describe()


def test_failed_workspace_create_never_fsyncs_its_parent_again() -> None:
    """A create_workspace whose fsync fails cleans up without a second fsync of that directory (found by F)."""
    outcome = faults.run_injected("fast", None, ("create_workspace",))
    assert outcome.runs > 5
    assert outcome.violations == 0, outcome.describe()


@pytest.mark.parametrize(
    ("variant", "symptom"),
    [("fsync-retry", "acknowledged although a data-path call failed"), ("in-place-write", "task unreadable")],
)
def test_weakened_fault_handling_is_caught(variant: str, symptom: str) -> None:
    """Negative controls: a retried fsync acknowledges lost data; an in-place write destroys the old state."""
    outcome = faults.run_injected("fast", variant)
    assert symptom in outcome.verdict.counts, outcome.describe()


def test_real_faults_are_typed_and_harmless() -> None:
    """RLIMIT_FSIZE in a child, and (as root) a full 1 MiB tmpfs: EFBIG/ENOSPC, typed, the old state intact."""
    outcome = faults.run_real("fast", None)
    assert outcome.runs > 10
    assert outcome.violations == 0, outcome.describe()


def test_real_faults_catch_in_place_writes() -> None:
    """Negative control: an in-place rewrite that hits the file size limit leaves a broken task."""
    assert faults.run_real("fast", "in-place-write").violations > 0


def test_read_only_filesystem_refuses_every_write_by_path(tmp_path: Path) -> None:
    """As root, a tmpfs remounted read-only under a store: every write raises EROFS naming a path in the home."""
    outcome = faults.Outcome("F-real", "store")
    faults.run_read_only(tmp_path, outcome)
    if str(outcome.details.get("tmpfs EROFS", "")).startswith("skipped"):
        pytest.skip(str(outcome.details["tmpfs EROFS"]))
    assert outcome.runs == 5
    assert outcome.violations == 0, outcome.describe()
