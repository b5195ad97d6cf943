"""Shared fixtures: a fresh FileStore in a temp home, with one workspace."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from atlas_tasks import FileStore, Task
from atlas_tasks.testing.conformance import sample_task


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> FileStore:
    return FileStore(home, lock_timeout=5)


@pytest.fixture
def ws(store: FileStore) -> str:
    name = f"ws-{secrets.token_hex(3)}"
    store.create_workspace(name)
    return name


@pytest.fixture
def task(store: FileStore, ws: str) -> Task:
    return store.create(ws, sample_task())
