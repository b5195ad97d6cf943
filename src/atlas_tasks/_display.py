"""Kept for existing imports: the display state of a task lives in :mod:`atlas_tasks.views.display`."""

from __future__ import annotations

from atlas_tasks.views.display import (
    CRASHED,
    CRASHED_LABEL,
    STATUS_FILTERS,
    DisplayState,
    count_statuses,
    display_state,
    display_states,
    matches_status,
    matches_text,
    runner_text,
    state_of,
)

__all__ = [
    "CRASHED",
    "CRASHED_LABEL",
    "STATUS_FILTERS",
    "DisplayState",
    "count_statuses",
    "display_state",
    "display_states",
    "matches_status",
    "matches_text",
    "runner_text",
    "state_of",
]
