"""The crash-loop limit: a task that keeps dying without finishing a step stops resuming itself.

[lifecycle] #17: filled in by the deadlines slice.
"""

from __future__ import annotations
