"""The run tests' workspace has a real worktree directory: commands run only where the workspace says."""

from __future__ import annotations

from worktree_fixtures import worktree, ws

__all__ = ["worktree", "ws"]
