"""Token and cost budgets per task: usage reported by AI steps, soft and hard limits (see docs/runs.md, "Budgets").

[lifecycle] #17: filled in by the budgets slice.
"""

from __future__ import annotations
