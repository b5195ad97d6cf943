"""Making untrusted text safe to show on a terminal: :func:`printable` lives in :mod:`atlas_tasks.views.text`
(the dashboard uses it too); this name stays for the CLI's modules."""

from __future__ import annotations

from atlas_tasks.views.text import printable

__all__ = ["printable"]
