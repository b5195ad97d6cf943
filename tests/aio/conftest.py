"""The async tests' workspace has a real worktree directory (command steps run there)."""

from __future__ import annotations

from worktree_fixtures import worktree, ws

__all__ = ["worktree", "ws"]
