"""The status and type enumerations, kept apart so that ``transitions`` can use them without importing ``models``.

``models`` re-exports every name here; import them from :mod:`atlas_tasks.models`.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """The lifecycle state of a task (the Go ATLAS's ``TaskStatus`` values, ``interrupted`` included)."""

    PENDING = "pending"
    RUNNING = "running"
    VALIDATING = "validating"
    VALIDATION_FAILED = "validation_failed"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    REJECTED = "rejected"
    ABANDONED = "abandoned"
    GH_FAILED = "gh_failed"
    CI_FAILED = "ci_failed"
    CI_TIMEOUT = "ci_timeout"
    INTERRUPTED = "interrupted"


class StepStatus(StrEnum):
    """The status values the Go engine writes for steps and step results (stored there as plain strings)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    AWAITING_APPROVAL = "awaiting_approval"
    NO_CHANGES = "no_changes"


class StepType(StrEnum):
    """The kind of executor a step needs."""

    AI = "ai"
    VALIDATION = "validation"
    GIT = "git"
    HUMAN = "human"
    SDD = "sdd"
    CI = "ci"
    VERIFY = "verify"
    LOOP = "loop"


class WorkspaceStatus(StrEnum):
    """The state of a workspace."""

    ACTIVE = "active"
    PAUSED = "paused"
    CLOSED = "closed"


__all__ = ["StepStatus", "StepType", "TaskStatus", "WorkspaceStatus"]
