"""Lifecycle tests run in a workspace with a real worktree directory (as the run tests do)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from atlas_tasks.store import Store


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    path = tmp_path / "worktree"
    path.mkdir()
    return path


@pytest.fixture
def ws(store: Store, worktree: Path) -> str:
    name = f"ws-{secrets.token_hex(3)}"
    store.create_workspace(name, worktree_path=str(worktree))
    return name
