"""Cancel a run: a durable request the live runner obeys (see docs/runs.md, "Cancel").

[lifecycle] #17: filled in by the cancel slice.
"""

from __future__ import annotations
