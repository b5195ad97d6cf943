"""Lifecycle tests run in a workspace with a real worktree directory (as the run tests do)."""

from __future__ import annotations

from worktree_fixtures import worktree, ws

__all__ = ["worktree", "ws"]
