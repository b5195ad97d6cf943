"""The task state machine: which status may follow which, as one table of data, and the checks built on it.

The table is the Go ATLAS's ``ValidTransitions`` at its current version (``interrupted`` and the force-abandon edge
from ``running`` included). Same-status moves and moves from an unknown status are never allowed. Every backend
calls :func:`check_status_change` inside its own atomic section, so the rule lives here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

from atlas_tasks._status import TaskStatus
from atlas_tasks.errors import InvalidTransitionError

if TYPE_CHECKING:
    from atlas_tasks.models import Transition

_S = TaskStatus

#: Every allowed edge, ``from -> (to, ...)``. A status absent from the keys has no outgoing edge.
ALLOWED_TRANSITIONS: Mapping[TaskStatus, tuple[TaskStatus, ...]] = MappingProxyType(
    {
        _S.PENDING: (_S.RUNNING,),
        _S.RUNNING: (_S.VALIDATING, _S.GH_FAILED, _S.CI_FAILED, _S.CI_TIMEOUT, _S.INTERRUPTED, _S.ABANDONED),
        _S.VALIDATING: (_S.AWAITING_APPROVAL, _S.VALIDATION_FAILED, _S.INTERRUPTED),
        _S.VALIDATION_FAILED: (_S.RUNNING, _S.ABANDONED),
        _S.AWAITING_APPROVAL: (_S.COMPLETED, _S.RUNNING, _S.REJECTED),
        _S.GH_FAILED: (_S.RUNNING, _S.ABANDONED),
        _S.CI_FAILED: (_S.RUNNING, _S.ABANDONED),
        _S.CI_TIMEOUT: (_S.RUNNING, _S.ABANDONED),
        _S.INTERRUPTED: (_S.RUNNING, _S.ABANDONED),
        _S.COMPLETED: (),
        _S.REJECTED: (),
        _S.ABANDONED: (),
    }
)

#: Statuses with no way out; entering one sets ``completed_at``.
TERMINAL_STATUSES: frozenset[TaskStatus] = frozenset({_S.COMPLETED, _S.REJECTED, _S.ABANDONED})

#: Failure statuses a task can be retried (resumed) or abandoned from.
ERROR_STATUSES: frozenset[TaskStatus] = frozenset(
    {_S.VALIDATION_FAILED, _S.GH_FAILED, _S.CI_FAILED, _S.CI_TIMEOUT, _S.INTERRUPTED}
)

_BY_VALUE: dict[str, TaskStatus] = {s.value: s for s in TaskStatus}


def _status(value: TaskStatus | str) -> TaskStatus | None:
    # Transitions read from disk may hold statuses this version does not know; they match no edge.
    return _BY_VALUE.get(value)


def allowed_from(status: TaskStatus | str) -> tuple[TaskStatus, ...]:
    """The statuses a task in ``status`` may move to, in table order.

    Args:
        status: The current status; an unknown value has no allowed successor.

    Returns:
        The allowed target statuses (empty for terminal or unknown statuses).
    """
    known = _status(status)
    return ALLOWED_TRANSITIONS.get(known, ()) if known is not None else ()


def can_transition(from_status: TaskStatus | str, to_status: TaskStatus | str) -> bool:
    """Whether the state machine allows the move ``from_status -> to_status``.

    Args:
        from_status: The current status.
        to_status: The wanted status.

    Returns:
        True if the edge is in the table (never for a same-status move).
    """
    target = _status(to_status)
    return target is not None and target in allowed_from(from_status)


def check_transition(task_id: str, from_status: TaskStatus | str, to_status: TaskStatus | str) -> None:
    """Raise unless the move ``from_status -> to_status`` is allowed.

    Args:
        task_id: The task being changed (for the error message).
        from_status: The current status.
        to_status: The wanted status.

    Raises:
        InvalidTransitionError: The edge is not in the table.
    """
    if not can_transition(from_status, to_status):
        raise _refusal(task_id, from_status, to_status)


def _refusal(task_id: str, from_status: TaskStatus | str, to_status: TaskStatus | str) -> InvalidTransitionError:
    allowed = tuple(s.value for s in allowed_from(from_status))
    return InvalidTransitionError(task_id, str(from_status), str(to_status), allowed)


def is_terminal(status: TaskStatus | str) -> bool:
    """Whether ``status`` is completed, rejected or abandoned."""
    return _status(status) in TERMINAL_STATUSES


def is_error(status: TaskStatus | str) -> bool:
    """Whether ``status`` is a retryable failure status (validation_failed, gh/ci failures, interrupted)."""
    return _status(status) in ERROR_STATUSES


def check_status_change(
    task_id: str,
    old_status: TaskStatus | str,
    new_status: TaskStatus | str,
    new_transitions: Sequence[Transition],
) -> None:
    """Check that a saved task reached its new status through valid, recorded transitions.

    A store calls this on update with the stored status, the incoming status and the transitions appended since the
    stored version. They must chain: the first starts at ``old_status``, each starts where the previous ended, every
    edge is allowed, and the last ends at ``new_status``. No new transitions is fine only if the status is unchanged.

    Args:
        task_id: The task being saved (for the error message).
        old_status: The status of the stored version.
        new_status: The status of the version being saved.
        new_transitions: The transitions appended since the stored version, oldest first.

    Raises:
        InvalidTransitionError: A status change without transitions, a broken chain or a disallowed edge.
    """
    current = str(old_status)
    for transition in new_transitions:
        # A transition that does not start where the task was is a gap in the audit trail: refuse the move it
        # claims, reported from the status the task really had.
        if str(transition.from_status) != current:
            raise _refusal(task_id, current, transition.to_status)
        check_transition(task_id, current, transition.to_status)
        current = str(transition.to_status)
    # Also covers "status changed but nothing recorded": the (empty) chain ends at the old status.
    if current != str(new_status):
        raise _refusal(task_id, current, new_status)


__all__ = [
    "ALLOWED_TRANSITIONS",
    "ERROR_STATUSES",
    "TERMINAL_STATUSES",
    "allowed_from",
    "can_transition",
    "check_status_change",
    "check_transition",
    "is_error",
    "is_terminal",
]
