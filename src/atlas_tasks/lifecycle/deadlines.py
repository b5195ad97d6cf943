"""Run deadlines, stored as absolute times so they survive a crash and a resume (see docs/runs.md, "Deadlines").

[lifecycle] #17: filled in by the deadlines slice.
"""

from __future__ import annotations
