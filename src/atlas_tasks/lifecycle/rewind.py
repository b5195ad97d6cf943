"""Retry a task from a chosen step in place, or fork it from a step as a new task (see docs/runs.md).

[lifecycle] #17: filled in by the retry/fork slice.
"""

from __future__ import annotations
