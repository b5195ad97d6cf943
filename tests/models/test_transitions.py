"""The task state machine: the table of allowed status changes and the checks the store runs on update."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from atlas_tasks.errors import InvalidTransitionError
from atlas_tasks.models import TaskStatus, Transition
from atlas_tasks.transitions import (
    ALLOWED_TRANSITIONS,
    ERROR_STATUSES,
    TERMINAL_STATUSES,
    allowed_from,
    can_transition,
    check_status_change,
    check_transition,
    is_error,
    is_terminal,
)

S = TaskStatus

# The Go ATLAS's table, written out independently of the module under test.
EXPECTED: dict[str, set[str]] = {
    "pending": {"running"},
    "running": {"validating", "gh_failed", "ci_failed", "ci_timeout", "interrupted", "abandoned"},
    "validating": {"awaiting_approval", "validation_failed", "interrupted"},
    "validation_failed": {"running", "abandoned"},
    "awaiting_approval": {"completed", "running", "rejected"},
    "gh_failed": {"running", "abandoned"},
    "ci_failed": {"running", "abandoned"},
    "ci_timeout": {"running", "abandoned"},
    "interrupted": {"running", "abandoned"},
    "completed": set(),
    "rejected": set(),
    "abandoned": set(),
}
EDGES = sorted((a, b) for a, targets in EXPECTED.items() for b in targets)
NON_EDGES = [(a, b) for a, b in itertools.product(EXPECTED, EXPECTED) if b not in EXPECTED[a]]


def _t(a: str, b: str) -> Transition:
    return Transition(from_status=a, to_status=b, timestamp=datetime(2026, 1, 1, tzinfo=UTC))


def test_table_covers_every_status() -> None:
    """Every TaskStatus has an entry in the table, and the table holds nothing else."""
    assert set(ALLOWED_TRANSITIONS) == set(TaskStatus)


@pytest.mark.parametrize(("a", "b"), EDGES)
def test_allowed_edge_is_accepted(a: str, b: str) -> None:
    """Each edge of the Go table is allowed, by name and by enum member."""
    assert can_transition(a, b)
    assert can_transition(S(a), S(b))
    check_transition("t-1", a, b)


def test_every_other_pair_is_rejected() -> None:
    """Every pair of statuses that is not an edge of the table (same-status pairs included) is refused."""
    for a, b in NON_EDGES:
        assert not can_transition(a, b), (a, b)
        with pytest.raises(InvalidTransitionError):
            check_transition("t-1", a, b)


@pytest.mark.parametrize("status", list(TaskStatus))
def test_same_status_is_rejected(status: TaskStatus) -> None:
    """Moving to the status a task already has is never a transition."""
    with pytest.raises(InvalidTransitionError):
        check_transition("t-1", status, status)


def test_allowed_from_lists_targets_in_table_order() -> None:
    """allowed_from returns the table's targets as TaskStatus members, terminal statuses none."""
    assert allowed_from("running") == (
        S.VALIDATING,
        S.GH_FAILED,
        S.CI_FAILED,
        S.CI_TIMEOUT,
        S.INTERRUPTED,
        S.ABANDONED,
    )
    assert allowed_from(S.COMPLETED) == ()


def test_unknown_statuses_have_no_edges() -> None:
    """A status this version does not know (e.g. from a newer file) matches no edge in either position."""
    assert allowed_from("paused_by_robot") == ()
    assert not can_transition("paused_by_robot", "running")
    assert not can_transition("running", "paused_by_robot")


def test_error_carries_what_was_refused() -> None:
    """The error names the task, both statuses and what the source status allows."""
    with pytest.raises(InvalidTransitionError) as info:
        check_transition("task-20251228-100000", "completed", "running")
    err = info.value
    assert (err.task_id, err.from_status, err.to_status, err.allowed) == (
        "task-20251228-100000",
        "completed",
        "running",
        (),
    )
    assert "terminal" in str(err)


def test_terminal_and_error_sets() -> None:
    """Terminal statuses are completed/rejected/abandoned; error statuses are the retryable failures."""
    assert {s.value for s in TERMINAL_STATUSES} == {"completed", "rejected", "abandoned"}
    assert {s.value for s in ERROR_STATUSES} == {
        "validation_failed",
        "gh_failed",
        "ci_failed",
        "ci_timeout",
        "interrupted",
    }
    assert all(allowed_from(s) == () for s in TERMINAL_STATUSES)


@pytest.mark.parametrize("status", list(TaskStatus))
def test_is_terminal_and_is_error_match_the_sets(status: TaskStatus) -> None:
    """is_terminal/is_error agree with the sets for members and for their string values."""
    assert is_terminal(status) == is_terminal(status.value) == (status in TERMINAL_STATUSES)
    assert is_error(status) == is_error(status.value) == (status in ERROR_STATUSES)


def test_unknown_status_is_neither_terminal_nor_error() -> None:
    """A status string this version does not know is not treated as terminal or retryable."""
    assert not is_terminal("exploded")
    assert not is_error("exploded")


def test_status_change_single_step_chain() -> None:
    """One recorded transition from the stored status to the new status is accepted."""
    check_status_change("t", "pending", "running", [_t("pending", "running")])


def test_status_change_multi_step_chain() -> None:
    """A chain running -> validating -> awaiting_approval is accepted as one update."""
    chain = [_t("running", "validating"), _t("validating", "awaiting_approval")]
    check_status_change("t", S.RUNNING, S.AWAITING_APPROVAL, chain)


def test_status_change_chain_back_to_same_status() -> None:
    """A chain that leaves and comes back to the stored status is accepted."""
    chain = [_t("awaiting_approval", "running"), _t("running", "validating"), _t("validating", "awaiting_approval")]
    check_status_change("t", "awaiting_approval", "awaiting_approval", chain)


def test_status_unchanged_without_transitions() -> None:
    """An update that changes no status and records no transition passes."""
    check_status_change("t", "running", "running", [])


def test_status_changed_without_transitions_is_refused() -> None:
    """Changing the status without recording the transition is refused."""
    with pytest.raises(InvalidTransitionError) as info:
        check_status_change("t", "running", "validating", [])
    assert (info.value.from_status, info.value.to_status) == ("running", "validating")


def test_chain_not_starting_at_stored_status_is_refused() -> None:
    """A first transition whose from_status is not the stored status is refused."""
    with pytest.raises(InvalidTransitionError):
        check_status_change("t", "running", "awaiting_approval", [_t("validating", "awaiting_approval")])


def test_chain_with_a_gap_is_refused() -> None:
    """Transitions that do not connect end to start are refused."""
    chain = [_t("pending", "running"), _t("validating", "awaiting_approval")]
    with pytest.raises(InvalidTransitionError):
        check_status_change("t", "pending", "awaiting_approval", chain)


def test_chain_ending_elsewhere_is_refused() -> None:
    """A chain whose last status is not the task's new status is refused."""
    with pytest.raises(InvalidTransitionError):
        check_status_change("t", "pending", "validating", [_t("pending", "running")])


def test_chain_with_disallowed_edge_is_refused() -> None:
    """A connected chain that contains an edge the table forbids is refused."""
    with pytest.raises(InvalidTransitionError):
        check_status_change("t", "running", "completed", [_t("running", "completed")])


def test_models_and_transitions_share_one_status_enum() -> None:
    """TaskStatus from models is the very enum the transition table is keyed by."""
    assert all(type(status) is TaskStatus for status in ALLOWED_TRANSITIONS)
