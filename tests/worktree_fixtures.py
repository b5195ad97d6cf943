"""`worktree` and `ws`: a workspace whose worktree is a real directory, where the steps' commands run.

Imported by the conftest of the test directories that run steps (runs/, lifecycle/), so the fixture exists once.
"""

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
