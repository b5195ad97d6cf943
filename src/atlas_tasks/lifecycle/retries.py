"""Retry policies per step: attempts, backoff, jitter, and which failures retry (see docs/runs.md, "Retries").

[lifecycle] #17: filled in by the retry-policy slice.
"""

from __future__ import annotations
